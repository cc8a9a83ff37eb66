package storagetest_test

import (
	"context"
	"errors"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/storage/storagetest"
)

// The conformance suite runs on SQLite in package sqlite and on
// PostgreSQL in package postgres. Here it is checked from the other side:
// a store that breaks the contract must fail it.

// reusableCodes is SQLite with one defect: a used authorization code
// comes back as if it were fresh, instead of with storage.ErrAlreadyUsed
// (the defect of a get-then-delete store, which lets a stolen code be
// redeemed twice).
type reusableCodes struct{ storage.Storage }

func (s reusableCodes) ConsumeAuthCode(ctx context.Context, hash string, at time.Time) (*storage.AuthCode, *storage.User, error) {
	c, u, err := s.Storage.ConsumeAuthCode(ctx, hash, at)
	if errors.Is(err, storage.ErrAlreadyUsed) {
		return c, u, nil
	}
	return c, u, err
}

const brokenEnv = "BAWWAB_STORAGETEST_BROKEN_STORE"

// TestBrokenStore is run by TestSuiteCatchesBrokenStore in a child
// process, where it must fail.
func TestBrokenStore(t *testing.T) {
	if os.Getenv(brokenEnv) != "1" {
		t.Skip("run by TestSuiteCatchesBrokenStore")
	}
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bawwab.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { s.Close() })
		return reusableCodes{s}
	})
}

// TestSuiteCatchesBrokenStore: the suite fails a store whose used codes
// can be consumed again, in the AuthCodes tests.
func TestSuiteCatchesBrokenStore(t *testing.T) {
	cmd := exec.Command(os.Args[0], "-test.run=^TestBrokenStore$", "-test.v")
	cmd.Env = append(os.Environ(), brokenEnv+"=1")
	out, err := cmd.CombinedOutput()
	var exit *exec.ExitError
	if !errors.As(err, &exit) {
		t.Fatalf("the suite passed a store that lets codes be reused (err %v):\n%s", err, out)
	}
	if !strings.Contains(string(out), "--- FAIL: TestBrokenStore/AuthCodes") {
		t.Fatalf("the suite failed, but not in AuthCodes:\n%s", out)
	}
}
