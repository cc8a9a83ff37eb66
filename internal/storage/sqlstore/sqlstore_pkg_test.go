package sqlstore

import (
	"context"
	"database/sql"
	"database/sql/driver"
	"errors"
	"fmt"
	"io"
	"net"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	_ "modernc.org/sqlite" // the driver; package sqlite imports this one

	"github.com/bawwab/bawwab/internal/storage"
)

// testDialect is enough of SQLite's dialect for these tests.
var testDialect = Dialect{Name: "sqlite", IsUniqueViolation: func(err error) bool {
	return err != nil && strings.Contains(err.Error(), "UNIQUE constraint failed")
}}

func openDB(t *testing.T, path string) *sql.DB {
	t.Helper()
	db, err := sql.Open("sqlite", "file:"+path+"?_pragma=foreign_keys(ON)&_txlock=immediate")
	if err != nil {
		t.Fatal(err)
	}
	db.SetMaxOpenConns(1)
	return db
}

func versions(t *testing.T, db *sql.DB) []int {
	t.Helper()
	rows, err := db.Query(`SELECT version FROM schema_migrations ORDER BY version`)
	if err != nil {
		t.Fatal(err)
	}
	defer rows.Close()
	var out []int
	for rows.Next() {
		var v int
		if err := rows.Scan(&v); err != nil {
			t.Fatal(err)
		}
		out = append(out, v)
	}
	return out
}

// TestMigrate: on a fresh SQLite every migration applies, once and in
// order; a restart applies nothing again; a schema newer than the code is
// refused rather than used.
func TestMigrate(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bawwab.db")
	s, err := New(ctx, openDB(t, path), testDialect)
	if err != nil {
		t.Fatal(err)
	}
	got := versions(t, s.DB())
	if len(got) != SchemaVersion() || SchemaVersion() != len(migrations) {
		t.Fatalf("applied %v, want 1..%d", got, SchemaVersion())
	}
	for i, v := range got {
		if v != i+1 {
			t.Fatalf("applied versions %v are not 1..n in order", got)
		}
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal"}); err != nil {
		t.Fatal(err)
	}
	s.Close()

	s, err = New(ctx, openDB(t, path), testDialect)
	if err != nil {
		t.Fatalf("reopen: %v", err)
	}
	if got := versions(t, s.DB()); len(got) != SchemaVersion() {
		t.Fatalf("reopen applied migrations again: %v", got)
	}
	if _, err := s.GetUser(ctx, "u1"); err != nil {
		t.Fatalf("data lost across reopen: %v", err)
	}
	if _, err := s.DB().Exec(`INSERT INTO schema_migrations (version, applied_at) VALUES ($1, 0)`, SchemaVersion()+1); err != nil {
		t.Fatal(err)
	}
	s.Close()
	if _, err := New(ctx, openDB(t, path), testDialect); err == nil || !strings.Contains(err.Error(), "newer than this binary knows") {
		t.Fatalf("a schema from the future: %v", err)
	}
}

// TestMigrateFailsWhole: a migration that fails leaves the schema as it
// was (one transaction), and says which version failed.
func TestMigrateFailsWhole(t *testing.T) {
	ctx := context.Background()
	saved := migrations
	t.Cleanup(func() { migrations = saved })
	migrations = []string{`CREATE TABLE a (x TEXT)`, `CREATE TABLE b (y TEXT); THIS IS NOT SQL`}
	db := openDB(t, filepath.Join(t.TempDir(), "bawwab.db"))
	_, err := New(ctx, db, testDialect)
	if err == nil || !strings.Contains(err.Error(), "version 2") {
		t.Fatalf("New = %v, want a failure naming version 2", err)
	}
	var n int
	if err := db.QueryRow(`SELECT count(*) FROM sqlite_master WHERE name IN ('a', 'b', 'schema_migrations')`).Scan(&n); err != nil {
		t.Fatal(err)
	}
	if n != 0 {
		t.Fatalf("%d tables left by a failed migration, want none", n)
	}
}

