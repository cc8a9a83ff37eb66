package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/scope"
)

// keyPair is a client's signing key and its public JWK.
type keyPair struct {
	priv *ecdsa.PrivateKey
	kid  string
}

func newKeyPair(t *testing.T, kid string) keyPair {
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return keyPair{priv, kid}
}

func (k keyPair) public() jose.JSONWebKey {
	return jose.JSONWebKey{Key: &k.priv.PublicKey, KeyID: k.kid, Algorithm: "ES256", Use: "sig"}
}

func jwkSet(keys ...keyPair) string {
	var set jose.JSONWebKeySet
	for _, k := range keys {
		set.Keys = append(set.Keys, k.public())
	}
	raw, _ := json.Marshal(set)
	return string(raw)
}

// assertion signs a client assertion; change edits its claims first.
func (k keyPair) assertion(t *testing.T, clientID, aud string, change func(*jwt.Claims)) string {
	t.Helper()
	now := time.Now()
	c := jwt.Claims{Issuer: clientID, Subject: clientID, Audience: jwt.Audience{aud}, ID: rand.Text(),
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))}
	if change != nil {
		change(&c)
	}
	return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}, nil, c)
}

func assertionForm(raw string) url.Values {
	return url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}, "client_assertion_type": {clientauth.AssertionType},
		"client_assertion": {raw}}
}

// TestPrivateKeyJWT: clients that authenticate with signed assertions
// (RFC 7523), with keys registered by value or published at a jwks_uri.
func TestPrivateKeyJWT(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	key, stranger := newKeyPair(t, "k1"), newKeyPair(t, "k1")
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "signer", Name: "Signer", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"files.read"}, AuthMethod: "private_key_jwt", JWKS: jwkSet(key)}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	tokenURL := e.URL + "/token"

	good := key.assertion(t, "signer", tokenURL, nil)
	r := e.token(assertionForm(good), "", "")
	wantStatus(t, r.Status, 200, "client_credentials with private_key_jwt", r.Description)
	wantTokenError(t, e.token(assertionForm(good), "", ""), 401, "invalid_client") // jti replay

	// The issuer identifier is an accepted audience too (OpenID Connect Core §9).
	wantStatus(t, e.token(assertionForm(key.assertion(t, "signer", e.URL, nil)), "", "").Status, 200, "aud = issuer", nil)

	for name, raw := range map[string]string{
		"other key":        stranger.assertion(t, "signer", tokenURL, nil),
		"other audience":   key.assertion(t, "signer", "https://other.example/token", nil),
		"expired":          key.assertion(t, "signer", tokenURL, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(-time.Minute)) }),
		"no exp":           key.assertion(t, "signer", tokenURL, func(c *jwt.Claims) { c.Expiry = nil }),
		"lives for a day":  key.assertion(t, "signer", tokenURL, func(c *jwt.Claims) { c.Expiry = jwt.NewNumericDate(time.Now().Add(24 * time.Hour)) }),
		"no jti":           key.assertion(t, "signer", tokenURL, func(c *jwt.Claims) { c.ID = "" }),
		"sub is not iss":   key.assertion(t, "signer", tokenURL, func(c *jwt.Claims) { c.Subject = "notes" }),
		"unknown client":   key.assertion(t, "ghost", tokenURL, nil),
		"alg none":         "eyJhbGciOiJub25lIn0.eyJpc3MiOiJzaWduZXIiLCJzdWIiOiJzaWduZXIifQ.",
		"another client's": key.assertion(t, "notes", tokenURL, nil),
	} {
		if r := e.token(assertionForm(raw), "", ""); r.Status != 401 || r.Error != "invalid_client" {
			t.Errorf("%s: %d %s %s", name, r.Status, r.Error, r.Description)
		}
	}
	// Mixing methods is refused; a keyed client cannot fall back to secrets.
	mixed := assertionForm(key.assertion(t, "signer", tokenURL, nil))
	mixed.Set("client_secret", "x")
	wantTokenError(t, e.token(mixed, "", ""), 400, "invalid_request")
	wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}}, "signer", "guess"), 401, "invalid_client")
	wrongType := assertionForm(key.assertion(t, "signer", tokenURL, nil))
	wrongType.Set("client_assertion_type", "urn:ietf:params:oauth:client-assertion-type:saml2-bearer")
	wantTokenError(t, e.token(wrongType, "", ""), 401, "invalid_client")

	// Introspection takes the same assertions (audience: its endpoint).
	in := url.Values{"token": {r.AccessToken}, "client_assertion_type": {clientauth.AssertionType},
		"client_assertion": {key.assertion(t, "signer", e.URL+"/introspect", nil)}}
	status, _, body := e.post("/introspect", in, "", "")
	if status != 200 {
		t.Fatalf("introspect with private_key_jwt: %d %s", status, body)
	}

	// Keys at a jwks_uri: fetched, cached, refetched when the client
	// rotates to a kid the cache does not know.
	published := atomic.Value{}
	published.Store(jwkSet(newKeyPair(t, "old")))
	var fetches atomic.Int32
	jwks := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(published.Load().(string)))
	}))
	defer jwks.Close()
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "rotator", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"files.read"}, AuthMethod: "private_key_jwt", JWKSURI: jwks.URL, Outbound: e.Server.Outbound}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	rotated := newKeyPair(t, "new")
	published.Store(jwkSet(newKeyPair(t, "old"), rotated))
	for range 3 {
		wantStatus(t, e.token(assertionForm(rotated.assertion(t, "rotator", tokenURL, nil)), "", "").Status, 200, "key from jwks_uri", nil)
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("jwks_uri fetched %d times for 3 requests, want 1 (cache)", n)
	}

	// Registration refuses keyless private_key_jwt clients and private keys.
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "bad", AuthMethod: "private_key_jwt", GrantTypes: []string{"client_credentials"}}, scope.Default()); err == nil {
		t.Fatal("private_key_jwt client without keys accepted")
	}
	privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: key.priv, KeyID: "p"}}})
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "bad", AuthMethod: "private_key_jwt", JWKS: string(privSet),
		GrantTypes: []string{"client_credentials"}}, scope.Default()); err == nil {
		t.Fatal("a private key registered as a client key")
	}

	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	var m struct {
		Methods []string `json:"token_endpoint_auth_methods_supported"`
		Algs    []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	}
	_ = json.Unmarshal([]byte(meta), &m)
	if !slices.Contains(m.Methods, "private_key_jwt") || !slices.Contains(m.Methods, "client_secret_jwt") || !slices.Contains(m.Algs, "ES256") ||
		!slices.Contains(m.Algs, "HS256") || slices.Contains(m.Algs, "none") {
		t.Fatalf("discovery: %+v", m)
	}
}

