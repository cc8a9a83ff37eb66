package clientauth

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

const (
	aIssuer   = "https://issuer.example"
	aTokenURL = aIssuer + "/token"
)

// authEnv is an Authenticator on SQLite with a client of each method.
type authEnv struct {
	t       *testing.T
	a       *Authenticator
	store   storage.Storage
	now     time.Time
	secret  string // of "conf" (client_secret_basic/post)
	jwtSec  string // of "hmac" (client_secret_jwt)
	key     *ecdsa.PrivateKey
	keyJWK  jose.JSONWebKey
	pubJWKS string
}

func newAuthEnv(t *testing.T) *authEnv {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &authEnv{t: t, store: s, now: time.Now().Truncate(time.Second)}
	sealer, err := StoreSealer(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	e.a = &Authenticator{Store: s, Audiences: []string{aIssuer, aTokenURL}, Now: func() time.Time { return e.now }, Sealer: sealer}
	e.key, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	e.keyJWK = jose.JSONWebKey{Key: e.key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{e.keyJWK}})
	e.pubJWKS = string(set)

	var confHash, hmacHash string
	e.secret, confHash = NewSecret()
	e.jwtSec, hmacHash = NewSecret()
	hmacClient := storage.Client{ID: "hmac", SecretHash: hmacHash, AuthMethod: MethodSecretJWT}
	if err := SealFor(ctx, s, &hmacClient, e.jwtSec); err != nil {
		t.Fatal(err)
	}
	for _, c := range []storage.Client{
		{ID: "conf", SecretHash: confHash},
		{ID: "pub", Public: true},
		{ID: "pkjwt", AuthMethod: MethodPrivateKeyJWT, JWKS: e.pubJWKS},
		{ID: "nokeys", AuthMethod: MethodPrivateKeyJWT},
		{ID: "a b", SecretHash: confHash}, // an id that needs form-urlencoding in Basic
		hmacClient,
	} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	return e
}

