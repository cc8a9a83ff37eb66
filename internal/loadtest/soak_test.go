package loadtest_test

import (
	"context"
	"flag"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"path/filepath"
	"sync"
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

var soak = flag.Duration("soak", 0, "run TestSoak for this long (e.g. 4m); 0 skips it")

// TestSoak puts steady load on a real server over SQLite (sign-ins with
// remembered consent, refresh rotations and client_credentials, each paced)
// and samples the database's size (file and WAL). With short lifetimes
// (refresh and access tokens, reuse horizon and audit
// retention of a minute or two),
// pruning must hold the size level: the largest size in the second half of
// the run is at most 25 % above the largest in the first half. Run it with
//
//	go test ./internal/loadtest/ -run TestSoak -soak 6m -v
func TestSoak(t *testing.T) {
	if *soak == 0 {
		t.Skip("a soak test: run with -soak 6m")
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	dir := t.TempDir()
	path := filepath.Join(dir, "soak.db")
	store, err := sqlite.Open(ctx, path)
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
	// Every sign-in starts a chain whose refresh token, unused, lives
	// refresh_token_ttl: that, the reuse horizon and the audit retention
	// set the level.
	cfg.AccessTokenTTL, cfg.CodeTTL, cfg.RefreshTokenTTL = 30*time.Second, 30*time.Second, 30*time.Second
	cfg.RefreshReuseHorizon, cfg.AuditRetention = time.Minute, time.Minute
	cfg.PruneInterval = 10 * time.Second
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

	size := func() int64 {
		var n int64
		for _, f := range []string{path, path + "-wal"} {
			if fi, err := os.Stat(f); err == nil {
				n += fi.Size()
			}
		}
		return n
	}
	var (
		wg      sync.WaitGroup
		mu      sync.Mutex
		results []loadtest.Result
	)
	for _, s := range []struct {
		name string
		rate int
	}{{"flow_session", 100}, {"refresh", 100}, {"client_credentials", 100}} {
		wg.Add(1)
		go func() {
			defer wg.Done()
			r, err := loadtest.Run(ctx, target, s.name, loadtest.Options{Workers: 2, Duration: *soak, Rate: s.rate})
			if err != nil {
				t.Error(err)
			}
			mu.Lock()
			results = append(results, r)
			mu.Unlock()
		}()
	}
	start := time.Now()
	var firstHalf, secondHalf int64
	tick := time.NewTicker(15 * time.Second)
	defer tick.Stop()
	for time.Since(start) < *soak {
		<-tick.C
		n := size()
		rows := ""
		for _, table := range []string{"grants", "refresh_tokens", "auth_codes", "audit_events"} {
			var c int
			_ = store.DB().QueryRowContext(ctx, "SELECT COUNT(*) FROM "+table).Scan(&c)
			rows += fmt.Sprintf(" %s=%d", table, c)
		}
		t.Logf("%4.0f s: %6.2f MB,%s", time.Since(start).Seconds(), float64(n)/1e6, rows)
		if time.Since(start) < *soak/2 {
			firstHalf = max(firstHalf, n)
		} else {
			secondHalf = max(secondHalf, n)
		}
	}
	wg.Wait()
	ops := 0
	for _, r := range results {
		if r.Errors > 0 {
			t.Errorf("%s: %d errors, first: %s", r.Scenario, r.Errors, r.FirstError)
		}
		ops += r.Count
		t.Logf("%s: %d operations, %.0f/s", r.Scenario, r.Count, r.PerSecond)
	}
	t.Logf("%d operations in %v; largest size %.2f MB in the first half, %.2f MB in the second", ops, *soak,
		float64(firstHalf)/1e6, float64(secondHalf)/1e6)
	if secondHalf > firstHalf*5/4 {
		t.Fatalf("the database kept growing: %.2f MB, then %.2f MB", float64(firstHalf)/1e6, float64(secondHalf)/1e6)
	}
}
