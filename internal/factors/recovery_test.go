package factors

import (
	"errors"
	"strings"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/storage/sqlstore"
)

func TestRecoveryCodes(t *testing.T) {
	f := newFixture(t, 100)
	codes, err := f.rec.Generate(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	seen := map[string]bool{}
	for _, c := range codes {
		if len(c) != 31 || seen[c] {
			t.Fatalf("code %q: malformed or repeated", c)
		}
		seen[c] = true
	}
	if len(codes) != RecoveryCodeCount {
		t.Fatalf("%d codes", len(codes))
	}
	// Only hashes are stored.
	rows, err := f.store.(*sqlstore.Store).DB().QueryContext(ctx, `SELECT hash FROM recovery_codes`)
	if err != nil {
		t.Fatal(err)
	}
	for rows.Next() {
		var h string
		_ = rows.Scan(&h)
		for _, c := range codes {
			if strings.Contains(h, normalize(c)) {
				t.Fatal("a recovery code is stored in the clear")
			}
		}
	}
	rows.Close()

	tests := []struct {
		name, code string
		want       error
	}{
		{"as shown", codes[0], nil},
		{"again", codes[0], ErrReplayed},
		{"lower case, no dashes", strings.ToLower(strings.ReplaceAll(codes[1], "-", "")), nil},
		{"with spaces", strings.ReplaceAll(codes[2], "-", " "), nil},
		{"unknown", "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A", ErrInvalidCode},
		{"short", codes[3][:10], ErrInvalidCode},
		{"empty", "", ErrInvalidCode},
		{"a TOTP code", "123456", ErrInvalidCode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.rec.Use(ctx, f.user.ID, tc.code)
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	if n, _ := f.rec.Remaining(ctx, f.user.ID); n != RecoveryCodeCount-3 {
		t.Fatalf("remaining %d", n)
	}
	// Another user cannot spend them.
	if err := f.rec.Use(ctx, "u2", codes[4]); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("another user's code: %v", err)
	}
	// Regenerating invalidates every old code.
	fresh, err := f.rec.Generate(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.rec.Use(ctx, f.user.ID, codes[4]); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("old code after regenerating: %v", err)
	}
	if err := f.rec.Use(ctx, f.user.ID, fresh[0]); err != nil {
		t.Fatalf("new code: %v", err)
	}
}

// TestRecoveryCodeRace: one code sent many times at once is spent once.
func TestRecoveryCodeRace(t *testing.T) {
	f := newFixture(t, 100)
	codes, err := f.rec.Generate(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	var ok, replayed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			err := f.rec.Use(ctx, f.user.ID, codes[0])
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrReplayed):
				replayed++
			default:
				t.Errorf("use: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || replayed != 15 {
		t.Fatalf("accepted %d, replayed %d; want 1 and 15", ok, replayed)
	}
}
