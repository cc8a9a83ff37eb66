package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// TestPairwiseEverywhere (OpenID Connect Core §8.1): every sub a pairwise
// client sees is its own value — in the ID token, at introspection of its
// refresh and access tokens, in its back-channel logout token, in a token
// another client obtains by exchange — and the audit log keeps the
// internal user id. A custom-scheme redirect URI names no sector, so a
// client registering com.attacker.app://notes.example/cb does not get the
// subs of https://notes.example clients.
func TestPairwiseEverywhere(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	logouts := make(chan string, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && r.Method == "POST" {
			logouts <- r.PostForm.Get("logout_token")
		}
	}))
	defer rp.Close()
	const pwSecret = "pw-secret-for-tests-0123456789abcdef"
	for _, c := range []admin.ClientSpec{
		{ID: "pw", Name: "Private Notes", RedirectURIs: []string{"https://notes.example/pw-cb"}, Scopes: []string{"openid", "offline_access", "files.read"},
			Pairwise: true, Secret: pwSecret, BackchannelLogoutURI: rp.URL + "/logout", Outbound: e.Server.Outbound},
		{ID: "spoof", Name: "Spoof", Public: true, RedirectURIs: []string{"com.attacker.app://notes.example/pw-cb"}, Scopes: []string{"openid"}, Pairwise: true},
		{ID: "twin", Name: "Twin", Public: true, RedirectURIs: []string{"https://notes.example/twin-cb"}, Scopes: []string{"openid"}, Pairwise: true},
		{ID: "gateway", GrantTypes: []string{token.TokenExchangeGrantType}, Pairwise: true, Secret: "gateway-secret-for-tests-0123456789"},
	} {
		if _, err := admin.AddClient(ctx, e.Store, c, scope.Default()); err != nil {
			t.Fatalf("%s: %v", c.ID, err)
		}
	}
	b := e.browser()
	signIn := func(client, redirect, scopes, secret string) tokenResult {
		t.Helper()
		r := authRequest{ClientID: client, RedirectURI: redirect, Scope: scopes, State: "s", Nonce: "n", Verifier: strings.Repeat("p", 43)}
		code := b.authorize(r, strings.Fields(scopes)...).Get("code")
		form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {r.Verifier}}
		user, pass := client, secret
		if secret == "" {
			form.Set("client_id", client)
			user = ""
		}
		tok := e.token(form, user, pass)
		wantStatus(t, tok.Status, 200, "token of "+client, tok.Description)
		return tok
	}
	pw := signIn("pw", "https://notes.example/pw-cb", "openid offline_access files.read", pwSecret)
	sub := claimsOf(t, pw.IDToken)["sub"].(string)
	if sub == e.UserID || claimsOf(t, pw.AccessToken)["sub"] != sub {
		t.Fatalf("pairwise sub %s (user %s), access token sub %v", sub, e.UserID, claimsOf(t, pw.AccessToken)["sub"])
	}

	// Introspection shows the client its own value, for both tokens.
	for what, tok := range map[string]string{"refresh token": pw.RefreshToken, "access token": pw.AccessToken} {
		if got := e.introspect(tok, "pw", pwSecret); got["active"] != true || got["sub"] != sub {
			t.Errorf("introspection of the %s: sub %v, want %s (user id %s)", what, got["sub"], sub, e.UserID)
		}
	}

	// The sector is an https host: the custom scheme naming notes.example
	// gets another sub; an https client on notes.example shares it.
	spoofSub := claimsOf(t, signIn("spoof", "com.attacker.app://notes.example/pw-cb", "openid", "").IDToken)["sub"]
	twinSub := claimsOf(t, signIn("twin", "https://notes.example/twin-cb", "openid", "").IDToken)["sub"]
	if spoofSub == sub || spoofSub == e.UserID {
		t.Errorf("custom-scheme client on notes.example got sub %v (pw: %s, user: %s)", spoofSub, sub, e.UserID)
	}
	if twinSub != sub {
		t.Errorf("https client of the same sector got sub %v, want %s", twinSub, sub)
	}

	// Token exchange: the pairwise gateway gets its own sub for the user,
	// not pw's.
	x := e.token(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {pw.AccessToken}, "subject_token_type": {token.AccessTokenType},
		"audience": {"files"}}, "gateway", "gateway-secret-for-tests-0123456789")
	wantStatus(t, x.Status, 200, "exchange", x.Description)
	want := e.Server.Issuer.Subject(&storage.Client{ID: "gateway", Pairwise: true}, e.UserID)
	if got := claimsOf(t, x.AccessToken)["sub"]; got != want || got == sub || got == e.UserID {
		t.Errorf("exchanged token sub %v, want gateway's own %s (pw: %s, user: %s)", got, want, sub, e.UserID)
	}

	// Revocation is audited with the internal id.
	if status, _, body := e.post("/revoke", url.Values{"token": {pw.AccessToken}}, "pw", pwSecret); status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}

	// The logout token carries the sub the client knows.
	if p := b.post("/logout", url.Values{"csrf_token": {csrfOf(t, b.get("/account"))}}); p.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.Status)
	}
	select {
	case raw := <-logouts:
		var c backchannel.Claims
		if err := e.Server.Keys.Verify(ctx, raw, jwks.TypeLogout, &c); err != nil {
			t.Fatal(err)
		}
		if c.Subject != sub {
			t.Errorf("logout token sub %s, want the pairwise %s (user id %s)", c.Subject, sub, e.UserID)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no logout token arrived")
	}

	// The audit log names the user by the internal id, never a pairwise one.
	for _, client := range []string{"pw", "spoof", "gateway"} {
		evs, err := e.Store.ListAuditEvents(ctx, storage.AuditFilter{ClientID: client})
		if err != nil || len(evs) == 0 {
			t.Fatalf("audit of %s: %v %d", client, err, len(evs))
		}
		types := map[string]bool{}
		for _, ev := range evs {
			types[ev.Type] = true
			if ev.UserID != e.UserID {
				t.Errorf("audit %s of %s names user %q, want %s", ev.Type, client, ev.UserID, e.UserID)
			}
		}
		if client == "pw" && (!types["token_revoked"] || !types["token_issued"]) {
			t.Errorf("audit of pw lacks issue or revocation: %v", types)
		}
	}
}