// hmacAssertion signs a client_secret_jwt assertion with secret.
func hmacAssertion(t *testing.T, secret, clientID, aud string, alg jose.SignatureAlgorithm) string {
	t.Helper()
	now := time.Now()
	return signJWT(t, jose.SigningKey{Algorithm: alg, Key: []byte(secret)}, nil, jwt.Claims{Issuer: clientID, Subject: clientID,
		Audience: jwt.Audience{aud}, ID: rand.Text(), IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute))})
}

// TestClientSecretJWT: a client that signs assertions with its secret
// (RFC 7523, client_secret_jwt). bawwab keeps that secret sealed with a
// server key; every other client's only as a hash.
func TestClientSecretJWT(t *testing.T) {
	e := start(t)
	var created struct {
		Secret string `json:"client_secret"`
	}
	if status, body := e.adminCall("POST", "/admin/clients", adminToken, map[string]any{"client_id": "hmac", "grant_types": []string{"client_credentials"},
		"scopes": []string{"files.read"}, "token_endpoint_auth_method": "client_secret_jwt"}, &created); status != 201 || created.Secret == "" {
		t.Fatalf("register a client_secret_jwt client: %d %s", status, body)
	}
	c, err := e.Store.GetClient(context.Background(), "hmac")
	if err != nil || c.SecretSealed == "" || strings.Contains(c.SecretSealed, created.Secret) {
		t.Fatalf("stored client: %v %+v", err, c)
	}
	tokenURL := e.URL + "/token"
	good := hmacAssertion(t, created.Secret, "hmac", tokenURL, jose.HS256)
	wantStatus(t, e.token(assertionForm(good), "", "").Status, 200, "client_secret_jwt", nil)
	wantTokenError(t, e.token(assertionForm(good), "", ""), 401, "invalid_client") // replay
	wantStatus(t, e.token(assertionForm(hmacAssertion(t, created.Secret, "hmac", tokenURL, jose.HS384)), "", "").Status, 200, "HS384", nil)
	wantTokenError(t, e.token(assertionForm(hmacAssertion(t, "wrong-secret-0123456789-0123456789", "hmac", tokenURL, jose.HS256)), "", ""), 401, "invalid_client")
	// Its secret is not a password: Basic is refused, as is an asymmetric assertion.
	wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}}, "hmac", created.Secret), 401, "invalid_client")
	wantTokenError(t, e.token(assertionForm(newKeyPair(t, "k").assertion(t, "hmac", tokenURL, nil)), "", ""), 401, "invalid_client")
	// A private_key_jwt client is not verified with HMAC (alg confusion).
	key := newKeyPair(t, "k1")
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "signer", GrantTypes: []string{"client_credentials"},
		Scopes: []string{"files.read"}, AuthMethod: "private_key_jwt", JWKS: jwkSet(key)}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	wantTokenError(t, e.token(assertionForm(hmacAssertion(t, jwkSet(key), "signer", tokenURL, jose.HS256)), "", ""), 401, "invalid_client")
}