// req is a form POST to the token endpoint.
func req(form url.Values, basicUser, basicPass string) *http.Request {
	r := httptest.NewRequest("POST", aTokenURL, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if basicUser != "" || basicPass != "" {
		r.SetBasicAuth(basicUser, basicPass)
	}
	return r
}

// assertion signs claims (plus defaults unless overridden) as a client
// assertion with key (ES256) or, when hmacKey is set, HS256.
func (e *authEnv) assertion(claims map[string]any, hdr map[jose.HeaderKey]any, hmacKey string) string {
	e.t.Helper()
	c := map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": aTokenURL, "jti": rand.Text(), "exp": e.now.Add(time.Minute).Unix(), "iat": e.now.Unix()}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	opts := &jose.SignerOptions{ExtraHeaders: hdr}
	var sk jose.SigningKey
	if hmacKey != "" {
		sk = jose.SigningKey{Algorithm: jose.HS256, Key: []byte(hmacKey)}
	} else {
		opts.WithHeader(jose.HeaderKey("kid"), "k1")
		sk = jose.SigningKey{Algorithm: jose.ES256, Key: e.key}
	}
	sig, err := jose.NewSigner(sk, opts)
	if err != nil {
		e.t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		e.t.Fatal(err)
	}
	return raw
}

func assertionForm(a string) url.Values {
	return url.Values{"client_assertion_type": {AssertionType}, "client_assertion": {a}}
}

// TestAuthenticate pins each way a client authenticates or fails to
// (RFC 6749 §2.3, RFC 7523 §3, OpenID Connect Core §9): each row a
// request, the client it authenticates as or the error code it gets.
func TestAuthenticate(t *testing.T) {
	e := newAuthEnv(t)
	with := func(f url.Values, k, v string) url.Values {
		g := url.Values{}
		for k, v := range f {
			g[k] = v
		}
		g.Set(k, v)
		return g
	}
	otherKey, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherSig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: otherKey}, nil)
	foreign, _ := jwt.Signed(otherSig).Claims(map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": aTokenURL, "jti": "x",
		"exp": e.now.Add(time.Minute).Unix()}).Serialize()
	embedded := func() string {
		sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.key}, &jose.SignerOptions{EmbedJWK: true})
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := jwt.Signed(sig).Claims(map[string]any{"iss": "pkjwt", "sub": "pkjwt", "aud": aTokenURL, "jti": "emb",
			"exp": e.now.Add(time.Minute).Unix()}).Serialize()
		return raw
	}()
	tests := []struct {
		name     string
		req      *http.Request
		want     string // client id, when it authenticates
		wantErr  string
		wantDesc string
	}{
		// client_secret_basic and client_secret_post (RFC 6749 §2.3.1)
		{"basic", req(url.Values{}, "conf", e.secret), "conf", "", ""},
		{"basic, form-urlencoded id", req(url.Values{}, "a+b", e.secret), "a b", "", ""},
		{"basic, id repeated in the body", req(url.Values{"client_id": {"conf"}}, "conf", e.secret), "conf", "", ""},
		{"basic, another id in the body", req(url.Values{"client_id": {"pub"}}, "conf", e.secret), "", oautherr.InvalidRequest, "differs from the authenticated client"},
		{"basic and post together", req(url.Values{"client_secret": {e.secret}}, "conf", e.secret), "", oautherr.InvalidRequest, "only one client authentication method"},
		{"basic, wrong secret", req(url.Values{}, "conf", "wrong"), "", oautherr.InvalidClient, "wrong credentials"},
		{"basic, unknown client", req(url.Values{}, "nobody", e.secret), "", oautherr.InvalidClient, "unknown client"},
		{"basic, bad escaping", req(url.Values{}, "%zz", e.secret), "", oautherr.InvalidClient, "not form-urlencoded"},
		{"basic, empty id", req(url.Values{}, "", e.secret), "", oautherr.InvalidClient, "not form-urlencoded"},
		{"Authorization not Basic", func() *http.Request {
			r := req(url.Values{}, "", "")
			r.Header.Set("Authorization", "Bearer abc")
			return r
		}(), "", oautherr.InvalidClient, "not valid HTTP Basic"},
		{"post", req(url.Values{"client_id": {"conf"}, "client_secret": {e.secret}}, "", ""), "conf", "", ""},
		{"post, wrong secret", req(url.Values{"client_id": {"conf"}, "client_secret": {"x"}}, "", ""), "", oautherr.InvalidClient, "wrong credentials"},
		{"post, secret twice", req(url.Values{"client_id": {"conf"}, "client_secret": {e.secret, e.secret}}, "", ""), "", oautherr.InvalidRequest, "at most once"},
		{"nothing", req(url.Values{}, "", ""), "", oautherr.InvalidClient, "client authentication is missing"},
		// none (public clients)
		{"public", req(url.Values{"client_id": {"pub"}}, "", ""), "pub", "", ""},
		{"public with a secret", req(url.Values{"client_id": {"pub"}, "client_secret": {"x"}}, "", ""), "", oautherr.InvalidClient, "public client"},
		{"confidential without a secret", req(url.Values{"client_id": {"conf"}}, "", ""), "", oautherr.InvalidClient, "confidential"},
		{"unknown public", req(url.Values{"client_id": {"nobody"}}, "", ""), "", oautherr.InvalidClient, "unknown client"},
		// private_key_jwt (RFC 7523)
		{"assertion", req(assertionForm(e.assertion(nil, nil, "")), "", ""), "pkjwt", "", ""},
		{"assertion, typed", req(assertionForm(e.assertion(nil, map[jose.HeaderKey]any{"typ": "client-authentication+jwt"}, "")), "", ""), "pkjwt", "", ""},
		{"assertion with its client_id", req(with(assertionForm(e.assertion(nil, nil, "")), "client_id", "pkjwt"), "", ""), "pkjwt", "", ""},
		{"assertion with another client_id", req(with(assertionForm(e.assertion(nil, nil, "")), "client_id", "conf"), "", ""), "", oautherr.InvalidRequest, "differs from the assertion's issuer"},
		{"assertion and a secret", req(with(assertionForm(e.assertion(nil, nil, "")), "client_secret", "x"), "", ""), "", oautherr.InvalidRequest, "only one client authentication method"},
		{"assertion and Basic", req(assertionForm(e.assertion(nil, nil, "")), "conf", e.secret), "", oautherr.InvalidRequest, "only one client authentication method"},
		{"assertion of a wrong type", req(url.Values{"client_assertion_type": {"urn:x"}, "client_assertion": {"a.b.c"}}, "", ""), "", oautherr.InvalidClient, "client_assertion_type must be"},
		{"assertion type without assertion", req(url.Values{"client_assertion_type": {AssertionType}}, "", ""), "", oautherr.InvalidClient, "client_assertion_type must be"},
		{"assertion not a JWT", req(assertionForm("garbage"), "", ""), "", oautherr.InvalidClient, "not a valid JWT"},
		{"assertion iss differs from sub", req(assertionForm(e.assertion(map[string]any{"sub": "other"}, nil, "")), "", ""), "", oautherr.InvalidClient, "iss and sub"},
		{"assertion for a secret client", req(assertionForm(e.assertion(map[string]any{"iss": "conf", "sub": "conf"}, nil, "")), "", ""), "", oautherr.InvalidClient, "does not authenticate with assertions"},
		{"secret for an assertion client", req(url.Values{"client_id": {"pkjwt"}, "client_secret": {"x"}}, "", ""), "", oautherr.InvalidClient, "send client_assertion"},
		{"assertion signed by another key", req(assertionForm(foreign), "", ""), "", oautherr.InvalidClient, "not signed by a key of this client"},
		{"assertion of a client without keys", req(assertionForm(e.assertion(map[string]any{"iss": "nokeys", "sub": "nokeys"}, nil, "")), "", ""), "", oautherr.InvalidClient, "keys cannot be read"},
		{"assertion without exp", req(assertionForm(e.assertion(map[string]any{"exp": nil}, nil, "")), "", ""), "", oautherr.InvalidClient, "exp is required"},
		{"assertion expired", req(assertionForm(e.assertion(map[string]any{"exp": e.now.Add(-time.Minute).Unix()}, nil, "")), "", ""), "", oautherr.InvalidClient, "expired"},
		{"assertion for hours", req(assertionForm(e.assertion(map[string]any{"exp": e.now.Add(time.Hour).Unix()}, nil, "")), "", ""), "", oautherr.InvalidClient, "too far ahead"},
		{"assertion without jti", req(assertionForm(e.assertion(map[string]any{"jti": nil}, nil, "")), "", ""), "", oautherr.InvalidClient, "jti is required"},
		{"assertion for another audience", req(assertionForm(e.assertion(map[string]any{"aud": "https://elsewhere.example"}, nil, "")), "", ""), "", oautherr.InvalidClient, "aud must be"},
		{"assertion typed as a DPoP proof", req(assertionForm(e.assertion(nil, map[jose.HeaderKey]any{"typ": "dpop+jwt"}, "")), "", ""), "", oautherr.InvalidClient, "another kind of JWT"},
		{"assertion with an embedded key", req(assertionForm(embedded), "", ""), "", oautherr.InvalidClient, "carries a key in its header"},
		{"assertion with a nonce (an ID token)", req(assertionForm(e.assertion(map[string]any{"nonce": "n"}, nil, "")), "", ""), "", oautherr.InvalidClient, "nonce claim"},
		// client_secret_jwt
		{"secret JWT", req(assertionForm(e.assertion(map[string]any{"iss": "hmac", "sub": "hmac"}, nil, e.jwtSec)), "", ""), "hmac", "", ""},
		{"secret JWT, another secret", req(assertionForm(e.assertion(map[string]any{"iss": "hmac", "sub": "hmac"}, nil, e.secret)), "", ""), "", oautherr.InvalidClient, "not signed with the client's secret"},
		{"secret JWT signed with a key", req(assertionForm(e.assertion(map[string]any{"iss": "hmac", "sub": "hmac"}, nil, "")), "", ""), "", oautherr.InvalidClient, "HMAC-SHA2"},
		{"HMAC for a private_key_jwt client", req(assertionForm(e.assertion(nil, nil, e.jwtSec)), "", ""), "", oautherr.InvalidClient, "asymmetric"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := tt.req.ParseForm(); err != nil {
				t.Fatal(err)
			}
			c, err := e.a.Authenticate(context.Background(), tt.req)
			if tt.wantErr == "" {
				if err != nil || c.ID != tt.want {
					t.Fatalf("Authenticate = %v, %v; want client %s", c, err, tt.want)
				}
				return
			}
			oe := oautherr.From(err)
			if err == nil || oe.Code != tt.wantErr || !strings.Contains(oe.Description, tt.wantDesc) {
				t.Fatalf("Authenticate = %v, want %s mentioning %q", err, tt.wantErr, tt.wantDesc)
			}
		})
	}
}

