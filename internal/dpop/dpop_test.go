package dpop

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"net/http/httptest"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/oautherr"
)

func proof(t *testing.T, nonce string, iat time.Time) string {
	k, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"))
	if err != nil {
		t.Fatal(err)
	}
	c := map[string]any{"jti": rand.Text(), "htm": "POST", "htu": "https://id.example/token", "iat": iat.Unix()}
	if nonce != "" {
		c["nonce"] = nonce
	}
	raw, _ := jwt.Signed(s).Claims(c).Serialize()
	return raw
}

// TestNonces: with server nonces on, a proof needs the current (or the
// previous) slot's nonce; the answer tells which error and which nonce.
func TestNonces(t *testing.T) {
	now := time.Now()
	clock := func() time.Time { return now }
	c := &Checker{Replays: &MemoryReplays{}, Now: clock, Nonces: &Nonces{Key: []byte("k"), Slot: time.Minute}}
	check := func(p string) error {
		r := httptest.NewRequest("POST", "https://id.example/token", nil)
		r.Header.Set("DPoP", p)
		_, err := c.Check(context.Background(), r, "https://id.example/token", "")
		return err
	}
	if err := check(proof(t, "", now)); oautherr.Code(err) != UseNonce {
		t.Fatalf("proof without nonce: %v", err)
	}
	w := httptest.NewRecorder()
	c.SetNonce(w)
	nonce := w.Header().Get("DPoP-Nonce")
	if err := check(proof(t, nonce, now)); err != nil {
		t.Fatalf("proof with the current nonce: %v", err)
	}
	now = now.Add(time.Minute)
	if err := check(proof(t, nonce, now)); err != nil {
		t.Fatalf("proof with the previous slot's nonce: %v", err)
	}
	now = now.Add(time.Minute)
	if err := check(proof(t, nonce, now)); oautherr.Code(err) != UseNonce {
		t.Fatalf("stale nonce: %v", err)
	}
	other := &Nonces{Key: []byte("other"), Slot: time.Minute}
	if err := check(proof(t, other.Current(now), now)); oautherr.Code(err) != UseNonce {
		t.Fatalf("another server's nonce: %v", err)
	}
}

// TestWindow: a proof's iat must lie within the checker's window either
// way; the default is Window.
func TestWindow(t *testing.T) {
	now := time.Now()
	for _, tc := range []struct {
		name   string
		window time.Duration
		skew   time.Duration // iat - now
		ok     bool
	}{
		{"default, 50 s old", 0, -50 * time.Second, true},
		{"default, 70 s old", 0, -70 * time.Second, false},
		{"default, 50 s ahead", 0, 50 * time.Second, true},
		{"10 s window, 20 s old", 10 * time.Second, -20 * time.Second, false},
		{"10 s window, 20 s ahead", 10 * time.Second, 20 * time.Second, false},
		{"10 s window, 5 s ahead", 10 * time.Second, 5 * time.Second, true},
		{"5 min window, 4 min old", 5 * time.Minute, -4 * time.Minute, true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			c := &Checker{Replays: &MemoryReplays{}, Now: func() time.Time { return now }, Window: tc.window}
			r := httptest.NewRequest("POST", "https://id.example/token", nil)
			r.Header.Set("DPoP", proof(t, "", now.Add(tc.skew)))
			_, err := c.Check(context.Background(), r, "https://id.example/token", "")
			if (err == nil) != tc.ok {
				t.Fatalf("Check: %v, want ok=%v", err, tc.ok)
			}
		})
	}
}
