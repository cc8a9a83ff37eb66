package main

import (
	"context"
	"crypto/rand"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"os"
	"path/filepath"
	"runtime"
	"strings"
	"time"

	"github.com/jackc/pgx/v5"
	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/loadtest"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// report is what `bawwab bench --output json` prints.
type report struct {
	Target      string            `json:"target"`
	Store       string            `json:"store"`
	CPUs        int               `json:"cpus"`
	GoVersion   string            `json:"go_version"`
	BinaryMB    float64           `json:"binary_mb,omitempty"`
	ColdStartMS float64           `json:"cold_start_ms,omitempty"`
	IdleRSSMB   float64           `json:"idle_rss_mb,omitempty"`
	Results     []loadtest.Result `json:"results"`
}

func (a *app) benchCmd() *cobra.Command {
	t := loadtest.Target{ClientID: "bench", ClientSecret: "bench-secret-0123456789-0123456789", RedirectURI: "http://127.0.0.1/callback",
		Scope: "files.read", Username: "bench", Password: "load test passphrase 0123"}
	var o loadtest.Options
	var which, idTokenAlg string
	cmd := &cobra.Command{
		Use:   "bench",
		Short: "Load-test a bawwab server over HTTP and print throughput, latency and memory",
		Long: `bench starts a bawwab server of its own (embedded SQLite in a temporary
directory, or a fresh schema in the PostgreSQL database given with
--database) and drives each scenario against it over HTTP with keep-alive:

  client_credentials   token requests of a confidential client
  introspect_jwt       introspection of a JWT access token
  introspect_opaque    introspection of a refresh token
  flow_login           authorize, login (argon2id), consent remembered, code, token
  flow_session         authorize with a signed-in browser, code, token
  refresh              refresh token rotation, one chain per worker

With --target it drives a running server instead, whose client and user
are given with --client-id, --client-secret, --redirect-uri, --username
and --password.

The bench client's ID tokens are RS256, OpenID Connect's default; an RSA
signature costs about 25 times an ES256 one, so flow_session and refresh
depend on it. --id-token-alg ES256 measures a client registered with
id_token_signed_response_alg ES256.`,
		Args: cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			names := loadtest.Scenarios
			if which != "all" {
				names = strings.Split(which, ",")
			}
			rep := report{Target: t.URL, Store: "external", CPUs: runtime.GOMAXPROCS(0), GoVersion: runtime.Version()}
			if t.URL == "" {
				srv, store, stop, err := a.benchServer(ctx, t, idTokenAlg)
				if err != nil {
					return err
				}
				defer stop()
				t.URL, t.RSS, rep.Target, rep.Store = srv.URL, srv.RSS, srv.URL, store
				rep.ColdStartMS = float64(srv.ColdStart.Microseconds()) / 1000
				if rss, err := srv.RSS(); err == nil {
					rep.IdleRSSMB = float64(rss) / (1 << 20)
				}
				if exe, err := os.Executable(); err == nil {
					if st, err := os.Stat(exe); err == nil {
						rep.BinaryMB = float64(st.Size()) / (1 << 20)
					}
				}
			}
			for _, name := range names {
				r, err := loadtest.Run(ctx, t, strings.TrimSpace(name), o)
				if err != nil {
					return err
				}
				rep.Results = append(rep.Results, r)
				if a.output != "json" {
					fmt.Fprintf(cmd.ErrOrStderr(), "%s: %.0f %ss/s\n", r.Scenario, r.PerSecond, r.Unit)
				}
			}
			out := cmd.OutOrStdout()
			if a.output == "json" {
				enc := json.NewEncoder(out)
				enc.SetIndent("", "  ")
				return enc.Encode(rep)
			}
			fmt.Fprintf(out, "target %s, store %s, %d CPUs, %s\n", rep.Target, rep.Store, rep.CPUs, rep.GoVersion)
			if rep.ColdStartMS > 0 {
				fmt.Fprintf(out, "binary %.1f MB, cold start %.0f ms, idle RSS %.1f MB\n", rep.BinaryMB, rep.ColdStartMS, rep.IdleRSSMB)
			}
			return loadtest.WriteTable(out, rep.Results)
		},
	}
	f := cmd.Flags()
	f.StringVar(&which, "scenario", "all", "comma-separated scenarios, or all")
	f.IntVar(&o.Workers, "workers", 2*runtime.GOMAXPROCS(0), "concurrent workers, each with its own keep-alive connection")
	f.DurationVar(&o.Duration, "duration", 10*time.Second, "length of each scenario")
	f.IntVar(&o.Rate, "rate", 0, "operations a second across all workers; 0 for as fast as possible")
	f.StringVar(&t.URL, "target", "", "base URL of a running server to drive instead of starting one")
	f.StringVar(&t.ClientID, "client-id", t.ClientID, "confidential client of the target")
	f.StringVar(&t.ClientSecret, "client-secret", t.ClientSecret, "its secret")
	f.StringVar(&t.RedirectURI, "redirect-uri", t.RedirectURI, "its redirect URI")
	f.StringVar(&t.Scope, "client-scope", t.Scope, "scope it asks for with client_credentials")
	f.StringVar(&t.Username, "username", t.Username, "user of the target")
	f.StringVar(&t.Password, "password", t.Password, "that user's password")
	f.StringVar(&idTokenAlg, "id-token-alg", "", "ID token alg of the client of a server bench starts: RS256 (when empty), PS256 or ES256")
	return cmd
}

