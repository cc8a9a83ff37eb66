package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/demo/resource"
	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

// demoAPI serves the demo resource server for e's tokens (audience
// "api"), taking DPoP-bound tokens.
func demoAPI(t *testing.T, e *env) string {
	t.Helper()
	api := httptest.NewServer(nil)
	t.Cleanup(api.Close)
	mux := http.NewServeMux()
	(&resource.Server{URL: api.URL, Log: quietLog(),
		DPoP:     &dpop.Checker{Replays: &dpop.MemoryReplays{}, Now: time.Now},
		Verifier: &resource.Verifier{Issuer: e.URL, Audience: "api", JWKSURL: e.URL + "/jwks.json", HTTP: http.DefaultClient, Now: time.Now},
		Lookup: func(_ ctxT, sub string) (*resource.Profile, error) {
			return &resource.Profile{Email: "amal@example.com"}, nil
		},
	}).Register(mux)
	api.Config.Handler = mux
	return api.URL
}

// TestDPoPSchemeNeedsBoundToken (RFC 9449 §7.1): a request with the DPoP
// scheme is checked against the key its access token is bound to; a token
// bound to no key has none to match, so "DPoP <bearer token>" with a proof
// of any key the caller made up is refused with a DPoP challenge, at
// userinfo and at the demo API, while the same token as Bearer works.
func TestDPoPSchemeNeedsBoundToken(t *testing.T) {
	e := start(t)
	api := demoAPI(t, e)
	r := e.notesRequest("openid email")
	tok := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	wantStatus(t, tok.Status, 200, "bearer token", tok.Description)
	if tok.TokenType != "Bearer" || claimsOf(t, tok.AccessToken)["cnf"] != nil {
		t.Fatalf("a token request without proof got a bound token: %s", tok.TokenType)
	}
	anyKey := newHolder(t)
	for name, target := range map[string]string{"userinfo": e.URL + "/userinfo", "demo API": api + "/api/email"} {
		t.Run(name, func(t *testing.T) {
			if a := callResource(t, target, "Bearer "+tok.AccessToken, ""); a.Status != 200 {
				t.Fatalf("Bearer: %d %s", a.Status, a.Body)
			}
			for what, proof := range map[string]string{
				"proof of a made-up key": anyKey.proof(t, "GET", target, tok.AccessToken),
				"no proof":               "",
			} {
				a := callResource(t, target, "DPoP "+tok.AccessToken, proof)
				if a.Status != 401 || !strings.Contains(a.challenge("DPoP"), `error="invalid_token"`) {
					t.Errorf("%s: DPoP scheme with an unbound token: %d %v %s", what, a.Status, a.Challenges, a.Body)
				}
			}
		})
	}
}

// TestTokenExchangeForeignActor (RFC 8693 §2.1, §5): the actor token of
// a delegation names who acts; like the subject token it must have been
// issued to the exchanging client or be meant for it (aud). Otherwise a
// client holding someone else's token — issued to another client, for
// another audience — could name that party as its actor.
func TestTokenExchangeForeignActor(t *testing.T) {
	e := start(t)
	const gwSecret = "gateway-secret-for-tests-0123456789"
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "gateway", GrantTypes: []string{token.TokenExchangeGrantType},
		Secret: gwSecret}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	// The subject: a user token of Notes meant for every API (gateway
	// among them).
	r := e.notesRequest("openid files.read")
	user := e.redeem(e.browser().authorize(r, "files.read").Get("code"), r)
	wantStatus(t, user.Status, 200, "user token", user.Description)
	// A token of the CLI meant for "files" alone: not for gateway.
	cr := authRequest{ClientID: "cli", RedirectURI: cliRedirect, Scope: "openid files.read", State: "s", Verifier: strings.Repeat("a", 43),
		Extra: url.Values{"resource": {"files"}}}
	code := e.browser().authorize(cr, "files.read").Get("code")
	foreign := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirect},
		"code_verifier": {cr.Verifier}, "client_id": {"cli"}}, "", "")
	wantStatus(t, foreign.Status, 200, "foreign token", foreign.Description)
	if aud := claimsOf(t, foreign.AccessToken)["aud"]; aud != "files" {
		t.Fatalf("foreign token aud %v, want files", aud)
	}
	exchange := func(actor string) tokenResult {
		t.Helper()
		return e.token(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {user.AccessToken},
			"subject_token_type": {token.AccessTokenType}, "actor_token": {actor}, "actor_token_type": {token.AccessTokenType}}, "gateway", gwSecret)
	}
	wantTokenError(t, exchange(foreign.AccessToken), 400, "invalid_grant")
	// An actor token meant for gateway is fine.
	robot := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
	if d := exchange(robot.AccessToken); d.Status != 200 {
		t.Fatalf("actor meant for gateway: %d %s", d.Status, d.Description)
	}
}