// TestSectorIdentifierURI (OpenID Connect Core §8.1, Dynamic Client
// Registration §2): a pairwise client with redirect URIs on several hosts
// registers a sector_identifier_uri, which is fetched and must list every
// redirect URI; its host is the sector.
func TestSectorIdentifierURI(t *testing.T) {
	e := start(t)
	sector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good.json":
			_, _ = w.Write([]byte(`["https://a.example/cb","https://b.example/cb","https://c.example/cb"]`))
		case "/partial.json":
			_, _ = w.Write([]byte(`["https://a.example/cb"]`))
		case "/object.json":
			_, _ = w.Write([]byte(`{"redirect_uris":["https://a.example/cb","https://b.example/cb"]}`))
		case "/moved.json":
			http.Redirect(w, r, "/good.json", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer sector.Close()
	meta := func(sectorURI string, uris ...string) map[string]any {
		m := map[string]any{"redirect_uris": uris, "grant_types": []string{"authorization_code"}, "scope": "openid",
			"subject_type": "pairwise", "token_endpoint_auth_method": "none"}
		if sectorURI != "" {
			m["sector_identifier_uri"] = sectorURI
		}
		return m
	}
	two := []string{"https://a.example/cb", "https://b.example/cb"}
	for name, m := range map[string]map[string]any{
		"two hosts, no sector_identifier_uri": meta("", two...),
		"a redirect URI not listed":           meta(sector.URL+"/partial.json", two...),
		"not a JSON array":                    meta(sector.URL+"/object.json", two...),
		"redirected":                          meta(sector.URL+"/moved.json", two...),
		"not found":                           meta(sector.URL+"/missing.json", two...),
	} {
		if r := e.register("POST", "/register", registrationToken, m); r.Status != 400 || r.Error != "invalid_client_metadata" {
			t.Errorf("%s: %d %s %s", name, r.Status, r.Error, r.Description)
		}
	}
	a := e.register("POST", "/register", registrationToken, meta(sector.URL+"/good.json", two...))
	if a.Status != 201 || a.SectorIdentifierURI != sector.URL+"/good.json" {
		t.Fatalf("pairwise client with a verified sector_identifier_uri: %+v", a)
	}
	c := e.register("POST", "/register", registrationToken, meta(sector.URL+"/good.json", "https://c.example/cb"))
	if c.Status != 201 {
		t.Fatalf("second client of the sector: %+v", c)
	}
	// Updating to a redirect URI the document does not list is refused.
	upd := meta(sector.URL+"/good.json", "https://d.example/cb")
	upd["client_id"] = a.ClientID
	if r := e.register("PUT", a.RegistrationClientURI, a.RegistrationAccessToken, upd); r.Status != 400 {
		t.Errorf("update to an unlisted redirect URI: %+v", r)
	}

	b := e.browser()
	subOf := func(client, redirect string) any {
		t.Helper()
		r := authRequest{ClientID: client, RedirectURI: redirect, Scope: "openid", State: "s", Nonce: "n", Verifier: strings.Repeat("s", 43)}
		code := b.authorize(r, "openid").Get("code")
		tok := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {r.Verifier},
			"client_id": {client}}, "", "")
		wantStatus(t, tok.Status, 200, "token of "+client, tok.Description)
		return claimsOf(t, tok.IDToken)["sub"]
	}
	subA, subAb, subC := subOf(a.ClientID, "https://a.example/cb"), subOf(a.ClientID, "https://b.example/cb"), subOf(c.ClientID, "https://c.example/cb")
	if subA != subAb || subA != subC || subA == e.UserID {
		t.Fatalf("one sector, three subs: %v %v %v (user %s)", subA, subAb, subC, e.UserID)
	}
	// The admin API keeps and shows it.
	var got struct {
		Sector string `json:"sector_identifier_uri"`
	}
	if status, body := e.adminCall("GET", "/admin/clients/"+a.ClientID, adminToken, nil, &got); status != 200 || got.Sector != sector.URL+"/good.json" {
		t.Fatalf("admin view: %d %s", status, body)
	}
	// Export and import keep it, and with it the subs.
	var backup json.RawMessage
	if status, body := e.adminCall("GET", "/admin/export", adminToken, nil, &backup); status != 200 {
		t.Fatalf("export: %d %s", status, body)
	}
	e2 := start(t)
	if status, body := e2.adminCall("POST", "/admin/import", adminToken, backup, nil); status != 200 {
		t.Fatalf("import: %d %s", status, body)
	}
	if c, err := e2.Store.GetClient(context.Background(), a.ClientID); err != nil || c.SectorIdentifierURI != sector.URL+"/good.json" {
		t.Fatalf("imported client: %+v %v", c, err)
	}
}

