package e2e

import (
	"html"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/demo"
	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
)

// TestDemoContinueWithCorp plays the demo's "Continue with Example Corp"
// over HTTP, offline, as a browser would (one cookie jar, redirects
// followed): Notes sends the person to bawwab; the login page offers
// Example Corp; Layla signs in and consents there, on Example Corp's own
// host name; back at bawwab, her first sign-in created a local account
// (just in time, linked to Example Corp) and bawwab asks consent for
// Notes, whose page then shows her name and address from Example Corp.
// An app's ID token after that sign-in says amr "fed" and carries
// bawwab's subject; Example Corp's tokens reach no app.
func TestDemoContinueWithCorp(t *testing.T) {
	d, _ := startDemo(t)
	corp, err := url.Parse(d.Corp.Issuer)
	if err != nil || !strings.HasPrefix(d.AuthURL, "http://localhost:") || corp.Hostname() != "127.0.0.1" {
		t.Fatalf("demo at %s, Example Corp at %s", d.AuthURL, d.Corp.Issuer)
	}
	// The demo may call Example Corp's loopback host; no one else may
	// make it call there: dynamic registration stays off.
	reg, err := http.Post(d.AuthURL+"/register", "application/json",
		strings.NewReader(`{"redirect_uris":["http://127.0.0.1:1/cb"],"jwks_uri":"`+d.Corp.Issuer+`/jwks.json"}`))
	if err != nil {
		t.Fatal(err)
	}
	reg.Body.Close()
	if reg.StatusCode == http.StatusCreated || reg.StatusCode/100 == 2 {
		t.Fatalf("the demo registered a client: %d", reg.StatusCode)
	}
	jar, _ := cookiejar.New(nil)
	b := demoBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}

	p := b.do("POST", d.NotesURL+"/signup", url.Values{})
	if p.URL.Path != "/login" || !strings.Contains(p.Body, `value="upstream:`+demo.CorpUpstream+`"`) ||
		!strings.Contains(p.Body, "Continue with "+demo.CorpNameEN) {
		t.Fatalf("the demo's login page offers no Example Corp: %s %s", p.URL, p.Body)
	}
	p = b.do("POST", d.AuthURL+"/login", p.form(t, url.Values{"step": {"upstream:" + demo.CorpUpstream}}))
	if p.URL.Host != corp.Host || p.URL.Path != "/login" {
		t.Fatalf("Continue with Example Corp led to %s: %s", p.URL, p.Body)
	}
	p = b.do("POST", d.Corp.Issuer+"/login", p.form(t, url.Values{"username": {demo.CorpUsername}, "password": {demo.CorpPassword}}))
	if p.URL.Host != corp.Host || p.URL.Path != "/consent" {
		t.Fatalf("after signing in at Example Corp: %s %s", p.URL, p.Body)
	}
	p = b.do("POST", d.Corp.Issuer+"/consent", p.form(t, url.Values{"action": {"allow"}, "scope": {"email", "profile"}}))
	if !strings.HasPrefix(p.URL.String(), d.AuthURL+"/consent?") || !strings.Contains(p.Body, "Notes") {
		t.Fatalf("back from Example Corp: %s %d %s", p.URL, p.Status, p.Body)
	}

	// The first sign-in made Layla's account here, linked to Example Corp.
	layla, err := d.Store.GetUserByUsername(t.Context(), demo.CorpUsername)
	if err != nil || layla.Email != demo.CorpEmail || !layla.EmailVerified || layla.PasswordHash != "" {
		t.Fatalf("the just-in-time account: %+v %v", layla, err)
	}
	if links, err := d.Store.ListUpstreamLinks(t.Context(), layla.ID); err != nil || len(links) != 1 || links[0].Upstream != demo.CorpUpstream {
		t.Fatalf("Layla's links: %+v %v", links, err)
	}
	if sessions, _ := d.Store.ListUserSessions(t.Context(), layla.ID); len(sessions) != 1 || !slices.Contains(sessions[0].AMR, "fed") {
		t.Fatalf("Layla's sessions: %+v", sessions)
	}

	p = b.do("POST", d.AuthURL+"/consent", p.form(t, url.Values{"action": {"allow"}, "scope": {"openid", "profile", "email"}}))
	if !strings.HasPrefix(p.URL.String(), d.NotesURL) || !strings.Contains(p.Body, `id="connected"`) ||
		!strings.Contains(p.Body, demo.CorpEmail) || !strings.Contains(html.UnescapeString(p.Body), layla.Name) || layla.Name == "" {
		t.Fatalf("Notes after Example Corp: %s %s", p.URL, p.Body)
	}

	// Signed out of bawwab (not of Example Corp), Layla comes back through
	// Example Corp, whose session goes on: the link signs her in to the
	// same account, and Notes (which revoked its grant on disconnecting)
	// asks her consent again.
	p = b.do("POST", d.NotesURL+"/disconnect", url.Values{})
	out := b.do("GET", d.AuthURL+"/end_session", nil)
	if out = b.do("POST", d.AuthURL+"/end_session", out.form(t, url.Values{"action": {"logout"}})); !strings.Contains(out.Body, `id="logout-done"`) {
		t.Fatalf("signing out of bawwab: %d %s", out.Status, out.Body)
	}
	p = b.do("POST", d.NotesURL+"/signup", url.Values{})
	if p.URL.Path != "/login" {
		t.Fatalf("signed out, Notes led to %s", p.URL)
	}
	p = b.do("POST", d.AuthURL+"/login", p.form(t, url.Values{"step": {"upstream:" + demo.CorpUpstream}}))
	if p.URL.Path == "/consent" && strings.HasPrefix(p.URL.String(), d.AuthURL) {
		p = b.do("POST", d.AuthURL+"/consent", p.form(t, url.Values{"action": {"allow"}, "scope": {"openid", "profile", "email"}}))
	}
	if !strings.HasPrefix(p.URL.String(), d.NotesURL) || !strings.Contains(p.Body, demo.CorpEmail) {
		t.Fatalf("second sign-in through Example Corp: %s %s", p.URL, p.Body)
	}
	if again, err := d.Store.GetUserByEmail(t.Context(), demo.CorpEmail); err != nil || again.ID != layla.ID {
		t.Fatalf("second sign-in: account %+v (%v), want Layla's %s", again, err, layla.ID)
	}

	idToken := demoIDToken(t, d, jar)
	var claims struct {
		AMR []string `json:"amr"`
	}
	if err := idToken.Claims(&claims); err != nil || !slices.Contains(claims.AMR, "fed") || slices.Contains(claims.AMR, "pwd") ||
		idToken.Subject != layla.ID || idToken.Issuer != d.AuthURL {
		t.Fatalf("ID token after Example Corp: sub %q iss %q amr %v (%v), want sub %q", idToken.Subject, idToken.Issuer, claims.AMR, err, layla.ID)
	}
}

