package e2e

import (
	"crypto"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// setNotesDPoPBound sets or clears the notes client's
// dpop_bound_access_tokens (RFC 9449 §5.2) through the admin API, with
// client_credentials among its grants.
func setNotesDPoPBound(t *testing.T, e *env, on bool) {
	t.Helper()
	body := map[string]any{"name": "Notes", "redirect_uris": []string{notesRedirect},
		"grant_types": []string{"authorization_code", "refresh_token", "client_credentials"},
		"scopes":      []string{"openid", "email", "offline_access", "files.read"}, "dpop_bound_access_tokens": on}
	status, raw := jsonCall(t, "PUT", e.AdminURL+"/admin/clients/notes", adminToken, body)
	var got map[string]any
	_ = json.Unmarshal(raw, &got)
	if status != 200 || got["dpop_bound_access_tokens"] != on {
		t.Fatalf("admin API setting dpop_bound_access_tokens %v: %d %s", on, status, raw)
	}
	status, raw = jsonCall(t, "GET", e.AdminURL+"/admin/clients/notes", adminToken, nil)
	if _ = json.Unmarshal(raw, &got); status != 200 || got["dpop_bound_access_tokens"] != on {
		t.Fatalf("admin API read after setting %v: %d %s", on, status, raw)
	}
	if c, err := e.Store.GetClient(t.Context(), "notes"); err != nil || c.DPoPBound != on {
		t.Fatalf("stored notes client %+v, %v: want DPoPBound %v", c, err, on)
	}
}

// TestDPoPBoundClient plays RFC 9449 §5.2 over HTTP: once the operator
// marks the confidential notes client dpop_bound_access_tokens, each of
// its token requests without a DPoP proof (code, refresh,
// client_credentials) is refused with invalid_request and spends nothing;
// with a proof it gets DPoP-bound tokens. Its tokens are useless to
// another client and without its key. Cleared again, it may ask for
// Bearer tokens.
func TestDPoPBoundClient(t *testing.T) {
	e := start(t)
	key, thief := newHolder(t), newHolder(t)
	tokenURL := e.URL + "/token"
	setNotesDPoPBound(t, e, true)
	as := func(form url.Values, proof string) tokenResult {
		t.Helper()
		return e.dpopToken(form, proof, "notes", e.NotesSecret)
	}
	refused := func(what string, r tokenResult) {
		t.Helper()
		wantTokenError(t, r, 400, "invalid_request")
		if !strings.Contains(r.Description, "DPoP proof") || !strings.Contains(r.Description, "dpop_bound_access_tokens") {
			t.Fatalf("%s: error_description %q does not say a DPoP proof is required", what, r.Description)
		}
	}
	bound := func(what string, r tokenResult) tokenResult {
		t.Helper()
		wantStatus(t, r.Status, 200, what, r.Description)
		if c, _ := claimsOf(t, r.AccessToken)["cnf"].(map[string]any); r.TokenType != "DPoP" || c["jkt"] == nil {
			t.Fatalf("%s: token_type %q, cnf %v: want a DPoP-bound token", what, r.TokenType, c)
		}
		return r
	}

	// Authorization code: refused without a proof, and the code is not
	// spent: the same code, with a proof, gives bound tokens.
	r := e.notesRequest("openid email offline_access")
	code := e.browser().authorize(r, "email", "offline_access").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI}, "code_verifier": {r.Verifier}}
	refused("code without a proof", as(form, ""))
	tok := bound("code with a proof", as(form, key.proof(t, "POST", tokenURL, "")))
	info := e.URL + "/userinfo"
	if s, body := call(t, "GET", info, "DPoP "+tok.AccessToken, key.proof(t, "GET", info, tok.AccessToken)); s != 200 {
		t.Fatalf("userinfo with the key: %d %s", s, body)
	}
	if s, body := call(t, "GET", info, "Bearer "+tok.AccessToken, ""); s != 401 {
		t.Fatalf("the bound token as Bearer: %d %s", s, body)
	}
	// Another client holding the token, with its own key, gets nothing.
	if s, body := call(t, "GET", info, "DPoP "+tok.AccessToken, thief.proof(t, "GET", info, tok.AccessToken)); s != 401 {
		t.Fatalf("the bound token with another key: %d %s", s, body)
	}

	// Refresh: refused without a proof (the token stays usable), then
	// rotated with one.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
	refused("refresh without a proof", as(refresh, ""))
	next := bound("refresh with a proof", as(refresh, key.proof(t, "POST", tokenURL, "")))

	// client_credentials.
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}
	refused("client_credentials without a proof", as(cc, ""))
	bound("client_credentials with a proof", as(cc, key.proof(t, "POST", tokenURL, "")))

	// The notes client's refresh token replayed by another client, with a
	// proof: refused, and the grant revoked (RFC 9700 §4.14.2).
	stolen := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}, "client_id": {"cli"}}
	wantTokenError(t, e.dpopToken(stolen, thief.proof(t, "POST", tokenURL, ""), "", ""), 400, "invalid_grant")
	if in := e.introspect(next.AccessToken, "api", "api-secret-for-tests-0123456789"); in["active"] != false {
		t.Fatalf("the grant outlived its refresh token's replay by another client: %v", in)
	}

	// Cleared, the client may ask for Bearer tokens again.
	setNotesDPoPBound(t, e, false)
	if r := as(cc, ""); r.Status != 200 || r.TokenType != "Bearer" {
		t.Fatalf("client_credentials without a proof after clearing: %d %q %s", r.Status, r.TokenType, r.Description)
	}
}

