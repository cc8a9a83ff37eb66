package postgres_test

import (
	"context"
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
