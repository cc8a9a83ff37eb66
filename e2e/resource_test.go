package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/demo/resource"
)

// TestResourceServer checks the demo API's token validation against a real
// authorization server: every refusal is a 401/403 with an RFC 6750 challenge.
func TestResourceServer(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email offline_access")
	tok := e.redeem(e.browser().authorize(r, "email", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	// An ID token signed like an access token (ES256, same key) still
	// differs by typ.
	notes, _ := e.Store.GetClient(context.Background(), "notes")
	notes.IDTokenAlg = "ES256"
	if err := e.Store.UpdateClient(context.Background(), *notes); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(2 * time.Second) // past the client cache
	r = e.notesRequest("openid email")
	esTok := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	wantStatus(t, esTok.Status, 200, "redeem", esTok.Description)

	now := time.Now()
	api := func(issuer, audience string, clock time.Time, introspect bool) *httptest.Server {
		v := &resource.Verifier{Issuer: issuer, Audience: audience, JWKSURL: e.URL + "/jwks.json", HTTP: http.DefaultClient, Now: func() time.Time { return clock }}
		if introspect {
			v.Introspect = &resource.Introspector{URL: e.URL + "/introspect", ClientID: "api", ClientSecret: "api-secret-for-tests-0123456789", HTTP: http.DefaultClient}
		}
		mux := http.NewServeMux()
		(&resource.Server{Verifier: v, Log: quietLog(), Lookup: func(_ ctxT, sub string) (*resource.Profile, error) {
			return &resource.Profile{Name: "Amal", Email: "amal@example.com", Files: []string{"a.txt"}}, nil
		}}).Register(mux)
		srv := httptest.NewServer(mux)
		t.Cleanup(srv.Close)
		return srv
	}
	good := api(e.URL, "api", now, true)

	call := func(srv *httptest.Server, path, auth string) (int, string) {
		req, _ := http.NewRequest("GET", srv.URL+path, nil)
		if auth != "" {
			req.Header.Set("Authorization", auth)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode, resp.Header.Get("WWW-Authenticate")
	}

	// A token signed with a key the authorization server never published.
	foreign := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		return signJWT(t, jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}}, (&jose.SignerOptions{}).WithType("at+jwt"),
			map[string]any{"iss": e.URL, "aud": "api", "sub": e.UserID, "scope": "email", "client_id": "notes",
				"exp": now.Add(time.Hour).Unix(), "iat": now.Unix()})
	}
	ghostKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
	algNone := seg(`{"alg":"none","typ":"at+jwt"}`) + "." + seg(`{"iss":"`+e.URL+`","aud":"api","sub":"x","scope":"email","exp":9999999999}`) + "."

	cases := []struct {
		name      string
		srv       *httptest.Server
		path      string
		auth      string
		status    int
		challenge string
	}{
		{"valid", good, "/api/email", "Bearer " + tok.AccessToken, 200, ""},
		{"no token", good, "/api/email", "", 401, `Bearer realm="provider-api", scope="email"`},
		{"not bearer", good, "/api/email", "Basic abc", 400, `error="invalid_request"`},
		{"missing scope", good, "/api/files", "Bearer " + tok.AccessToken, 403, `error="insufficient_scope"`},
		{"expired", api(e.URL, "api", now.Add(time.Hour), false), "/api/email", "Bearer " + tok.AccessToken, 401, "expired"},
		{"wrong audience", api(e.URL, "other-api", now, false), "/api/email", "Bearer " + tok.AccessToken, 401, "not meant for this API"},
		{"wrong issuer", api("http://evil.example", "api", now, false), "/api/email", "Bearer " + tok.AccessToken, 401, "another server"},
		{"unknown kid", good, "/api/email", "Bearer " + foreign(jose.ES256, ghostKey, "ghost"), 401, "unknown key"},
		{"known kid, wrong key", good, "/api/email", "Bearer " + foreign(jose.ES256, ghostKey, e.Server.Keys.ActiveKID()), 401, "signature"},
		{"HS256 with a secret", good, "/api/email", "Bearer " + foreign(jose.HS256, []byte("public-key-bytes-used-as-hmac-secret!"), e.Server.Keys.ActiveKID()), 401, "accepted algorithm"},
		{"alg none", good, "/api/email", "Bearer " + algNone, 401, "invalid_token"},
		{"ID token as access token", good, "/api/email", "Bearer " + esTok.IDToken, 401, "at+jwt"},
		{"RS256 ID token as access token", good, "/api/email", "Bearer " + tok.IDToken, 401, "accepted algorithm"},
		{"garbage", good, "/api/email", "Bearer not.a.jwt", 401, "invalid_token"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			status, challenge := call(tc.srv, tc.path, tc.auth)
			if status != tc.status || !strings.Contains(challenge, tc.challenge) {
				t.Fatalf("got %d %q, want %d containing %q", status, challenge, tc.status, tc.challenge)
			}
		})
	}

	t.Run("revoked", func(t *testing.T) {
		if status, _, _ := e.post("/revoke", url.Values{"token": {tok.RefreshToken}}, "notes", e.NotesSecret); status != 200 {
			t.Fatalf("revoke: %d", status)
		}
		status, challenge := call(good, "/api/email", "Bearer "+tok.AccessToken)
		if status != 401 || !strings.Contains(challenge, "revoked") {
			t.Fatalf("revoked token: %d %q", status, challenge)
		}
	})

}
