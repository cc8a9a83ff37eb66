package loadtest_test

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/loadtest"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestScenarios runs every scenario briefly against a real server: each
// must complete operations without a single error, and the table and JSON
// must carry them.
func TestScenarios(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	cfg := config.Default()
	cfg.Issuer = "http://" + l.Addr().String()
	cheap := password.Params{Memory: 1024, Time: 1, Threads: 1}
	srv, err := server.New(ctx, cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), server.Options{Password: &cheap})
	if err != nil {
		t.Fatal(err)
	}
	go srv.Serve(ctx, l)

	target := loadtest.Target{URL: cfg.Issuer, ClientID: "bench", ClientSecret: "bench-secret-0123456789-0123456789",
		RedirectURI: "http://127.0.0.1/callback", Scope: "files.read", Username: "bench", Password: "load test passphrase"}
	if _, err := admin.AddUser(ctx, store, admin.UserSpec{Username: target.Username, Password: target.Password}, cheap); err != nil {
		t.Fatal(err)
	}
	if _, err := admin.AddClient(ctx, store, admin.ClientSpec{ID: target.ClientID, Name: "Bench", RedirectURIs: []string{target.RedirectURI},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:     []string{"openid", "email", "offline_access", "files.read"}, Secret: target.ClientSecret}, scope.Default()); err != nil {
		t.Fatal(err)
	}

	var results []loadtest.Result
	for _, name := range loadtest.Scenarios {
		r, err := loadtest.Run(ctx, target, name, loadtest.Options{Workers: 2, Duration: 300 * time.Millisecond})
		if err != nil {
			t.Fatal(err)
		}
		if r.Errors != 0 || r.Count == 0 || r.PerSecond <= 0 || r.P50ms > r.P99ms || r.P99ms > r.Maxms {
			t.Fatalf("%s: %+v", name, r)
		}
		results = append(results, r)
	}
	// A paced run stays near its rate.
	r, err := loadtest.Run(ctx, target, "client_credentials", loadtest.Options{Workers: 2, Duration: time.Second, Rate: 200})
	if err != nil {
		t.Fatal(err)
	}
	if r.PerSecond < 150 || r.PerSecond > 220 {
		t.Fatalf("paced at 200/s, measured %.0f/s", r.PerSecond)
	}
	if _, err := loadtest.Run(ctx, target, "no_such_scenario", loadtest.Options{Duration: time.Millisecond}); err == nil {
		t.Fatal("unknown scenario accepted")
	}

	var table bytes.Buffer
	if err := loadtest.WriteTable(&table, results); err != nil {
		t.Fatal(err)
	}
	for _, name := range loadtest.Scenarios {
		if !strings.Contains(table.String(), name) {
			t.Fatalf("table lacks %s:\n%s", name, table.String())
		}
	}
	raw, _ := json.Marshal(results)
	if !strings.Contains(string(raw), `"p99_ms"`) {
		t.Fatalf("JSON lacks p99_ms: %s", raw)
	}
}
