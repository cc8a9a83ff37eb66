package sqlite_test

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// rawDB opens path with the given pragmas, outside the store, to provoke
// real SQLite errors.
func rawDB(t *testing.T, path string, params ...string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?"+strings.Join(params, "&"))
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	t.Cleanup(func() { db.Close() })
	return db
}

// TestUnavailable classifies real SQLite errors: what means "the database
// cannot serve for now" (disk full, read-only, locked past the busy timeout,
// a deadline) against what is a bug or a bad request (constraint, syntax, no
// rows), which must stay 500 or 400.
func TestUnavailable(t *testing.T) {
	path := filepath.Join(t.TempDir(), "c.db")
	w := rawDB(t, path, "_pragma=journal_mode(WAL)")
	if _, err := w.Exec(`CREATE TABLE t (k TEXT PRIMARY KEY, v BLOB)`); err != nil {
		t.Fatal(err)
	}
	if _, err := w.Exec(`INSERT INTO t VALUES ('a', x'00')`); err != nil {
		t.Fatal(err)
	}

	full := func() error {
		db := rawDB(t, filepath.Join(t.TempDir(), "full.db"))
		if _, err := db.Exec(`CREATE TABLE f (v BLOB)`); err != nil {
			return err
		}
		if _, err := db.Exec(`PRAGMA max_page_count = 4`); err != nil {
			return err
		}
		_, err := db.Exec(`INSERT INTO f VALUES (randomblob(100000))`)
		return err
	}
	readOnly := func() error {
		_, err := rawDB(t, path, "mode=ro").Exec(`INSERT INTO t VALUES ('b', x'01')`)
		return err
	}
	busy := func() error {
		holder, err := w.Begin()
		if err != nil {
			return err
		}
		defer holder.Rollback()
		if _, err := holder.Exec(`INSERT INTO t VALUES ('c', x'02')`); err != nil {
			return err
		}
		_, err = rawDB(t, path, "_pragma=busy_timeout(10)").Exec(`INSERT INTO t VALUES ('d', x'03')`)
		return err
	}
	unique := func() error { _, err := w.Exec(`INSERT INTO t VALUES ('a', x'00')`); return err }
	syntax := func() error { _, err := w.Exec(`INSERT INTO nowhere VALUES (1)`); return err }
	noRows := func() error { var v []byte; return w.QueryRow(`SELECT v FROM t WHERE k = 'zz'`).Scan(&v) }
	deadline := func() error {
		ctx, cancel := context.WithDeadline(context.Background(), time.Now().Add(-time.Second))
		defer cancel()
		return w.PingContext(ctx)
	}

	tests := []struct {
		name string
		make func() error
		want bool
	}{
		{"disk full (SQLITE_FULL)", full, true},
		{"read-only (SQLITE_READONLY)", readOnly, true},
		{"locked past the busy timeout (SQLITE_BUSY)", busy, true},
		{"deadline passed", deadline, true},
		{"unique violation", unique, false},
		{"no such table", syntax, false},
		{"no rows", noRows, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.make()
			if err == nil {
				t.Fatal("the statement did not fail")
			}
			if got := sqlite.Dialect.Unavailable(err); got != tt.want {
				t.Errorf("Unavailable(%v) = %v, want %v", err, got, tt.want)
			}
			// Wrapped further up, the answer stays the same.
			if got := sqlite.Dialect.Unavailable(fmt.Errorf("op: %w", err)); got != tt.want {
				t.Errorf("wrapped: Unavailable = %v, want %v", got, tt.want)
			}
		})
	}
}

// TestStoreWrapsUnavailable checks that the store's own methods return
// errors that match storage.ErrUnavailable when the file cannot be
// written, and plain errors otherwise.
func TestStoreWrapsUnavailable(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bawwab.db")
	s, err := sqlite.Open(ctx, path)
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	if _, err := s.GetUser(ctx, "nobody"); !errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("GetUser(unknown) = %v, want ErrNotFound only", err)
	}
	// Another connection holds the write lock past the store's busy
	// timeout, bounded here by the request's deadline.
	holder := rawDB(t, path)
	tx, err := holder.Begin()
	if err != nil {
		t.Fatal(err)
	}
	defer tx.Rollback()
	if _, err := tx.Exec(`DELETE FROM users`); err != nil {
		t.Fatal(err)
	}
	dctx, cancel := context.WithTimeout(ctx, 200*time.Millisecond)
	defer cancel()
	err = s.CreateUser(dctx, storage.User{ID: "u1", Username: "amal"})
	if !errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("CreateUser while locked = %v, want ErrUnavailable", err)
	}
	tx.Rollback()
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal"}); err != nil {
		t.Fatalf("CreateUser after the lock: %v", err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal"}); !errors.Is(err, storage.ErrAlreadyExists) || errors.Is(err, storage.ErrUnavailable) {
		t.Fatalf("duplicate CreateUser = %v, want ErrAlreadyExists only", err)
	}
}
