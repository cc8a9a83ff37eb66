package jwks

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

type jwksEnv struct {
	m     *Manager
	store storage.Storage
	now   time.Time
}

func newJWKSEnv(t *testing.T) *jwksEnv {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &jwksEnv{store: s, now: time.Now()}
	e.m, err = New(ctx, s, slog.New(slog.DiscardHandler), func() time.Time { return e.now }, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	return e
}

func (e *jwksEnv) published(t *testing.T) jose.JSONWebKeySet {
	t.Helper()
	mux := http.NewServeMux()
	e.m.Register(mux)
	rec := httptest.NewRecorder()
	mux.ServeHTTP(rec, httptest.NewRequest("GET", "/jwks.json", nil))
	var set jose.JSONWebKeySet
	if err := json.Unmarshal(rec.Body.Bytes(), &set); err != nil || rec.Code != 200 || rec.Header().Get("Content-Type") != "application/jwk-set+json" {
		t.Fatalf("/jwks.json: %d %v", rec.Code, err)
	}
	for _, k := range set.Keys {
		if !k.IsPublic() {
			t.Fatalf("/jwks.json publishes a private key: %s", k.KeyID)
		}
	}
	return set
}

// TestSignVerify: a token verifies with the typ it was signed with and
// no other (RFC 8725 §3.11), with every supported alg; claims of several
// values are merged.
func TestSignVerifyByKind(t *testing.T) {
	e := newJWKSEnv(t)
	ctx := context.Background()
	tests := []struct {
		name          string
		alg           jose.SignatureAlgorithm
		signTyp       string
		verifyTyp     string
		wantSignErr   bool
		wantVerifyErr bool
	}{
		{"ES256 access token", jose.ES256, TypeAccessToken, TypeAccessToken, false, false},
		{"RS256 ID token", jose.RS256, TypeJWT, TypeJWT, false, false},
		{"PS256 logout token", jose.PS256, TypeLogout, TypeLogout, false, false},
		{"default alg is RS256", "", TypeJWT, TypeJWT, false, false},
		{"ID token read as an access token", jose.RS256, TypeJWT, TypeAccessToken, false, true},
		{"access token read as an ID token", jose.ES256, TypeAccessToken, TypeJWT, false, true},
		{"logout token read as an ID token", jose.ES256, TypeLogout, TypeJWT, false, true},
		{"unknown typ", jose.ES256, "dpop+jwt", "", true, false},
		{"unsupported alg", jose.HS256, TypeJWT, "", true, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			raw, err := e.m.SignWith(tt.alg, tt.signTyp, map[string]any{"sub": "u1"}, map[string]any{"aud": "c"})
			if (err != nil) != tt.wantSignErr {
				t.Fatalf("SignWith = %v, wantErr %v", err, tt.wantSignErr)
			}
			if err != nil {
				return
			}
			var out map[string]any
			err = e.m.Verify(ctx, raw, tt.verifyTyp, &out)
			if (err != nil) != tt.wantVerifyErr {
				t.Fatalf("Verify = %v, wantErr %v", err, tt.wantVerifyErr)
			}
			if err == nil && (out["sub"] != "u1" || out["aud"] != "c") {
				t.Fatalf("claims %v, want sub and aud merged", out)
			}
		})
	}
	if _, err := e.m.Sign(TypeJWT, "not an object", map[string]any{"a": 1}); err == nil {
		t.Fatal("Sign merged a claim that is not a JSON object")
	}
	for _, raw := range []string{"garbage", "a.b.c"} {
		if err := e.m.Verify(ctx, raw, TypeJWT); err == nil {
			t.Fatalf("Verify(%q) = nil", raw)
		}
	}
}

// TestRotate: after a rotation new tokens carry the new kid, tokens of
// the old key still verify while it is retained, both keys are
// published, and past the retention the old key is gone and its tokens
// fail.
func TestRotateRetention(t *testing.T) {
	e := newJWKSEnv(t)
	ctx := context.Background()
	old := e.m.ActiveKID()
	oldRS := e.m.KID(jose.RS256)
	before, err := e.m.Sign(TypeAccessToken, map[string]any{"sub": "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if n := len(e.published(t).Keys); n != 2 {
		t.Fatalf("%d keys published at the start, want an ES256 and an RSA key", n)
	}
	kid, err := e.m.Rotate(ctx)
	if err != nil {
		t.Fatal(err)
	}
	if kid == old || e.m.ActiveKID() != kid || e.m.KID(jose.RS256) == oldRS || e.m.KID(jose.PS256) != e.m.KID(jose.RS256) {
		t.Fatalf("after Rotate: active %s (was %s), RS256 %s (was %s)", e.m.ActiveKID(), old, e.m.KID(jose.RS256), oldRS)
	}
	after, err := e.m.Sign(TypeAccessToken, map[string]any{"sub": "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if !strings.Contains(headerOf(t, after), kid) {
		t.Fatalf("a token signed after rotation names %s, want %s", headerOf(t, after), kid)
	}
	if n := len(e.published(t).Keys); n != 4 {
		t.Fatalf("%d keys published after a rotation, want 4 (old ones kept for their tokens)", n)
	}
	for _, raw := range []string{before, after} {
		if err := e.m.Verify(ctx, raw, TypeAccessToken); err != nil {
			t.Fatalf("Verify within the retention: %v", err)
		}
	}
	e.now = e.now.Add(2 * time.Hour)
	if err := e.m.Reload(ctx); err != nil {
		t.Fatal(err)
	}
	if n := len(e.published(t).Keys); n != 2 {
		t.Fatalf("%d keys published past the retention, want 2", n)
	}
	if err := e.m.Verify(ctx, before, TypeAccessToken); err == nil {
		t.Fatal("a token of a key past its retention verifies")
	}
}

// TestReloadSeesOtherNodes: a key rotated by another node (another
// Manager on the same store) is found on first sight of its kid.
func TestReloadSeesOtherNodes(t *testing.T) {
	e := newJWKSEnv(t)
	ctx := context.Background()
	other, err := New(ctx, e.store, slog.New(slog.DiscardHandler), func() time.Time { return e.now }, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	if other.ActiveKID() != e.m.ActiveKID() {
		t.Fatal("two nodes on one store made different keys")
	}
	if _, err := other.Rotate(ctx); err != nil {
		t.Fatal(err)
	}
	raw, err := other.Sign(TypeJWT, map[string]any{"sub": "u1"})
	if err != nil {
		t.Fatal(err)
	}
	if err := e.m.Verify(ctx, raw, TypeJWT); err != nil {
		t.Fatalf("a token of a key rotated on another node: %v", err)
	}
}

func TestSupported(t *testing.T) {
	for alg, want := range map[string]bool{"RS256": true, "PS256": true, "ES256": true, "HS256": false, "none": false, "": false} {
		if got := Supported(alg); got != want {
			t.Errorf("Supported(%q) = %v, want %v", alg, got, want)
		}
	}
}

func headerOf(t *testing.T, raw string) string {
	t.Helper()
	tok, err := jose.ParseSignedCompact(raw, Algorithms)
	if err != nil {
		t.Fatal(err)
	}
	return tok.Signatures[0].Protected.KeyID
}
