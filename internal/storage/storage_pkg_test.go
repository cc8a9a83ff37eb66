package storage_test

import (
	"context"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestHash: the stored form of a secret is its SHA-256 in lower-case hex
// (FIPS 180-2 appendix B.1 for "abc").
func TestHash(t *testing.T) {
	tests := []struct{ in, want string }{
		{"abc", "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"},
		{"", "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"},
	}
	for _, tt := range tests {
		if got := storage.Hash(tt.in); got != tt.want {
			t.Errorf("Hash(%q) = %s, want %s", tt.in, got, tt.want)
		}
	}
}

// TestJTIKey: one jti namespace per signer, and the jti itself is hashed
// (a client chooses it, of any length).
func TestJTIKey(t *testing.T) {
	a, b := storage.JTIKey("key-a", "j1"), storage.JTIKey("key-b", "j1")
	if a == b || a == storage.JTIKey("key-a", "j2") {
		t.Fatalf("keys %q and %q: signers or jtis share a namespace", a, b)
	}
	if a != "jti:"+storage.Hash("j1")+":key-a" {
		t.Fatalf("JTIKey = %q", a)
	}
	if strings.Contains(storage.JTIKey("k", strings.Repeat("x", 5000)), "xxxx") {
		t.Fatal("a long jti is stored as given")
	}
}

func TestClientDefaults(t *testing.T) {
	tests := []struct {
		name    string
		c       storage.Client
		subject string
		alg     string
	}{
		{"defaults", storage.Client{}, "public", "RS256"},
		{"pairwise, ES256", storage.Client{Pairwise: true, IDTokenAlg: "ES256"}, "pairwise", "ES256"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.c.SubjectType(); got != tt.subject {
				t.Errorf("SubjectType = %q, want %q", got, tt.subject)
			}
			if got := tt.c.IDTokenSigningAlg(); got != tt.alg {
				t.Errorf("IDTokenSigningAlg = %q, want %q (OpenID Connect Core section 3.1.3.7)", got, tt.alg)
			}
		})
	}
}

// TestErrUnavailable: a backend's wrapped outage is found with errors.Is
// and keeps the driver's error in the chain.
func TestErrUnavailable(t *testing.T) {
	driver := errors.New("dial tcp: connection refused")
	err := fmt.Errorf("get client: %w", fmt.Errorf("postgres: %w: %w", storage.ErrUnavailable, driver))
	if !errors.Is(err, storage.ErrUnavailable) || !errors.Is(err, driver) || errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("errors.Is on %v", err)
	}
}

// countingStore counts the GetClient calls that reach the store.
type countingStore struct {
	storage.Storage
	gets int
}

func (s *countingStore) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	s.gets++
	return s.Storage.GetClient(ctx, id)
}

// TestClientCache: reads within the TTL are served from memory; every
// write through the cache, and the TTL, make the next read go to the
// store; callers cannot change the cached value; errors are not cached.
func TestClientCache(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	inner := &countingStore{Storage: s}
	c := storage.WithClientCache(inner, time.Minute, func() time.Time { return now })
	if err := c.CreateClient(ctx, storage.Client{ID: "app", Name: "App", RedirectURIs: []string{"https://a.example/cb"}}); err != nil {
		t.Fatal(err)
	}
	get := func() *storage.Client {
		t.Helper()
		got, err := c.GetClient(ctx, "app")
		if err != nil {
			t.Fatal(err)
		}
		return got
	}
	steps := []struct {
		name     string
		before   func()
		wantGets int
		wantName string
	}{
		{"first read", nil, 1, "App"},
		{"cached", nil, 1, "App"},
		{"a caller's change does not reach the cache", func() { get().RedirectURIs[0] = "https://evil.example/" }, 1, "App"},
		{"update forgets", func() {
			if err := c.UpdateClient(ctx, storage.Client{ID: "app", Name: "Renamed", RedirectURIs: []string{"https://a.example/cb"}}); err != nil {
				t.Fatal(err)
			}
		}, 2, "Renamed"},
		{"ttl passed", func() { now = now.Add(2 * time.Minute) }, 3, "Renamed"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			if st.before != nil {
				st.before()
			}
			got := get()
			if inner.gets != st.wantGets || got.Name != st.wantName || got.RedirectURIs[0] != "https://a.example/cb" {
				t.Fatalf("store reads %d, client %+v; want %d reads and name %s", inner.gets, got, st.wantGets, st.wantName)
			}
		})
	}
	if err := c.DeleteClient(ctx, "app", now); err != nil {
		t.Fatal(err)
	}
	for i := 0; i < 2; i++ {
		if _, err := c.GetClient(ctx, "app"); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("deleted client read %d: %v, want ErrNotFound", i+1, err)
		}
	}
}
