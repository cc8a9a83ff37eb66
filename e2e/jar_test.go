package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

// TestJAR plays RFC 9101: a client with registered keys signs its
// authorization request; only the signed parameters count.
func TestJAR(t *testing.T) {
	e := start(t)
	key := newKeyPair(t, "k1")
	const redirect = "https://signed.example/cb"
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "signed", Name: "Signed App", RedirectURIs: []string{redirect},
		Scopes: []string{"openid", "email"}, AuthMethod: "private_key_jwt", JWKS: jwkSet(key)}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	verifier := strings.Repeat("w", 43)
	object := func(change func(map[string]any)) string {
		t.Helper()
		c := map[string]any{"iss": "signed", "aud": e.URL, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": token.NewOpaque(),
			"client_id": "signed", "response_type": "code", "redirect_uri": redirect, "scope": "openid email", "state": "st",
			"nonce": "n1", "code_challenge": token.S256(verifier), "code_challenge_method": "S256", "max_age": 3600}
		if change != nil {
			change(c)
		}
		return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
			(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"), c)
	}
	// Parameters outside the request object are ignored (an attacker's
	// redirect_uri here).
	q := url.Values{"client_id": {"signed"}, "request": {object(nil)}, "redirect_uri": {"https://evil.example/cb"}, "scope": {"openid"}}
	b := e.browser()
	p := b.get("/authorize?" + q.Encode())
	p = b.login(p.Location, userName, userPassword)
	consent := b.get(p.Location)
	if !strings.Contains(consent.Body, "Your email address") {
		t.Fatalf("consent does not show the signed scopes: %s", consent.Body)
	}
	p = b.consent(p.Location, true, "email")
	if !strings.HasPrefix(p.Location, redirect+"?") {
		t.Fatalf("redirect: %s", p.Location)
	}
	cb, _ := url.Parse(p.Location)
	if cb.Query().Get("state") != "st" {
		t.Fatalf("state of the signed request not returned: %s", p.Location)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "redirect_uri": {redirect},
		"code_verifier": {verifier}, "client_assertion_type": {clientauth.AssertionType},
		"client_assertion": {key.assertion(t, "signed", e.URL+"/token", nil)}}
	tok := e.token(form, "", "")
	wantStatus(t, tok.Status, 200, "token for a signed request", tok.Description)

	// Refused, each on the error page (never a redirect to an unverified URI).
	for name, q := range map[string]url.Values{
		"tampered":         {"client_id": {"signed"}, "request": {object(nil)[:len(object(nil))-4] + "AAAA"}},
		"other key":        {"client_id": {"signed"}, "request": {newKeyPair(t, "k1").assertion(t, "signed", e.URL, nil)}},
		"wrong aud":        {"client_id": {"signed"}, "request": {object(func(c map[string]any) { c["aud"] = "https://other.example" })}},
		"no exp":           {"client_id": {"signed"}, "request": {object(func(c map[string]any) { delete(c, "exp") })}},
		"client mismatch":  {"client_id": {"signed"}, "request": {object(func(c map[string]any) { c["client_id"] = "notes" })}},
		"no outer client":  {"request": {object(nil)}},
		"nested request":   {"client_id": {"signed"}, "request": {object(func(c map[string]any) { c["request_uri"] = "urn:x" })}},
		"non-string param": {"client_id": {"signed"}, "request": {object(func(c map[string]any) { c["state"] = map[string]any{"a": 1} })}},
	} {
		if p := e.browser().get("/authorize?" + q.Encode()); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("%s: %d %s", name, p.Status, p.Location)
		}
	}
	// A jti works once.
	once := object(nil)
	e.browser().get("/authorize?" + url.Values{"client_id": {"signed"}, "request": {once}}.Encode())
	if p := e.browser().get("/authorize?" + url.Values{"client_id": {"signed"}, "request": {once}}.Encode()); p.Status != http.StatusBadRequest {
		t.Fatalf("request object replayed: %d", p.Status)
	}

	// Pushed (RFC 9126 §3): the request object goes to /par.
	par := url.Values{"request": {object(nil)}, "client_assertion_type": {clientauth.AssertionType},
		"client_assertion": {key.assertion(t, "signed", e.URL+"/par", nil)}}
	if res := e.push(par, "", ""); res.Status != http.StatusCreated {
		t.Fatalf("pushed request object: %+v", res)
	}

	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(meta, `"request_parameter_supported":true`) {
		t.Fatal("discovery does not advertise request objects")
	}
}
