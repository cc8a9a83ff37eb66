package upstream

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
)

func TestKeySet(t *testing.T) {
	key, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	var hits atomic.Int64
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		hits.Add(1)
		_ = json.NewEncoder(w).Encode(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: &key.PublicKey, KeyID: "k1", Algorithm: "ES256"}}})
	}))
	defer srv.Close()
	now := time.Unix(1_000_000, 0)
	ks := &keySet{uri: srv.URL, http: srv.Client(), now: func() time.Time { return now }}
	sign := func(k any, alg jose.SignatureAlgorithm, kid string) string {
		opts := &jose.SignerOptions{}
		if kid != "" {
			opts = opts.WithHeader("kid", kid)
		}
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: k}, opts)
		if err != nil {
			t.Fatal(err)
		}
		obj, _ := s.Sign([]byte(`{"a":1}`))
		raw, _ := obj.CompactSerialize()
		return raw
	}
	ctx := context.Background()
	for _, tt := range []struct {
		name string
		raw  string
		ok   bool
	}{
		{"its key", sign(key, jose.ES256, "k1"), true},
		{"no kid", sign(key, jose.ES256, ""), true},
		{"another key, its kid", sign(other, jose.ES256, "k1"), false},
		{"another key, another kid", sign(other, jose.ES256, "k2"), false},
		{"HS256", sign([]byte("0123456789abcdef0123456789abcdef"), jose.HS256, "k1"), false},
		{"not a JWT", "a.b.c", false},
	} {
		if _, err := ks.VerifySignature(ctx, tt.raw); (err == nil) != tt.ok {
			t.Errorf("%s: err %v", tt.name, err)
		}
	}
	if n := hits.Load(); n != 1 {
		t.Errorf("keys read %d times within %s, want once", n, keyRefetch)
	}
	now = now.Add(keyRefetch)
	if _, err := ks.VerifySignature(ctx, sign(other, jose.ES256, "k3")); err == nil || hits.Load() != 2 {
		t.Errorf("after %s: err %v, %d reads", keyRefetch, err, hits.Load())
	}
}

func TestSigningAlgs(t *testing.T) {
	got := signingAlgs([]string{"none", "HS256", "ES256", "RS256"})
	if len(got) != 2 || got[0] != "ES256" || got[1] != "RS256" {
		t.Fatalf("%v", got)
	}
}