// demoIDToken registers an app at the demo's bawwab and has the browser
// of jar (signed in already) authorize it, and returns the ID token the
// app gets, verified as an app would with go-oidc.
func demoIDToken(t *testing.T, d *demo.Demo, jar http.CookieJar) *oidc.IDToken {
	t.Helper()
	ctx := t.Context()
	const callback = "http://127.0.0.1:1/callback" // never reached: the browser stops at the redirect
	secret, err := admin.AddClient(ctx, d.Store, admin.ClientSpec{ID: "amr-check", Name: "AMR check", RedirectURIs: []string{callback},
		Scopes: []string{"openid"}}, scope.Default())
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(ctx, d.AuthURL)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "amr-check", ClientSecret: secret, Endpoint: provider.Endpoint(), RedirectURL: callback, Scopes: []string{oidc.ScopeOpenID}}
	verifier := oauth2.GenerateVerifier()
	stop := func(req *http.Request, _ []*http.Request) error {
		if req.URL.Host == "127.0.0.1:1" {
			return http.ErrUseLastResponse
		}
		return nil
	}
	c := &http.Client{Jar: jar, Timeout: 10 * time.Second, CheckRedirect: stop}
	// send makes one request, following redirects up to the app's, and
	// returns the app's callback URL or, when a page answers, the page.
	send := func(req *http.Request) (*url.URL, demoPage) {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		if loc, err := resp.Location(); err == nil && loc.Host == "127.0.0.1:1" {
			return loc, demoPage{}
		}
		raw, _ := io.ReadAll(resp.Body)
		return nil, demoPage{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(raw)}
	}
	req, _ := http.NewRequest("GET", conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n")), nil)
	loc, p := send(req)
	if loc == nil && p.URL.Path == "/consent" {
		form := p.form(t, url.Values{"action": {"allow"}, "scope": {"openid"}})
		req, _ = http.NewRequest("POST", d.AuthURL+"/consent", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		loc, p = send(req)
	}
	if loc == nil || loc.Query().Get("code") == "" {
		t.Fatalf("authorizing the app: %s %d %s", p.URL, p.Status, p.Body)
	}
	tok, err := conf.Exchange(ctx, loc.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "amr-check"}).Verify(ctx, raw)
	if err != nil || idt.Nonce != "n" {
		t.Fatalf("ID token: %v", err)
	}
	return idt
}
