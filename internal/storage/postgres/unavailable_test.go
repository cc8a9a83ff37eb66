package postgres_test

import (
	"context"
	"errors"
	"fmt"
	"net"
	"testing"
	"time"

	"github.com/jackc/pgx/v5/pgconn"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// TestUnavailableCodes classifies PostgreSQL server errors by SQLSTATE:
// connection exceptions (08), insufficient resources (53) and shutdowns
// (57P01–57P03) are outages; the rest are bugs or bad requests.
func TestUnavailableCodes(t *testing.T) {
	tests := []struct {
		code string
		want bool
	}{
		{"08006", true},  // connection_failure
		{"08001", true},  // sqlclient_unable_to_establish_sqlconnection
		{"53300", true},  // too_many_connections
		{"53100", true},  // disk_full
		{"53200", true},  // out_of_memory
		{"57P01", true},  // admin_shutdown
		{"57P02", true},  // crash_shutdown
		{"57P03", true},  // cannot_connect_now
		{"57014", false}, // query_canceled
		{"23505", false}, // unique_violation
		{"40001", false}, // serialization_failure
		{"42P01", false}, // undefined_table
		{"25006", false}, // read_only_sql_transaction
	}
	for _, tt := range tests {
		t.Run(tt.code, func(t *testing.T) {
			err := fmt.Errorf("query: %w", &pgconn.PgError{Code: tt.code})
			if got := postgres.Dialect.Unavailable(err); got != tt.want {
				t.Errorf("Unavailable(SQLSTATE %s) = %v, want %v", tt.code, got, tt.want)
			}
		})
	}
}

// TestUnavailableConnErrors classifies pgconn's own errors: a connection
// found closed during a request is an outage (the request may have been
// sent, so the caller cannot know whether it took effect; the retry-safe
// refresh rotation covers that case).
func TestUnavailableConnErrors(t *testing.T) {
	tests := []struct {
		name string
		err  error
		want bool
	}{
		{"conn closed mid-request", fmt.Errorf("commit: %w", pgconn.ErrConnClosed), true},
		{"plain error", errors.New("sql: Scan error on column index 0"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := postgres.Dialect.Unavailable(tt.err); got != tt.want {
				t.Errorf("Unavailable(%v) = %v, want %v", tt.err, got, tt.want)
			}
		})
	}
}

// TestConnectRefused opens a store on a port nobody listens on: the
// error is an outage, reported quickly.
func TestConnectRefused(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	addr := l.Addr().String()
	l.Close()
	start := time.Now()
	_, err = postgres.Open(context.Background(), "postgres://postgres@"+addr+"/test?sslmode=disable", postgres.Options{})
	if err == nil {
		t.Fatal("Open on a closed port succeeded")
	}
	if !postgres.Dialect.Unavailable(err) {
		t.Errorf("connection refused is not classified as unavailable: %v", err)
	}
	if d := time.Since(start); d > 5*time.Second {
		t.Errorf("Open took %v to fail", d)
	}
}

// TestTerminatedBackend kills the store's server connections, as an
// administrator or a failover does: the next request fails with
// storage.ErrUnavailable (or succeeds on a fresh connection), never with
// another error, and the pool then serves again with new connections.
func TestTerminatedBackend(t *testing.T) {
	dsn, schema := testenv.PostgresSchema(t)
	s := open(t, dsn, schema)
	ctx := context.Background()
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal"}); err != nil {
		t.Fatal(err)
	}
	admin := open(t, dsn, schema)
	kill := func() {
		t.Helper()
		if _, err := admin.DB().ExecContext(ctx, `SELECT pg_terminate_backend(pid) FROM pg_stat_activity
			WHERE pid <> pg_backend_pid() AND application_name = 'bawwab-terminate-test'`); err != nil {
			t.Fatal(err)
		}
		// Termination is asynchronous: wait until the backends are gone.
		for range 50 {
			var n int
			if err := admin.DB().QueryRowContext(ctx, `SELECT COUNT(*) FROM pg_stat_activity
				WHERE pid <> pg_backend_pid() AND application_name = 'bawwab-terminate-test'`).Scan(&n); err != nil {
				t.Fatal(err)
			}
			if n == 0 {
				return
			}
			time.Sleep(100 * time.Millisecond)
		}
		t.Fatal("terminated backends did not exit")
	}
	// Mark the store's connections so that only they are terminated.
	if _, err := s.DB().ExecContext(ctx, `SET application_name = 'bawwab-terminate-test'`); err != nil {
		t.Fatal(err)
	}
	for range 3 {
		conn, err := s.DB().Conn(ctx)
		if err != nil {
			t.Fatal(err)
		}
		if _, err := conn.ExecContext(ctx, `SET application_name = 'bawwab-terminate-test'`); err != nil {
			t.Fatal(err)
		}
		defer conn.Close()
		kill()
		err = conn.PingContext(ctx)
		if err == nil {
			t.Fatal("a terminated connection still answers")
		}
		_, err = conn.ExecContext(ctx, `SELECT 1`)
		if err != nil && !postgres.Dialect.Unavailable(err) {
			t.Errorf("query on a terminated connection: %v is not classified as unavailable", err)
		}
	}
	for range 5 {
		if _, err := s.GetUser(ctx, "u1"); err != nil && !errors.Is(err, storage.ErrUnavailable) {
			t.Fatalf("GetUser after termination = %v, want success or ErrUnavailable", err)
		}
	}
	if _, err := s.GetUser(ctx, "u1"); err != nil {
		t.Fatalf("the pool did not recover: %v", err)
	}
}
