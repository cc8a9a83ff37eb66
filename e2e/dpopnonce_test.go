package e2e

import (
	"crypto/rand"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/demo/resource"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/dpop"
)

// nonceProof is a DPoP proof carrying a server nonce (RFC 9449 §8, §9).
func (h holder) nonceProof(t *testing.T, method, target, accessToken, nonce string) string {
	t.Helper()
	c := map[string]any{"jti": rand.Text(), "htm": method, "htu": target, "iat": time.Now().Unix(), "nonce": nonce}
	if accessToken != "" {
		c["ath"] = dpop.Hash(accessToken)
	}
	return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: h.priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"), c)
}

// resourceAnswer is a protected resource's answer.
type resourceAnswer struct {
	Status     int
	Challenges []string // the WWW-Authenticate values
	Nonce      string   // DPoP-Nonce
	Body       string
}

func (a resourceAnswer) challenge(scheme string) string {
	for _, c := range a.Challenges {
		if strings.HasPrefix(c, scheme+" ") {
			return c
		}
	}
	return ""
}

func callResource(t *testing.T, target, authz, proof string) resourceAnswer {
	t.Helper()
	req, _ := http.NewRequest("GET", target, nil)
	if authz != "" {
		req.Header.Set("Authorization", authz)
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resourceAnswer{Status: resp.StatusCode, Challenges: resp.Header.Values("WWW-Authenticate"), Nonce: resp.Header.Get("DPoP-Nonce"), Body: string(b)}
}

// TestDPoPNonceChallenges (RFC 9449 §7.1, §8, §9): with server nonces on,
// a client that sends a proof without the nonce is told so in a way a
// standard client understands — 400 use_dpop_nonce with a DPoP-Nonce at
// the token endpoint, 401 with a DPoP challenge and a DPoP-Nonce at
// userinfo and at the demo API — and recovers by retrying; every failure
// of the DPoP scheme is challenged with the DPoP scheme.
func TestDPoPNonceChallenges(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.DPoPNonce = "on" })
	key, thief := newHolder(t), newHolder(t)
	tokenURL := e.URL + "/token"

	r := authRequest{ClientID: "cli", RedirectURI: cliRedirect, Scope: "openid email", State: "s", Verifier: strings.Repeat("n", 43)}
	code := e.browser().authorize(r, "email").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirect}, "code_verifier": {r.Verifier}, "client_id": {"cli"}}
	first := e.dpopToken(form, key.proof(t, "POST", tokenURL, ""), "", "")
	wantTokenError(t, first, 400, "use_dpop_nonce")
	nonce := first.Header.Get("DPoP-Nonce")
	if nonce == "" {
		t.Fatal("use_dpop_nonce at /token without a DPoP-Nonce header")
	}
	wantTokenError(t, e.dpopToken(form, key.nonceProof(t, "POST", tokenURL, "", "forged-nonce"), "", ""), 400, "use_dpop_nonce")
	tok := e.dpopToken(form, key.nonceProof(t, "POST", tokenURL, "", nonce), "", "")
	wantStatus(t, tok.Status, 200, "token with the nonce", tok.Description)

	// The demo API, with nonces of its own.
	api := httptest.NewServer(nil)
	defer api.Close()
	mux := http.NewServeMux()
	(&resource.Server{URL: api.URL, Log: quietLog(),
		DPoP:     &dpop.Checker{Replays: &dpop.MemoryReplays{}, Now: time.Now, Nonces: &dpop.Nonces{Key: []byte(rand.Text()), Slot: 5 * time.Minute}},
		Verifier: &resource.Verifier{Issuer: e.URL, Audience: "api", JWKSURL: e.URL + "/jwks.json", HTTP: http.DefaultClient, Now: time.Now},
		Lookup: func(_ ctxT, sub string) (*resource.Profile, error) {
			return &resource.Profile{Email: "amal@example.com"}, nil
		},
	}).Register(mux)
	api.Config.Handler = mux

	for name, target := range map[string]string{"userinfo": e.URL + "/userinfo", "demo API": api.URL + "/api/email"} {
		t.Run(name, func(t *testing.T) {
			at := "DPoP " + tok.AccessToken
			// A standard client: no nonce yet, told to use one, retries.
			a := callResource(t, target, at, key.proof(t, "GET", target, tok.AccessToken))
			if a.Status != 401 || !strings.Contains(a.challenge("DPoP"), `error="use_dpop_nonce"`) || a.Nonce == "" {
				t.Fatalf("proof without nonce: %d %q nonce %q %s", a.Status, a.Challenges, a.Nonce, a.Body)
			}
			if !strings.Contains(a.Body, `"use_dpop_nonce"`) {
				t.Fatalf("use_dpop_nonce body: %s", a.Body)
			}
			ok := callResource(t, target, at, key.nonceProof(t, "GET", target, tok.AccessToken, a.Nonce))
			if ok.Status != 200 || !strings.Contains(ok.Body, "amal@example.com") || ok.Nonce == "" {
				t.Fatalf("retry with the nonce: %d %q %s", ok.Status, ok.Challenges, ok.Body)
			}
			stale := callResource(t, target, at, key.nonceProof(t, "GET", target, tok.AccessToken, "not-a-nonce-of-this-server"))
			if stale.Status != 401 || !strings.Contains(stale.challenge("DPoP"), `error="use_dpop_nonce"`) || stale.Nonce == "" {
				t.Fatalf("proof with a wrong nonce: %d %q %q", stale.Status, stale.Challenges, stale.Nonce)
			}

			// Failures of the DPoP scheme are challenged with it.
			n := ok.Nonce
			for _, tc := range []struct {
				name, authz, proof, code, says string
			}{
				{"bound token as Bearer", "Bearer " + tok.AccessToken, "", "invalid_token", "DPoP-bound"},
				{"no proof", at, "", "invalid_dpop_proof", "no DPoP proof"},
				{"proof for another URL", at, key.nonceProof(t, "GET", target+"/x", tok.AccessToken, n), "invalid_dpop_proof", "another URL"},
				{"proof of another key", at, thief.nonceProof(t, "GET", target, tok.AccessToken, n), "invalid_token", "not signed by the key"},
				{"proof without ath", at, key.nonceProof(t, "GET", target, "", n), "invalid_dpop_proof", "ath"},
				{"not a proof", at, "eyJhbGciOiJub25lIn0.e30.", "invalid_dpop_proof", "DPoP proof"},
			} {
				a := callResource(t, target, tc.authz, tc.proof)
				c := a.challenge("DPoP")
				if a.Status != 401 || !strings.Contains(c, `error="`+tc.code+`"`) || !strings.Contains(c, `algs="ES256`) ||
					!strings.Contains(c, tc.says) || a.challenge("Bearer") != "" {
					t.Errorf("%s: %d %q %s", tc.name, a.Status, a.Challenges, a.Body)
				}
			}
			// No token at all: both schemes are offered (§7.2).
			if a := callResource(t, target, "", ""); a.Status != 401 || a.challenge("Bearer") == "" || !strings.Contains(a.challenge("DPoP"), "algs=") {
				t.Errorf("no token: %d %q", a.Status, a.Challenges)
			}
		})
	}
}
