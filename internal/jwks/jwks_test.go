package jwks

import (
	"context"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

func newManager(t *testing.T) *Manager {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "keys.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	m, err := New(ctx, store, slog.New(slog.NewTextHandler(io.Discard, nil)), time.Now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return m
}

// TestSignVerify: each alg signs with its own key and verifies; tokens
// made with a published key as an HMAC secret, with none, or naming the
// other key's kid are refused.
func TestSignVerify(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	rsaKID, ecKID := m.KID(jose.RS256), m.KID(jose.ES256)
	if rsaKID == "" || ecKID == "" || rsaKID == ecKID || m.KID(jose.PS256) != rsaKID || m.ActiveKID() != ecKID {
		t.Fatalf("kids: RS256 %q PS256 %q ES256 %q active %q", rsaKID, m.KID(jose.PS256), ecKID, m.ActiveKID())
	}
	var rsaPub *rsa.PublicKey
	for _, k := range m.set.Load().public.Keys {
		if k.KeyID == rsaKID {
			rsaPub = k.Key.(*rsa.PublicKey)
			if k.Algorithm != "" || rsaPub.N.BitLen() < 2048 {
				t.Fatalf("RSA key: alg %q, %d bits", k.Algorithm, rsaPub.N.BitLen())
			}
		}
	}
	claims := jwt.Claims{Subject: "amal"}
	for _, alg := range Algorithms {
		raw, err := m.SignWith(alg, TypeJWT, claims)
		if err != nil {
			t.Fatalf("%s: %v", alg, err)
		}
		var got jwt.Claims
		if err := m.Verify(ctx, raw, TypeJWT, &got); err != nil || got.Subject != "amal" {
			t.Fatalf("%s: verify %v %+v", alg, err, got)
		}
		if err := m.Verify(ctx, raw, TypeAccessToken, &got); err == nil {
			t.Fatalf("%s: a JWT verified as an access token", alg)
		}
	}
	if _, err := m.SignWith(jose.HS256, TypeJWT, claims); err == nil {
		t.Fatal("signed with HS256")
	}

	forge := func(alg jose.SignatureAlgorithm, key any, kid string) string {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: alg, Key: jose.JSONWebKey{Key: key, KeyID: kid}},
			(&jose.SignerOptions{}).WithType(TypeJWT))
		if err != nil {
			t.Fatal(err)
		}
		raw, err := jwt.Signed(s).Claims(claims).Serialize()
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	der, _ := x509.MarshalPKIXPublicKey(rsaPub)
	ours, _ := m.SignWith(jose.RS256, TypeJWT, claims)
	for _, tc := range []struct{ name, raw string }{
		{"HS256 with the RSA public key", forge(jose.HS256, der, rsaKID)},
		{"HS256 with the modulus", forge(jose.HS256, rsaPub.N.Bytes(), rsaKID)},
		{"unknown kid", forge(jose.HS256, []byte("0123456789abcdef0123456789abcdef"), "ghost")},
		{"alg none", "eyJhbGciOiJub25lIiwidHlwIjoiSldUIn0.eyJzdWIiOiJhbWFsIn0."},
		{"RS256 signature under the EC kid", swapKID(t, ours, ecKID)},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var got jwt.Claims
			if err := m.Verify(ctx, tc.raw, TypeJWT, &got); err == nil {
				t.Fatal("accepted")
			}
		})
	}
}

// swapKID re-signs nothing: it only edits the kid of a compact JWS, as an
// attacker pointing our RSA signature at the EC key would.
func swapKID(t *testing.T, raw, kid string) string {
	t.Helper()
	parts := strings.SplitN(raw, ".", 3)
	hdr, err := base64.RawURLEncoding.DecodeString(parts[0])
	if err != nil {
		t.Fatal(err)
	}
	var h map[string]any
	if err := json.Unmarshal(hdr, &h); err != nil {
		t.Fatal(err)
	}
	h["kid"] = kid
	hdr, _ = json.Marshal(h)
	return base64.RawURLEncoding.EncodeToString(hdr) + "." + parts[1] + "." + parts[2]
}

// TestRotate: both kinds of key are replaced; the old ones still verify.
func TestRotate(t *testing.T) {
	m := newManager(t)
	ctx := context.Background()
	old := map[jose.SignatureAlgorithm]string{}
	tokens := map[jose.SignatureAlgorithm]string{}
	for _, alg := range Algorithms {
		old[alg] = m.KID(alg)
		tokens[alg], _ = m.SignWith(alg, TypeJWT, jwt.Claims{Subject: "s"})
	}
	kid, err := m.Rotate(ctx)
	if err != nil || kid != m.ActiveKID() {
		t.Fatalf("rotate: %v %s", err, kid)
	}
	for _, alg := range Algorithms {
		if m.KID(alg) == old[alg] {
			t.Fatalf("%s still signs with %s", alg, old[alg])
		}
		var c jwt.Claims
		if err := m.Verify(ctx, tokens[alg], TypeJWT, &c); err != nil && !errors.Is(err, ErrUnknownKey) {
			t.Fatalf("%s token of the retired key: %v", alg, err)
		} else if err != nil {
			t.Fatalf("%s: retired key no longer published", alg)
		}
	}
	if n := len(m.set.Load().public.Keys); n != 4 {
		t.Fatalf("%d keys published, want 4", n)
	}
}
