package sqlstore

import (
	"context"
	"errors"
	"path/filepath"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestUsernameKeyMigration: a database made before usernames had a key,
// holding two users whose names differ only in case, migrates without
// failing; one of them holds the key, the other keeps none, both still
// sign in by their own name, and no third spelling can be made.
func TestUsernameKeyMigration(t *testing.T) {
	ctx := context.Background()
	path := filepath.Join(t.TempDir(), "bawwab.db")
	saved := migrations
	migrations = saved[:37] // before the username key
	db := openDB(t, path)
	old := &Store{db: db, d: testDialect}
	err := old.migrate(ctx)
	migrations = saved
	if err != nil {
		t.Fatal(err)
	}
	for _, id := range []string{"a", "b", "c"} {
		name := map[string]string{"a": "admin", "b": "Admin", "c": "rania"}[id]
		if _, err := db.Exec(`INSERT INTO users (`+userCols+`, email_key) VALUES ($1, $2, '', $2, '', 0, '', 0, '{}', 0, 0, 0, '')`, id, name); err != nil {
			t.Fatal(err)
		}
	}
	old.Close()

	db = openDB(t, path)
	s, err := New(ctx, db, testDialect)
	if err != nil {
		t.Fatalf("migrating a database with lookalike usernames: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	keys := map[string]*string{}
	rows, err := db.Query(`SELECT id, username_key FROM users`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var id string
		var key *string
		if err := rows.Scan(&id, &key); err != nil {
			t.Fatal(err)
		}
		keys[id] = key
	}
	rows.Close()
	if keys["c"] == nil || *keys["c"] != "rania" || (keys["a"] == nil) == (keys["b"] == nil) {
		t.Fatalf("keys after the migration: a=%v b=%v c=%v, want rania's and exactly one of admin's and Admin's", keys["a"], keys["b"], keys["c"])
	}
	for _, name := range []string{"admin", "Admin"} {
		if u, err := s.GetUserByUsername(ctx, name); err != nil || u.Username != name {
			t.Fatalf("get %s: %+v %v", name, u, err)
		}
	}
	err = s.CreateUser(ctx, storage.User{ID: "d", Username: "ADMIN", Name: "x"})
	if !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("create ADMIN beside admin and Admin: %v", err)
	}
	// The holder gone, the other takes the key at the next start.
	holder := "a"
	if keys["a"] == nil {
		holder = "b"
	}
	if _, err := db.Exec(`DELETE FROM users WHERE id = $1`, holder); err != nil {
		t.Fatal(err)
	}
	if err := s.fillUsernameKeys(ctx); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "d", Username: "ADMIN", Name: "x"}); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("create ADMIN once the other holds the key: %v", err)
	}
}
