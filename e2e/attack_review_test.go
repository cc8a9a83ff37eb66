package e2e

import (
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/demo/resource"
	"github.com/bawwab/bawwab/internal/dpop"
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