// TestCLIClientURLs: the CLI applies the same rules to the URLs of a
// client, remotely (through the server's admin API) and locally (on a
// store of its own, with the operator's settings): a sector_identifier_uri
// is fetched and verified, and an internal URL is refused unless
// insecure_outbound_allow admits it.
func TestCLIClientURLs(t *testing.T) {
	bin := buildBawwab(t)
	e := start(t)
	sector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`["https://a.example/cb","https://b.example/cb"]`))
	}))
	defer sector.Close()
	run := func(wantOK bool, env []string, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(append(os.Environ(), "BAWWAB_CONFIG=", "BAWWAB_ADMIN_TOKEN="+adminToken), env...)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("bawwab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	pairwise := func(redirects ...string) []string {
		args := []string{"client", "add", "--subject-type", "pairwise", "--sector-identifier-uri", sector.URL, "--scope", "openid", "-o", "json"}
		for _, r := range redirects {
			args = append(args, "--redirect-uri", r)
		}
		return args
	}
	remote := func(args ...string) []string { return append(args, "--server", e.AdminURL) }
	if out := run(true, nil, remote(pairwise("https://a.example/cb", "https://b.example/cb")...)...); !strings.Contains(out, `"sector_identifier_uri": "`+sector.URL+`"`) {
		t.Fatalf("client add with a sector_identifier_uri:\n%s", out)
	}
	if out := run(false, nil, remote(pairwise("https://a.example/cb", "https://c.example/cb")...)...); !strings.Contains(out, "does not list") {
		t.Fatalf("client add with an unlisted redirect URI:\n%s", out)
	}
	dir := t.TempDir()
	keyed := []string{"client", "add", "--grant-type", "client_credentials", "--jwks-uri", sector.URL + "/jwks", "--data-dir", dir}
	if out := run(false, nil, keyed...); !strings.Contains(out, "https") {
		t.Fatalf("local client add with a loopback jwks_uri:\n%s", out)
	}
	run(true, []string{"BAWWAB_INSECURE_OUTBOUND_ALLOW=127.0.0.1"}, keyed...)
}
