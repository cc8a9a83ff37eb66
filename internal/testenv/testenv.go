// Package testenv decides what a test does when an outside part it needs
// (a PostgreSQL server, a Chromium browser) is absent: skip with a clear
// message on a developer's machine, fail when BAWWAB_REQUIRE_ALL=1 (as in
// CI), so that nothing is silently skipped there.
package testenv

import (
	"context"
	"crypto/rand"
	"fmt"
	"os"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
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

// postgresHow says how to run the PostgreSQL tests.
const postgresHow = "set BAWWAB_TEST_POSTGRES_DSN, e.g. postgres://postgres@127.0.0.1:5432/test"

// MainPostgres runs the tests of a package that has PostgreSQL tests. When
// no server is configured it says so before they are skipped, where a
// person running go test ./... sees it: go test shows the output of a
// passing package only with -v, so the note goes to the terminal too.
// onlyPostgres marks a package all of whose tests need PostgreSQL: its
// summary line then reads [no tests to run].
func MainPostgres(m *testing.M, pkg string, onlyPostgres bool) int {
	if os.Getenv("BAWWAB_TEST_POSTGRES_DSN") == "" && !RequireAll() {
		note := fmt.Sprintf("%s: the PostgreSQL tests were skipped (%s)\n", pkg, postgresHow)
		fmt.Fprint(os.Stderr, note)
		if tty, err := os.OpenFile("/dev/tty", os.O_WRONLY, 0); err == nil {
			_, _ = tty.WriteString(note)
			tty.Close()
		}
		if onlyPostgres {
			// The marker go test looks for to summarize a package whose tests
			// did not run.
			fmt.Println("testing: warning: no tests to run")
		}
	}
	return m.Run()
}

// PostgresDSN returns the DSN of the test PostgreSQL server, or skips t.
func PostgresDSN(t testing.TB) string {
	t.Helper()
	dsn := os.Getenv("BAWWAB_TEST_POSTGRES_DSN")
	if dsn == "" {
		Missing(t, "PostgreSQL", postgresHow)
	}
	return dsn
}

// PostgresSchema returns the test server's DSN and an empty schema created
// for this test and dropped after it, or skips t.
func PostgresSchema(t testing.TB) (dsn, schema string) {
	t.Helper()
	dsn = PostgresDSN(t)
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		Missing(t, "PostgreSQL", fmt.Sprintf("cannot connect to BAWWAB_TEST_POSTGRES_DSN: %v", err))
	}
	defer conn.Close(ctx)
	schema = "bawwab_test_" + strings.ToLower(rand.Text()[:12])
	if _, err := conn.Exec(ctx, "CREATE SCHEMA "+pgx.Identifier{schema}.Sanitize()); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		conn, err := pgx.Connect(ctx, dsn)
		if err != nil {
			return
		}
		defer conn.Close(ctx)
		_, _ = conn.Exec(ctx, "DROP SCHEMA "+pgx.Identifier{schema}.Sanitize()+" CASCADE")
	})
	return dsn, schema
}
