package sqlstore

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestLegacyEmailKey: a confirmed address whose key was written before
// domains were normalised (its domain in lower-case Unicode) is found by
// either spelling, without a migration; a row with the normalised key
// wins over one with the old key, and writing the row gives it the new key.
func TestLegacyEmailKey(t *testing.T) {
	ctx := context.Background()
	db := openDB(t, filepath.Join(t.TempDir(), "bawwab.db"))
	s, err := New(ctx, db, testDialect)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	u := storage.User{ID: "old", Username: "amal", PasswordHash: "$argon2id$x", Name: "Amal", Email: "Amal@Bücher.example", EmailVerified: true,
		CreatedAt: time.Now()}
	if err := s.CreateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	if _, err := db.Exec(`UPDATE users SET email_key = 'amal@bücher.example' WHERE id = 'old'`); err != nil {
		t.Fatal(err)
	}
	for _, spelling := range []string{"amal@xn--bcher-kva.example", "amal@bücher.example"} {
		if got, err := s.GetUserByEmail(ctx, spelling); err != nil || got.ID != "old" {
			t.Fatalf("get by %s: %v %v", spelling, got, err)
		}
	}
	if err := s.UpdateUser(ctx, u); err != nil {
		t.Fatal(err)
	}
	var key string
	if err := db.QueryRow(`SELECT email_key FROM users WHERE id = 'old'`).Scan(&key); err != nil || key != "amal@xn--bcher-kva.example" {
		t.Fatalf("key after a write: %q %v", key, err)
	}
	// Both keys at once (a row written before, and one since): the
	// normalised key is the address's owner.
	if _, err := db.Exec(`UPDATE users SET email_key = 'amal@bücher.example' WHERE id = 'old'`); err != nil {
		t.Fatal(err)
	}
	n := storage.User{ID: "new", Username: "badr", PasswordHash: "$argon2id$x", Name: "Badr", Email: "amal@xn--bcher-kva.example", EmailVerified: true,
		CreatedAt: time.Now()}
	if err := s.CreateUser(ctx, n); err != nil {
		t.Fatal(err)
	}
	if got, err := s.GetUserByEmail(ctx, "amal@bücher.example"); err != nil || got.ID != "new" {
		t.Fatalf("get with both keys stored: %v %v", got, err)
	}
}
