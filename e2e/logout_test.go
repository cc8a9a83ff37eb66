package e2e

import (
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestLogout plays OpenID Connect RP-initiated logout and "sign out
// everywhere".
func TestLogout(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid email")
	tok := e.redeem(b.authorize(r, "email").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)

	// The ID token says how the user signed in (RFC 8176).
	payload, _ := base64.RawURLEncoding.DecodeString(strings.Split(tok.IDToken, ".")[1])
	var claims struct {
		AMR []string `json:"amr"`
	}
	_ = json.Unmarshal(payload, &claims)
	if len(claims.AMR) != 1 || claims.AMR[0] != "pwd" {
		t.Fatalf("amr %v, want [pwd]", claims.AMR)
	}

	logoutURL := "/end_session?" + url.Values{"id_token_hint": {tok.IDToken}, "post_logout_redirect_uri": {notesRedirect}, "state": {"bye"}}.Encode()
	// Staying signed in goes back to the client, still signed in.
	page := b.get(logoutURL)
	if page.Status != 200 || !strings.Contains(page.Body, "Notes asks to sign you out") {
		t.Fatalf("logout page: %d %s", page.Status, page.Body)
	}
	stay := url.Values{"csrf_token": {csrfOf(t, page)}, "client_id": {"notes"}, "post_logout_redirect_uri": {notesRedirect}, "state": {"bye"}, "action": {"stay"}}
	if p := b.post("/end_session", stay); p.Status != http.StatusSeeOther || p.Location != notesRedirect+"?state=bye" {
		t.Fatalf("stay: %d %s", p.Status, p.Location)
	}
	if p := b.get("/account"); p.Status != 200 {
		t.Fatalf("signed out by 'stay': %d", p.Status)
	}
	// Without the CSRF token nothing happens (a forced logout is CSRF too).
	forged := url.Values{"client_id": {"notes"}, "action": {"logout"}}
	if p := b.post("/end_session", forged); p.Status != http.StatusForbidden {
		t.Fatalf("logout without CSRF: %d", p.Status)
	}
	// Confirmed: signed out and sent back with the state.
	page = b.get(logoutURL)
	out := url.Values{"csrf_token": {csrfOf(t, page)}, "client_id": {"notes"}, "post_logout_redirect_uri": {notesRedirect}, "state": {"bye"}, "action": {"logout"}}
	if p := b.post("/end_session", out); p.Status != http.StatusSeeOther || p.Location != notesRedirect+"?state=bye" {
		t.Fatalf("logout: %d %s", p.Status, p.Location)
	}
	if p := b.get("/account"); p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("still signed in after logout: %d %s", p.Status, p.Location)
	}

	// Bad requests get the error page, never a redirect.
	for name, q := range map[string]url.Values{
		"unregistered redirect":   {"client_id": {"notes"}, "post_logout_redirect_uri": {"https://evil.example/"}},
		"redirect without client": {"post_logout_redirect_uri": {notesRedirect}},
		"forged hint":             {"id_token_hint": {"eyJhbGciOiJub25lIn0.e30."}},
		"hint of another client":  {"id_token_hint": {tok.IDToken}, "client_id": {"cli"}},
	} {
		if p := e.browser().get("/end_session?" + q.Encode()); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("%s: %d %s", name, p.Status, p.Location)
		}
	}

	// Sign out everywhere: two browsers, one button.
	phone, laptop := e.browser(), e.browser()
	phone.authorize(e.notesRequest("openid"))
	laptop.authorize(e.notesRequest("openid"))
	acct := laptop.get("/account")
	if p := laptop.post("/account/logout-all", url.Values{"csrf_token": {csrfOf(t, acct)}}); p.Status != http.StatusSeeOther {
		t.Fatalf("logout-all: %d", p.Status)
	}
	for name, br := range map[string]*browser{"phone": phone, "laptop": laptop} {
		if p := br.get("/account"); p.Status != http.StatusFound {
			t.Fatalf("%s still signed in after signing out everywhere: %d", name, p.Status)
		}
	}

	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(meta, `"end_session_endpoint":"`+e.URL+`/end_session"`) {
		t.Fatalf("discovery lacks end_session_endpoint")
	}
}