// TestAssertionReplay: an assertion works once (RFC 7523 §3, jti).
func TestAssertionReplay(t *testing.T) {
	e := newAuthEnv(t)
	for _, tc := range []struct {
		name, client, hmacKey string
	}{{"private_key_jwt", "pkjwt", ""}, {"client_secret_jwt", "hmac", "secret"}} {
		t.Run(tc.name, func(t *testing.T) {
			key := tc.hmacKey
			if key != "" {
				key = e.jwtSec
			}
			a := e.assertion(map[string]any{"iss": tc.client, "sub": tc.client}, nil, key)
			for i, wantErr := range []string{"", oautherr.InvalidClient} {
				r := req(assertionForm(a), "", "")
				_ = r.ParseForm()
				_, err := e.a.Authenticate(context.Background(), r)
				if oautherr.Code(err) != wantErr {
					t.Fatalf("use %d: %v, want %q", i+1, err, wantErr)
				}
				if err != nil && !strings.Contains(err.Error(), "used before") {
					t.Fatalf("replay error %v does not say it was used before", err)
				}
			}
		})
	}
}

// TestAuthenticateThrottle: after Free failures per client and address,
// even the right secret waits (invalid_client with Retry-After); success
// resets the count.
func TestAuthenticateThrottle(t *testing.T) {
	e := newAuthEnv(t)
	e.a.Failures = &ratelimit.Backoff{Counter: e.store, Free: 2, Base: time.Minute, Max: time.Hour, Now: func() time.Time { return e.now }}
	try := func(secret string) error {
		r := req(url.Values{}, "conf", secret)
		_ = r.ParseForm()
		_, err := e.a.Authenticate(context.Background(), r)
		return err
	}
	if err := try(e.secret); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if err := try("wrong"); !strings.Contains(oautherr.From(err).Description, "wrong credentials") {
			t.Fatalf("failure %d: %v", i+1, err)
		}
	}
	if err := try("wrong"); oautherr.Code(err) != oautherr.InvalidClient {
		t.Fatalf("third failure: %v", err)
	}
	err := try(e.secret)
	oe := oautherr.From(err)
	if oe.Code != oautherr.InvalidClient || oe.RetryAfter <= 0 || !strings.Contains(oe.Description, "too many failed") {
		t.Fatalf("right secret while throttled: %v (Retry-After %d), want invalid_client with Retry-After", err, oe.RetryAfter)
	}
	e.now = e.now.Add(2 * time.Hour)
	if err := try(e.secret); err != nil {
		t.Fatalf("after the wait: %v", err)
	}
	// Another client from the same address is not throttled by conf's failures.
	r := req(url.Values{"client_id": {"pub"}}, "", "")
	_ = r.ParseForm()
	if _, err := e.a.Authenticate(context.Background(), r); err != nil {
		t.Fatalf("another client: %v", err)
	}
}