// benchServer seeds a fresh store with the bench client and user and starts
// a server process on it. stop ends the server and removes the store.
func (a *app) benchServer(ctx context.Context, t loadtest.Target, idTokenAlg string) (srv *loadtest.Server, name string, stop func(), err error) {
	exe, err := os.Executable()
	if err != nil {
		return nil, "", nil, err
	}
	var (
		store   storage.Storage
		args    []string
		cleanup func()
	)
	if dsn := a.cfg.Database; dsn != "" {
		store, args, cleanup, err = benchSchema(ctx, dsn)
		name = "postgres"
	} else {
		store, args, cleanup, err = benchSQLite(ctx)
		name = "sqlite"
	}
	if err != nil {
		return nil, "", nil, err
	}
	err = errors.Join(benchSeed(ctx, store, t, idTokenAlg), store.Close())
	if err == nil {
		srv, err = loadtest.StartServer(ctx, exe, args...)
	}
	if err != nil {
		cleanup()
		return nil, "", nil, err
	}
	return srv, name, func() { srv.Stop(); cleanup() }, nil
}

// benchSQLite makes an embedded database in a temporary directory.
func benchSQLite(ctx context.Context) (storage.Storage, []string, func(), error) {
	dir, err := os.MkdirTemp("", "bawwab-bench-")
	if err != nil {
		return nil, nil, nil, err
	}
	cleanup := func() { os.RemoveAll(dir) }
	store, err := sqlite.Open(ctx, filepath.Join(dir, "bawwab.db"))
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	return store, []string{"--data-dir", dir}, cleanup, nil
}

// benchSchema makes a fresh schema in the PostgreSQL database at dsn,
// dropped by the returned cleanup.
func benchSchema(ctx context.Context, dsn string) (storage.Storage, []string, func(), error) {
	u, err := url.Parse(dsn)
	if err != nil || (u.Scheme != "postgres" && u.Scheme != "postgresql") {
		return nil, nil, nil, fmt.Errorf("bench needs --database as a postgres:// URL")
	}
	schema := pgx.Identifier{"bawwab_bench_" + strings.ToLower(rand.Text()[:8])}
	exec := func(sql string) error {
		conn, err := pgx.Connect(context.Background(), dsn)
		if err != nil {
			return err
		}
		defer conn.Close(context.Background())
		_, err = conn.Exec(context.Background(), sql)
		return err
	}
	if err := exec("CREATE SCHEMA " + schema.Sanitize()); err != nil {
		return nil, nil, nil, err
	}
	cleanup := func() { _ = exec("DROP SCHEMA " + schema.Sanitize() + " CASCADE") }
	store, err := postgres.Open(ctx, dsn, postgres.Options{SearchPath: schema[0]})
	if err != nil {
		cleanup()
		return nil, nil, nil, err
	}
	q := u.Query()
	q.Set("search_path", schema[0])
	u.RawQuery = q.Encode()
	return store, []string{"--database", u.String()}, cleanup, nil
}

// benchSeed adds the bench user (with production argon2id parameters) and
// the bench client, whose ID tokens are signed with idTokenAlg.
func benchSeed(ctx context.Context, store storage.Storage, t loadtest.Target, idTokenAlg string) error {
	if _, err := admin.AddUser(ctx, store, admin.UserSpec{Username: t.Username, Password: t.Password, Name: "Bench",
		Email: "bench@example.com"}, password.Default); err != nil {
		return err
	}
	_, err := admin.AddClient(ctx, store, admin.ClientSpec{ID: t.ClientID, Name: "Bench", RedirectURIs: []string{t.RedirectURI},
		GrantTypes: []string{granttype.AuthorizationCode, granttype.RefreshToken, granttype.ClientCredentials},
		Scopes:     []string{"openid", "email", "offline_access", t.Scope}, Secret: t.ClientSecret, IDTokenAlg: idTokenAlg}, scope.Default())
	return err
}
