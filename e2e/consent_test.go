package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// checkedScopes reads the consent page's checkboxes: name → checked.
func checkedScopes(t *testing.T, body string) map[string]bool {
	t.Helper()
	re := regexp.MustCompile(`<input type="checkbox" name="scope" value="([^"]+)" id="scope-[^"]+"( checked)?`)
	out := map[string]bool{}
	for _, m := range re.FindAllStringSubmatch(body, -1) {
		out[m[1]] = m[2] != ""
	}
	if len(out) == 0 {
		t.Fatalf("no scope checkboxes on the consent page: %.500s", body)
	}
	return out
}

// TestHonestConsent: the consent page does not push people to share. On
// a first consent only identity items start checked (files and offline
// access wait for an opt-in, sensitive items too); the required openid is
// marked and cannot be unchecked; what the person declined stays
// declined next time and what they granted stays granted. It shows who
// is asking (name, home page, policy, terms), says when the operator did
// not verify the app, explains every item, offers to switch account, and
// links to Connected apps. Every row is a label, clickable as a whole.
func TestHonestConsent(t *testing.T) {
	e := startNoScopeFactor(t)
	ctx := context.Background()
	c, err := e.Store.GetClient(ctx, "notes")
	if err != nil {
		t.Fatal(err)
	}
	c.ClientInfo = storage.ClientInfo{ClientURI: "https://notes.example", PolicyURI: "https://notes.example/privacy", TOSURI: "https://notes.example/terms"}
	if err := e.Store.UpdateClient(ctx, *c); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	r := e.notesRequest("openid profile email files.read offline_access payment")
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	consentURL := p.Location
	p = b.get(consentURL)
	if p.Status != http.StatusOK {
		t.Fatalf("consent page: %d", p.Status)
	}
	got := checkedScopes(t, p.Body)
	want := map[string]bool{"openid": true, "profile": true, "email": true, "files.read": false, "offline_access": false, "payment": false}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("first consent: %s checked=%v, want %v", name, got[name], w)
		}
	}
	for _, s := range []string{
		`id="scope-openid" checked disabled`, // required: marked, cannot be unchecked
		`<span class="badge">Required</span>`,
		`href="https://notes.example"`, `id="client-policy"`, `id="client-tos"`,
		`id="client-unverified"`, "Unverified app",
		`id="switch-account"`, `href="/account?ui_locales=en"`,
		"The app can read the names and contents of your files", // one line per item from the catalog
		"the app keeps access until you revoke it",
	} {
		if !strings.Contains(p.Body, s) {
			t.Errorf("consent page lacks %q", s)
		}
	}
	if n := len(regexp.MustCompile(`<label class="scope[^"]*" for="scope-[^"]+">\s*<input`).FindAllString(p.Body, -1)); n != len(want) {
		t.Errorf("%d of %d rows are labels around their checkbox", n, len(want))
	}

	// Grant email and files; decline profile, offline access and payment.
	req := url.Values{"csrf_token": {csrfOf(t, p)}, "req": {mustQuery(t, consentURL).Get("req")}, "scope": {"email", "files.read"}, "action": {"allow"}}
	if p = b.post("/consent", req); !strings.HasPrefix(p.Location, notesRedirect) {
		t.Fatalf("allow: %d %s", p.Status, p.Location)
	}

	// The same request again: the earlier answer stands.
	p = b.get(r.url())
	if !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("second request: %d %s", p.Status, p.Location)
	}
	secondURL := p.Location
	p = b.get(secondURL)
	got = checkedScopes(t, p.Body)
	want = map[string]bool{"openid": true, "profile": false, "email": true, "files.read": true, "offline_access": false, "payment": false}
	for name, w := range want {
		if got[name] != w {
			t.Errorf("second consent: %s checked=%v, want %v (declined stays declined, granted stays granted)", name, got[name], w)
		}
	}

	// Not you? Switching account signs out and comes back to the same request.
	id := mustQuery(t, secondURL).Get("req")
	p = b.post("/logout", url.Values{"csrf_token": {csrfOf(t, p)}, "req": {id}, "ui_locales": {"en"}})
	if p.Location != "/login?req="+id+"&ui_locales=en" {
		t.Fatalf("switch account goes to %q", p.Location)
	}
	if p = b.get(p.Location); !strings.Contains(p.Body, "Sign in to continue to Notes") {
		t.Fatalf("login page after switching account: %.300s", p.Body)
	}

	// A verified app says so instead.
	cli, err := e.Store.GetClient(ctx, "cli")
	if err != nil {
		t.Fatal(err)
	}
	cli.Verified = true
	if err := e.Store.UpdateClient(ctx, *cli); err != nil {
		t.Fatal(err)
	}
	b2 := e.browser()
	r2 := e.notesRequest("openid email")
	r2.ClientID, r2.RedirectURI = "cli", cliRedirect
	r2.Extra = url.Values{"claims": {`{"userinfo":{"email":{"essential":true}},"id_token":{"sub":{"essential":true}}}`}}
	p = b2.get(r2.url())
	p = b2.login(p.Location, userName, userPassword)
	p = b2.get(p.Location)
	if !strings.Contains(p.Body, `id="client-verified"`) || strings.Contains(p.Body, "Unverified app") {
		t.Errorf("verified app's consent page: %.300s", p.Body)
	}
	// A claim the request marks essential (OpenID Connect Core §5.5.1) is
	// marked on its scope, which the person may still uncheck.
	if !strings.Contains(p.Body, `id="essential-email"`) || strings.Contains(p.Body, `id="scope-email" checked disabled`) ||
		strings.Contains(p.Body, `id="essential-openid"`) {
		t.Errorf("essential claim not marked (or not left to the person): %s", p.Body)
	}
}

func mustQuery(t *testing.T, raw string) url.Values {
	t.Helper()
	u, err := url.Parse(raw)
	if err != nil {
		t.Fatal(err)
	}
	return u.Query()
}

// TestRegisteredAppIsUnverified: an app registering itself may say who it
// is (RFC 7591 §2), but cannot call itself verified: only the operator
// can; a javascript: or plain http link is refused.
func TestRegisteredAppIsUnverified(t *testing.T) {
	e := start(t)
	meta := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "Bank (really)", "scope": "openid email",
		"client_uri": "https://app.example", "logo_uri": "https://app.example/logo.png", "policy_uri": "https://app.example/privacy",
		"tos_uri": "https://app.example/terms", "verified": true}
	app := e.register("POST", "/register", registrationToken, meta)
	if app.Status != 201 || app.ClientURI != "https://app.example" || app.LogoURI != "https://app.example/logo.png" {
		t.Fatalf("registration: %+v", app)
	}
	c, err := e.Store.GetClient(context.Background(), app.ClientID)
	if err != nil || c.Verified || c.PolicyURI != "https://app.example/privacy" || c.TOSURI != "https://app.example/terms" {
		t.Fatalf("stored client: %+v %v", c, err)
	}
	for _, bad := range []string{"javascript:alert(1)", "http://app.example/", "https://user:pw@app.example/", "/relative"} {
		meta["logo_uri"] = bad
		if r := e.register("POST", "/register", registrationToken, meta); r.Status != 400 || r.Error != "invalid_client_metadata" {
			t.Errorf("logo_uri %q: %+v", bad, r)
		}
	}
}
