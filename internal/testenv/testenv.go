// Package testenv decides what a test does when an outside part it needs
// (a PostgreSQL server, a Chromium browser) is absent: skip with a clear
// message on a developer's machine, fail when BAWWAB_REQUIRE_ALL=1 (as in
// CI), so that nothing is silently skipped there.
package testenv

import (
	"os"
	"testing"
)

// RequireAll reports whether every optional test part must be present.
func RequireAll() bool { return os.Getenv("BAWWAB_REQUIRE_ALL") == "1" }

// Missing skips t, or fails it under BAWWAB_REQUIRE_ALL=1, explaining what is
// missing and how to provide it.
func Missing(t testing.TB, what, howToProvide string) {
	t.Helper()
	if RequireAll() {
		t.Fatalf("%s is required (BAWWAB_REQUIRE_ALL=1) but missing: %s", what, howToProvide)
	}
	t.Skipf("skipping: %s is missing (%s)", what, howToProvide)
}

// PostgresDSN returns the DSN of the test PostgreSQL server, or skips t.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("BAWWAB_TEST_POSTGRES_DSN")
	if dsn == "" {
		Missing(t, "PostgreSQL", "set BAWWAB_TEST_POSTGRES_DSN, e.g. postgres://postgres@127.0.0.1:5432/test")
	}
	return dsn
}
