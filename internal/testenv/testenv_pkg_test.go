package testenv

import (
	"context"
	"fmt"
	"runtime"
	"strings"
	"testing"

	"github.com/jackc/pgx/v5"
)

// fakeTB records what Missing asks of a test and, as testing does, ends
// the goroutine that asked: call it through run.
type fakeTB struct {
	testing.TB
	skipped, failed string
}

func (f *fakeTB) Helper() {}
func (f *fakeTB) Skipf(format string, args ...any) {
	f.skipped = fmt.Sprintf(format, args...)
	runtime.Goexit()
}
func (f *fakeTB) Fatalf(format string, args ...any) {
	f.failed = fmt.Sprintf(format, args...)
	runtime.Goexit()
}

// run calls fn(f) on a goroutine of its own, which Skipf and Fatalf end.
func (f *fakeTB) run(fn func(testing.TB)) {
	done := make(chan struct{})
	go func() { defer close(done); fn(f) }()
	<-done
}

// TestMissing: a missing part skips the test with a message saying how to
// provide it, unless BAWWAB_REQUIRE_ALL=1 makes it a failure.
func TestMissing(t *testing.T) {
	tests := []struct {
		name, requireAll string
		wantSkip         bool
	}{
		{"default", "", true},
		{"other value", "yes", true},
		{"required", "1", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			t.Setenv("BAWWAB_REQUIRE_ALL", tt.requireAll)
			f := &fakeTB{TB: t}
			f.run(func(tb testing.TB) { Missing(tb, "Chromium", "install chromium") })
			msg := f.failed
			if tt.wantSkip {
				msg = f.skipped
			}
			if (f.skipped != "") != tt.wantSkip || (f.failed != "") == tt.wantSkip || msg == "" {
				t.Fatalf("skipped %q, failed %q; want skip %v", f.skipped, f.failed, tt.wantSkip)
			}
			for _, want := range []string{"Chromium", "install chromium"} {
				if !strings.Contains(msg, want) {
					t.Fatalf("message %q does not say %q", msg, want)
				}
			}
		})
	}
}

// TestPostgresDSNMissing: without the DSN, PostgreSQL tests skip.
func TestPostgresDSNMissing(t *testing.T) {
	t.Setenv("BAWWAB_TEST_POSTGRES_DSN", "")
	t.Setenv("BAWWAB_REQUIRE_ALL", "")
	f := &fakeTB{TB: t}
	f.run(func(tb testing.TB) { PostgresDSN(tb) })
	if !strings.Contains(f.skipped, "BAWWAB_TEST_POSTGRES_DSN") {
		t.Fatalf("skipped %q, want the variable named", f.skipped)
	}
}

// TestPostgresSchema: a test gets a schema of its own, dropped when the
// test ends.
func TestPostgresSchema(t *testing.T) {
	var dsn, schema string
	t.Run("inner", func(t *testing.T) {
		dsn, schema = PostgresSchema(t)
		if !exists(t, dsn, schema) {
			t.Fatalf("schema %s was not created", schema)
		}
	})
	if schema == "" {
		return // skipped: no PostgreSQL
	}
	if exists(t, dsn, schema) {
		t.Fatalf("schema %s outlived its test", schema)
	}
}

func exists(t *testing.T, dsn, schema string) bool {
	t.Helper()
	ctx := context.Background()
	conn, err := pgx.Connect(ctx, dsn)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close(ctx)
	var n int
	if err := conn.QueryRow(ctx, `SELECT count(*) FROM information_schema.schemata WHERE schema_name = $1`, schema).Scan(&n); err != nil {
		t.Fatal(err)
	}
	return n == 1
}
