package resource

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"
)

// offline is a Verifier without introspection, against a JWKS of one key,
// and a signer for tokens of that key.
func offline(tb testing.TB) (*Verifier, func(typ string, c any) string) {
	tb.Helper()
	priv, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		tb.Fatal(err)
	}
	pub := jose.JSONWebKey{Key: &priv.PublicKey, KeyID: "k1", Algorithm: "ES256", Use: "sig"}
	jwksSrv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{pub}})
	}))
	tb.Cleanup(jwksSrv.Close)
	v := &Verifier{Issuer: "https://id.example", Audience: "api", JWKSURL: jwksSrv.URL, HTTP: jwksSrv.Client(), Now: time.Now}
	sign := func(typ string, c any) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: priv, KeyID: "k1"}},
			(&jose.SignerOptions{}).WithType(jose.ContentType(typ)))
		if err != nil {
			tb.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(c).Serialize()
		if err != nil {
			tb.Fatal(err)
		}
		return raw
	}
	return v, sign
}

func validClaims() Claims {
	now := time.Now()
	return Claims{Claims: jwt.Claims{Issuer: "https://id.example", Subject: "u1", Audience: jwt.Audience{"api"},
		IssuedAt: jwt.NewNumericDate(now), Expiry: jwt.NewNumericDate(now.Add(time.Minute)), ID: "j1"}, ClientID: "notes", Scope: "email"}
}

// BenchmarkVerify is the offline check a resource server makes on every
// request: parse, ES256 signature, typ, iss, aud, exp.
func BenchmarkVerify(b *testing.B) {
	v, sign := offline(b)
	raw := sign("at+jwt", validClaims())
	ctx := context.Background()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := v.Verify(ctx, raw); err != nil {
			b.Fatal(err)
		}
	}
}

// FuzzVerify feeds the resource server's token parser arbitrary input: it
// must never panic, and must accept no claims but those the authorization
// server's key signed. (Re-encodings of the signed token, such as
// different unused base64 bits, carry the same claims and may pass.)
func FuzzVerify(f *testing.F) {
	v, sign := offline(f)
	valid := sign("at+jwt", validClaims())
	for _, seed := range []string{valid, valid + "x", "", ".", "..", "a.b.c", "eyJhbGciOiJub25lIn0.e30.",
		"eyJhbGciOiJIUzI1NiIsImtpZCI6ImsxIiwidHlwIjoiYXQrand0In0.e30.c2ln", sign("JWT", validClaims())} {
		f.Add(seed)
	}
	ctx := context.Background()
	f.Fuzz(func(t *testing.T, raw string) {
		c, err := v.Verify(ctx, raw)
		if err == nil && (c.ID != "j1" || c.Subject != "u1" || c.Scope != "email" || c.ClientID != "notes") {
			t.Fatalf("accepted claims the key never signed: %q → %+v", raw, c)
		}
	})
}
