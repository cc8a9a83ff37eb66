package postgres_test

import (
	"context"
	"flag"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/storage/sqlstore"
	"github.com/bawwab/bawwab/internal/storage/storagetest"
	"github.com/bawwab/bawwab/internal/testenv"
)

func BenchmarkStore(b *testing.B) {
	storagetest.Bench(b, func(tb testing.TB) storage.Storage {
		dsn, schema := testenv.PostgresSchema(tb)
		return open(tb, dsn, schema)
	})
}

func open(t testing.TB, dsn, schema string) *sqlstore.Store {
	t.Helper()
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storagetest.Run(t, func(t *testing.T) storage.Storage {
		dsn, schema := testenv.PostgresSchema(t)
		return open(t, dsn, schema)
	})
}

// TestConcurrentMigrations starts several nodes on one empty schema at once:
// each migration must be applied exactly once.
func TestConcurrentMigrations(t *testing.T) {
	dsn, schema := testenv.PostgresSchema(t)
	var wg sync.WaitGroup
	stores := make([]*sqlstore.Store, 5)
	errs := make([]error, len(stores))
	for i := range stores {
		wg.Go(func() {
			stores[i], errs[i] = postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
		})
	}
	wg.Wait()
	for i, err := range errs {
		if err != nil {
			t.Fatalf("node %d: %v", i, err)
		}
		defer stores[i].Close()
	}
	var n, max int
	if err := stores[0].DB().QueryRow(`SELECT COUNT(*), MAX(version) FROM schema_migrations`).Scan(&n, &max); err != nil {
		t.Fatal(err)
	}
	if n != sqlstore.SchemaVersion() || max != sqlstore.SchemaVersion() {
		t.Fatalf("schema_migrations has %d rows up to %d, want %d", n, max, sqlstore.SchemaVersion())
	}
}

func TestBadDSN(t *testing.T) {
	if _, err := postgres.Open(context.Background(), "postgres://127.0.0.1:1/none?connect_timeout=1", postgres.Options{}); err == nil {
		t.Fatal("open of an unreachable server succeeded")
	}
}

var measure = flag.Int("measure", 0, "TestBytesPerRow: rows of each kind to add (e.g. 20000); 0 skips it")

// TestBytesPerRow measures the tables' growth (heap, indexes and TOAST,
// pg_total_relation_size) per user, grant and audit event; docs/deploy.md
// quotes it:
//
//	go test ./internal/storage/postgres/ -run TestBytesPerRow -measure 20000 -v
func TestBytesPerRow(t *testing.T) {
	if *measure == 0 {
		t.Skip("a measurement: run with -measure 20000")
	}
	ctx := context.Background()
	dsn, schema := testenv.PostgresSchema(t)
	s := open(t, dsn, schema)
	size := func() int64 {
		var n int64
		if err := s.DB().QueryRowContext(ctx, `SELECT COALESCE(SUM(pg_total_relation_size(c.oid)), 0) FROM pg_class c
			JOIN pg_namespace n ON n.oid = c.relnamespace WHERE n.nspname = $1 AND c.relkind = 'r'`, schema).Scan(&n); err != nil {
			t.Fatal(err)
		}
		return n
	}
	for _, kind := range storagetest.Kinds {
		before := size()
		if err := storagetest.Grow(ctx, s, kind, *measure); err != nil {
			t.Fatal(err)
		}
		t.Logf("%-8s %5d bytes each", kind, (size()-before)/int64(*measure))
	}
}
