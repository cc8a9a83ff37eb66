package sqlite_test

import (
	"context"
	"database/sql"
	"flag"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

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

// TestIncrementalVacuum: a database made before incremental auto-vacuum
// is switched at open, and pruning hands freed pages back, so the file
// shrinks.
func TestIncrementalVacuum(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bawwab.db")
	old, err := sql.Open("sqlite", "file:"+path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := old.ExecContext(ctx, "PRAGMA auto_vacuum = NONE; CREATE TABLE legacy (x TEXT)"); err != nil {
		t.Fatal(err)
	}
	old.Close()

	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var mode int
	if err := s.DB().QueryRowContext(ctx, "PRAGMA auto_vacuum").Scan(&mode); err != nil || mode != 2 {
		t.Fatalf("auto_vacuum = %d (%v), want 2 (incremental)", mode, err)
	}
	pages := func() int {
		var n int
		if err := s.DB().QueryRowContext(ctx, "PRAGMA page_count").Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	past := time.Now().Add(-time.Hour)
	for i := range 2000 {
		key := fmt.Sprintf("jti-%d-%s", i, strings.Repeat("x", 200))
		if err := s.UseOnce(ctx, key, past); err != nil {
			t.Fatal(err)
		}
	}
	full := pages()
	if _, err := s.Prune(ctx, storage.Prune{Now: time.Now(), MaxBatches: 100}); err != nil {
		t.Fatal(err)
	}
	if after := pages(); after >= full/2 {
		t.Fatalf("after pruning every row the file has %d pages of %d", after, full)
	}
}

// TestSecretEncoding: a secret is stored as lower-case hex text, the form
// earlier versions wrote, so that databases written by them still read.
func TestSecretEncoding(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.Secret(ctx, "new", []byte{0x00, 0xab, 0x10}); err != nil {
		t.Fatal(err)
	}
	var stored string
	if err := s.DB().QueryRowContext(ctx, `SELECT value FROM secrets WHERE name = 'new'`).Scan(&stored); err != nil {
		t.Fatal(err)
	}
	if stored != "00ab10" {
		t.Fatalf("stored %q, want 00ab10", stored)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES ('old', 'ff00c3')`); err != nil {
		t.Fatal(err)
	}
	got, err := s.Secret(ctx, "old", []byte{1})
	if err != nil || string(got) != "\xff\x00\xc3" {
		t.Fatalf("secret written before: %x, %v; want ff00c3", got, err)
	}
	if _, err := s.DB().ExecContext(ctx, `INSERT INTO secrets (name, value) VALUES ('bad', 'not hex')`); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Secret(ctx, "bad", []byte{1}); err == nil {
		t.Fatal("a secret that is not hex was read")
	}
}

var measure = flag.Int("measure", 0, "TestBytesPerRow: rows of each kind to add (e.g. 20000); 0 skips it")

// TestBytesPerRow measures the database file's growth per user, grant and
// audit event, indexes included (docs/deploy.md quotes it):
//
//	go test ./internal/storage/sqlite/ -run TestBytesPerRow -measure 20000 -v
func TestBytesPerRow(t *testing.T) {
	if *measure == 0 {
		t.Skip("a measurement: run with -measure 20000")
	}
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	size := func() int64 {
		var pages, free, pageSize int64
		db := s.DB()
		if _, err := db.ExecContext(ctx, "PRAGMA wal_checkpoint(TRUNCATE)"); err != nil {
			t.Fatal(err)
		}
		for q, p := range map[string]*int64{"PRAGMA page_count": &pages, "PRAGMA freelist_count": &free, "PRAGMA page_size": &pageSize} {
			if err := db.QueryRowContext(ctx, q).Scan(p); err != nil {
				t.Fatal(err)
			}
		}
		return (pages - free) * pageSize
	}
	for _, kind := range storagetest.Kinds {
		before := size()
		if err := storagetest.Grow(ctx, s, kind, *measure); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-8s %5d bytes each", kind, (size()-before)/int64(*measure))
	}
}
