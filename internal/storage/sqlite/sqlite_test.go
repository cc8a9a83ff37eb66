package sqlite_test

import (
	"context"
	"path/filepath"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/storage/storagetest"
)

func open(t testing.TB) storage.Storage {
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage { return open(t) })
}

func BenchmarkStore(b *testing.B) { storagetest.Bench(b, open) }

// TestReopen checks that migrations run once and data survives a restart.
func TestReopen(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bawwab.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal"}); err != nil {
		t.Fatal(err)
	}
	s.Close()
	s, err = sqlite.Open(ctx, path)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	defer s.Close()
	if _, err := s.GetUser(ctx, "u1"); err != nil {
		t.Fatalf("user lost across reopen: %v", err)
	}
}
