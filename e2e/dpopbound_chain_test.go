package e2e

import (
	"net/url"
	"strings"
	"testing"
)

// TestDPoPBoundLateChain: a public client's refresh token got without a
// proof is unbound. Once the client registers dpop_bound_access_tokens
// (an RFC 7592 update) every refresh needs a proof, and the first one
// binds the chain to its key (RFC 9449 §5: a public client's refresh
// tokens are bound to its DPoP key): the successor refreshes only with
// that key. Before, each rotation copied the unbound state, so whoever
// held the current refresh token refreshed it with a key of their own,
// however long the client had sent proofs.
func TestDPoPBoundLateChain(t *testing.T) {
	e := start(t)
	key, thief := newHolder(t), newHolder(t)
	tokenURL := e.URL + "/token"
	const redirect = "https://app.example/cb"
	meta := map[string]any{"redirect_uris": []string{redirect}, "client_name": "Late App", "token_endpoint_auth_method": "none",
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid email"}
	app := e.register("POST", "/register", registrationToken, meta)
	if app.Status != 201 || app.DPoPBound {
		t.Fatalf("registration: %+v", app)
	}
	r := authRequest{ClientID: app.ClientID, RedirectURI: redirect, Scope: "openid email", State: "s", Verifier: strings.Repeat("r", 43)}
	code := e.browser().authorize(r, "email").Get("code")
	tok := e.dpopToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
		"code_verifier": {r.Verifier}, "client_id": {app.ClientID}}, "", "", "")
	if tok.Status != 200 || tok.TokenType != "Bearer" || tok.RefreshToken == "" {
		t.Fatalf("code without a proof: %d %q %s", tok.Status, tok.TokenType, tok.Description)
	}

	meta["client_id"], meta["dpop_bound_access_tokens"] = app.ClientID, true
	if upd := e.register("PUT", app.RegistrationClientURI, app.RegistrationAccessToken, meta); upd.Status != 200 || !upd.DPoPBound {
		t.Fatalf("RFC 7592 update setting it: %+v", upd)
	}
	refresh := func(rt, proof string) tokenResult {
		t.Helper()
		return e.dpopToken(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}, "client_id": {app.ClientID}}, proof, "", "")
	}
	wantTokenError(t, refresh(tok.RefreshToken, ""), 400, "invalid_request")
	next := refresh(tok.RefreshToken, key.proof(t, "POST", tokenURL, ""))
	if next.Status != 200 || next.TokenType != "DPoP" || next.RefreshToken == "" {
		t.Fatalf("first refresh with a proof: %d %q %s", next.Status, next.TokenType, next.Description)
	}
	wantTokenError(t, refresh(next.RefreshToken, thief.proof(t, "POST", tokenURL, "")), 400, "invalid_grant")
	if again := refresh(next.RefreshToken, key.proof(t, "POST", tokenURL, "")); again.Status != 200 || again.TokenType != "DPoP" {
		t.Fatalf("refresh with the chain's key: %d %q %s", again.Status, again.TokenType, again.Description)
	}
}