// TestJWKSURI: keys of a private_key_jwt client are fetched from its
// jwks_uri (cached; refetched for an unknown kid at most every 10 s), and
// a jwks_uri at an internal address is never fetched.
func TestJWKSURI(t *testing.T) {
	e := newAuthEnv(t)
	var fetches atomic.Int32
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetches.Add(1)
		_, _ = w.Write([]byte(e.pubJWKS))
	}))
	defer srv.Close()
	ctx := context.Background()
	for _, c := range []storage.Client{
		{ID: "remote", AuthMethod: MethodPrivateKeyJWT, JWKSURI: srv.URL + "/jwks"},
		{ID: "internal", AuthMethod: MethodPrivateKeyJWT, JWKSURI: srv.URL + "/jwks-internal"},
	} {
		if err := e.store.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	auth := func(a *Authenticator, client string) error {
		r := req(assertionForm(e.assertion(map[string]any{"iss": client, "sub": client}, nil, "")), "", "")
		_ = r.ParseForm()
		_, err := a.Authenticate(ctx, r)
		return err
	}

	// Without an allow list, loopback is an internal address: refused.
	with := func(f *outbound.Client) *Authenticator {
		return &Authenticator{Store: e.a.Store, Audiences: e.a.Audiences, Now: e.a.Now, Keys: KeySets{Fetch: f}}
	}
	strict := with(outbound.New(outbound.Options{}))
	if err := auth(strict, "internal"); err == nil || !strings.Contains(err.Error(), "could not be fetched") {
		t.Fatalf("jwks_uri on loopback: %v, want could not be fetched", err)
	}
	if n := fetches.Load(); n != 0 {
		t.Fatalf("the server fetched an internal jwks_uri %d times", n)
	}

	allowed := with(outbound.New(outbound.Options{Allow: outbound.Allow{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}}))
	for i := 0; i < 3; i++ {
		if err := auth(allowed, "remote"); err != nil {
			t.Fatalf("assertion %d: %v", i+1, err)
		}
	}
	if n := fetches.Load(); n != 1 {
		t.Fatalf("jwks_uri fetched %d times for 3 assertions, want 1 (cached)", n)
	}
	// No fetcher at all: not verifiable.
	if err := auth(with(nil), "remote"); err == nil || !strings.Contains(err.Error(), "could not be fetched") {
		t.Fatalf("no fetcher: %v", err)
	}
}