// TestDPoPBoundRegistered: a public client registers itself with
// dpop_bound_access_tokens (RFC 9449 §5.2, RFC 7591), reads it back (RFC
// 7592), and is held to it; dpop_jkt stays optional at /authorize and at
// /par, and binds the code when sent (§10).
func TestDPoPBoundRegistered(t *testing.T) {
	e := start(t)
	key, thief := newHolder(t), newHolder(t)
	tokenURL := e.URL + "/token"
	const redirect = "https://app.example/cb"
	app := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{redirect},
		"client_name": "Bound App", "token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", "refresh_token"},
		"scope": "openid email", "dpop_bound_access_tokens": true})
	if app.Status != 201 || !app.DPoPBound {
		t.Fatalf("registration: %+v", app)
	}
	if got := e.register("GET", app.RegistrationClientURI, app.RegistrationAccessToken, nil); got.Status != 200 || !got.DPoPBound {
		t.Fatalf("RFC 7592 read: %+v", got)
	}

	tp, err := (&jose.JSONWebKey{Key: &key.priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	jkt := base64.RawURLEncoding.EncodeToString(tp)
	req := func(extra url.Values) authRequest {
		return authRequest{ClientID: app.ClientID, RedirectURI: redirect, Scope: "openid email", State: "s", Verifier: strings.Repeat("r", 43), Extra: extra}
	}
	redeem := func(r authRequest, code, proof string) tokenResult {
		t.Helper()
		return e.dpopToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
			"code_verifier": {r.Verifier}, "client_id": {app.ClientID}}, proof, "", "")
	}

	// Without dpop_jkt: /authorize takes the request; the token endpoint
	// wants a proof, and the code waits for it.
	plain := req(nil)
	code := e.browser().authorize(plain, "email").Get("code")
	if code == "" {
		t.Fatal("a DPoP-bound client's authorization request without dpop_jkt was refused")
	}
	wantTokenError(t, redeem(plain, code, ""), 400, "invalid_request")
	if tok := redeem(plain, code, key.proof(t, "POST", tokenURL, "")); tok.Status != 200 || tok.TokenType != "DPoP" {
		t.Fatalf("redeem with a proof: %d %q %s", tok.Status, tok.TokenType, tok.Description)
	}

	// With dpop_jkt the code is bound to that key: another key is refused.
	pinned := req(url.Values{"dpop_jkt": {jkt}})
	code = e.browser().authorize(pinned, "email").Get("code")
	wantTokenError(t, redeem(pinned, code, thief.proof(t, "POST", tokenURL, "")), 400, "invalid_grant")
	code = e.browser().authorize(pinned, "email").Get("code")
	if tok := redeem(pinned, code, key.proof(t, "POST", tokenURL, "")); tok.Status != 200 || tok.TokenType != "DPoP" {
		t.Fatalf("redeem the dpop_jkt code with its key: %d %q %s", tok.Status, tok.TokenType, tok.Description)
	}

	// /par without a DPoP header or dpop_jkt is taken too.
	status, _, body := e.post("/par", req(nil).query(), "", "")
	if status != 201 || !strings.Contains(string(body), "request_uri") {
		t.Fatalf("/par of a DPoP-bound client without a proof: %d %s", status, body)
	}

	// An RFC 7592 update cannot clear it (whoever stole the registration
	// access token must not turn the protection off first); the operator
	// can, and then the client may ask for Bearer tokens.
	upd := e.register("PUT", app.RegistrationClientURI, app.RegistrationAccessToken, map[string]any{"client_id": app.ClientID,
		"redirect_uris": []string{redirect}, "client_name": "Bound App", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid email", "dpop_bound_access_tokens": false})
	if upd.Status != 200 || !upd.DPoPBound {
		t.Fatalf("RFC 7592 update clearing it: %+v", upd)
	}
	code = e.browser().authorize(plain, "email").Get("code")
	if tok := redeem(plain, code, ""); tok.Status != 400 {
		t.Fatalf("redeem without a proof after the client's update: %d %q %s", tok.Status, tok.TokenType, tok.Description)
	}
	if status, raw := jsonCall(t, "PUT", e.AdminURL+"/admin/clients/"+app.ClientID, adminToken, map[string]any{"name": "Bound App",
		"redirect_uris": []string{redirect}, "public": true, "grant_types": []string{"authorization_code", "refresh_token"},
		"scopes": []string{"openid", "email"}, "dpop_bound_access_tokens": false}); status != 200 {
		t.Fatalf("the operator clears it: %d %s", status, raw)
	}
	if got := e.register("GET", app.RegistrationClientURI, app.RegistrationAccessToken, nil); got.Status != 200 || got.DPoPBound {
		t.Fatalf("RFC 7592 read after the operator cleared it: %+v", got)
	}
	code = e.browser().authorize(plain, "email").Get("code")
	if tok := redeem(plain, code, ""); tok.Status != 200 || tok.TokenType != "Bearer" {
		t.Fatalf("redeem without a proof after clearing: %d %q %s", tok.Status, tok.TokenType, tok.Description)
	}
}