// TestUnavailable pins the one classification of store outages: network,
// deadline and dead-connection errors are storage.ErrUnavailable (handlers
// answer 503), while bugs and missing rows are not.
func TestUnavailable(t *testing.T) {
	locked := errors.New("database is locked")
	d := Dialect{Name: "test", IsUnavailable: func(err error) bool { return errors.Is(err, locked) }}
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"nil", nil, false},
		{"deadline", fmt.Errorf("query: %w", context.DeadlineExceeded), true},
		{"bad connection", driver.ErrBadConn, true},
		{"connection done", sql.ErrConnDone, true},
		{"closed mid-answer", io.ErrUnexpectedEOF, true},
		{"EOF", io.EOF, true},
		{"refused", &net.OpError{Op: "dial", Err: syscall.ECONNREFUSED}, true},
		{"reset", syscall.ECONNRESET, true},
		{"broken pipe", syscall.EPIPE, true},
		{"already classified", fmt.Errorf("x: %w", storage.ErrUnavailable), true},
		{"dialect's own", fmt.Errorf("sqlite: %w", locked), true},
		{"no rows", sql.ErrNoRows, false},
		{"not found", storage.ErrNotFound, false},
		{"syntax error", errors.New("near \"SELEC\": syntax error"), false},
		{"canceled by the client", context.Canceled, false},
	}
	s := &Store{d: d}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := d.Unavailable(tt.err); got != tt.want {
				t.Fatalf("Unavailable = %v, want %v", got, tt.want)
			}
			c := s.classify(tt.err)
			if errors.Is(c, storage.ErrUnavailable) != tt.want {
				t.Fatalf("classify = %v, want ErrUnavailable %v", c, tt.want)
			}
			if tt.err != nil && !errors.Is(c, tt.err) {
				t.Fatalf("classify lost the driver error: %v", c)
			}
		})
	}
	if got := s.classify(driver.ErrBadConn).Error(); !strings.HasPrefix(got, "test: ") {
		t.Fatalf("classified error %q does not name the backend", got)
	}
}

// TestTimes: times are stored as unix seconds, the zero time as 0, and
// read back in UTC; lists as space-separated words.
func TestTimes(t *testing.T) {
	now := time.Date(2026, 11, 30, 4, 5, 6, 789, time.UTC)
	tests := []struct {
		in   time.Time
		want int64
	}{{time.Time{}, 0}, {now, now.Unix()}}
	for _, tt := range tests {
		if got := unix(tt.in); got != tt.want {
			t.Errorf("unix(%v) = %d, want %d", tt.in, got, tt.want)
		}
		back := fromUnix(tt.want)
		if !back.Equal(tt.in.Truncate(time.Second)) || tt.want != 0 && back.Location() != time.UTC {
			t.Errorf("fromUnix(%d) = %v, want %v in UTC", tt.want, back, tt.in.Truncate(time.Second))
		}
	}
	if got := splitList(joinList([]string{"openid", "profile"})); strings.Join(got, ",") != "openid,profile" || len(splitList("")) != 0 {
		t.Errorf("lists do not round-trip: %v", got)
	}
}

func TestOpName(t *testing.T) {
	for q, want := range map[string]string{
		`SELECT a FROM clients WHERE id = $1`:              "select clients",
		`INSERT INTO users (id) VALUES ($1)`:               "insert users",
		`UPDATE auth_codes SET used_at = $1`:               "update auth_codes",
		`DELETE FROM sessions WHERE id_hash = $1`:          "delete sessions",
		`SELECT COALESCE(MAX(version), 0)`:                 "select",
		``:                                                 "unknown",
		"  select x\n from\trefresh_tokens where hash = 1": "select refresh_tokens",
	} {
		if got := opName(q); got != want {
			t.Errorf("opName(%q) = %q, want %q", q, got, want)
		}
	}
}