func TestParseKeySet(t *testing.T) {
	priv, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	privSet, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: priv, KeyID: "p"}}})
	e := newAuthEnv(t)
	tests := []struct {
		name    string
		raw     string
		wantErr string
	}{
		{"public keys", e.pubJWKS, ""},
		{"not JSON", "{", "not a JWK Set"},
		{"no keys", `{"keys":[]}`, "no keys"},
		{"a private key", string(privSet), "public keys only"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			_, err := ParseKeySet([]byte(tt.raw))
			if tt.wantErr == "" && err != nil || tt.wantErr != "" && (err == nil || !strings.Contains(err.Error(), tt.wantErr)) {
				t.Fatalf("ParseKeySet = %v, want %q", err, tt.wantErr)
			}
		})
	}
}

// TestSealer: a sealed secret opens with the same key material only, and
// tampering is detected (AES-GCM).
func TestSealer(t *testing.T) {
	s1, _ := NewSealer([]byte("one"))
	s2, _ := NewSealer([]byte("two"))
	sealed := s1.Seal("the secret")
	if sealed == s1.Seal("the secret") {
		t.Fatal("two seals of one secret are equal: the nonce is not random")
	}
	if got, err := s1.Open(sealed); err != nil || got != "the secret" {
		t.Fatalf("Open = %q, %v", got, err)
	}
	tests := []struct{ name, sealed string }{
		{"other key", ""},
		{"not base64", "!!!"},
		{"too short", "AAAA"},
		{"tampered", sealed[:len(sealed)-2] + "AA"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			s := s1
			in := tt.sealed
			if tt.name == "other key" {
				s, in = s2, sealed
			}
			if got, err := s.Open(in); err == nil {
				t.Fatalf("Open(%q) = %q, want an error", in, got)
			}
		})
	}
	// Only client_secret_jwt clients keep their secret sealed.
	ctx := context.Background()
	st, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer st.Close()
	plain := storage.Client{ID: "c"}
	if err := SealFor(ctx, st, &plain, "s"); err != nil || plain.SecretSealed != "" {
		t.Fatalf("SealFor a secret client: %q, %v; want nothing sealed", plain.SecretSealed, err)
	}
}
