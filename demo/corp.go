package demo

import (
	"cmp"
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"path/filepath"
	"strconv"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// The person at Example Corp, the demo's upstream identity provider.
const (
	CorpUsername = "layla"
	CorpPassword = "open sesame"
	CorpEmail    = "layla@corp.example"
	// CorpClientID is the client that the demo's bawwab is at Example Corp.
	CorpClientID = "bawwab-demo"
	// CorpUpstream is Example Corp's upstream id at the demo's bawwab: its
	// callback is /upstream/corp/callback.
	CorpUpstream = "corp"
	// CorpName is the name on the login page's button, by language.
	CorpNameEN, CorpNameAR = "Example Corp", "إكزامبل كورب"
)

// CorpOptions say where Example Corp listens and where it sends people
// back after they signed in.
type CorpOptions struct {
	// Host is the host name in its URLs, default 127.0.0.1. It must differ
	// from the demo bawwab's (in RedirectURI): a browser shares cookies
	// between the ports of one host, and the two instances' cookies have
	// the same names, so one would overwrite the other's session.
	Host string
	Port int // 0 picks a free one
	// DataDir holds its SQLite file, apart from the demo's; empty means a
	// temporary directory.
	DataDir string
	// RedirectURI is the demo bawwab's callback for this upstream, e.g.
	// AuthURL + "/upstream/corp/callback".
	RedirectURI string
	// Password overrides the argon2id cost (tests).
	Password *password.Params
	Log      *slog.Logger
}

// Corp is a running Example Corp: a second bawwab, with its own store and
// port, whose people can sign in to the demo's bawwab through it as
// through any OpenID Connect provider, offline. It is on loopback and plain
// http: the demo bawwab reaches it only with its host in
// insecure_outbound_allow.
type Corp struct {
	// Issuer is its issuer; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// ClientID and ClientSecret are the demo bawwab's credentials there
	// (client_secret_basic; code flow with PKCE; scopes openid, email,
	// profile; RedirectURI registered).
	ClientID, ClientSecret string
	done                   chan error
}

// StartCorp starts Example Corp and returns once it listens. It stops when
// ctx ends.
func StartCorp(ctx context.Context, o CorpOptions) (*Corp, error) {
	o.Host = cmp.Or(o.Host, "127.0.0.1")
	if u, err := url.Parse(o.RedirectURI); err != nil || u.Hostname() == "" || strings.EqualFold(u.Hostname(), o.Host) {
		return nil, fmt.Errorf("demo: Example Corp needs a redirect URI on another host name than its own %s, got %q", o.Host, o.RedirectURI)
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	pw := password.Default
	if o.Password != nil {
		pw = *o.Password
	}
	ls, err := listen(o.Port)
	if err != nil {
		return nil, err
	}
	c := &Corp{Issuer: "http://" + net.JoinHostPort(o.Host, strconv.Itoa(ls[0].Addr().(*net.TCPAddr).Port)),
		ClientID: CorpClientID, done: make(chan error, 1)}
	srv, store, err := c.server(ctx, o, pw)
	if err != nil {
		ls[0].Close()
		return nil, err
	}
	go func() { c.done <- srv.Serve(ctx, ls[0]) }()
	go func() { <-ctx.Done(); time.Sleep(50 * time.Millisecond); store.Close() }()
	return c, nil
}

// server opens Example Corp's store, seeds it and builds its server.
func (c *Corp) server(ctx context.Context, o CorpOptions, pw password.Params) (*server.Server, storage.Storage, error) {
	store, err := openStore(ctx, o.DataDir)
	if err != nil {
		return nil, nil, err
	}
	cfg := config.Default()
	cfg.Issuer = c.Issuer
	srv, err := server.New(ctx, cfg, store, o.Log.With("instance", "Example Corp"), server.Options{Password: &pw})
	if err == nil {
		c.ClientSecret, err = seedCorp(ctx, store, o.RedirectURI, pw)
	}
	if err != nil {
		store.Close()
		return nil, nil, err
	}
	return srv, store, nil
}

// seedCorp adds Example Corp's person and the demo bawwab as its client,
// and returns the client's secret.
func seedCorp(ctx context.Context, s storage.Storage, redirectURI string, pw password.Params) (string, error) {
	if _, err := admin.AddUser(ctx, s, admin.UserSpec{Username: CorpUsername, Password: CorpPassword, Name: "Layla Mansour",
		Email: CorpEmail, EmailVerified: true}, pw); err != nil {
		return "", err
	}
	return admin.AddClient(ctx, s, admin.ClientSpec{ID: CorpClientID, Name: "bawwab demo", RedirectURIs: []string{redirectURI},
		Scopes: []string{"openid", "email", "profile"}, Verified: true}, scope.Default())
}

// federate adds Example Corp to the demo bawwab's cfg as an OpenID
// Connect upstream that creates accounts just in time, and allows bawwab
// to call it although it is on loopback over plain http: the demo's only
// exception to outbound's rules, and one for development only.
func (c *Corp) federate(cfg *config.Config) {
	u, _ := url.Parse(c.Issuer) // built by StartCorp
	jit := true
	cfg.Upstreams = append(cfg.Upstreams, upstream.Config{ID: CorpUpstream, Name: map[string]string{"en": CorpNameEN, "ar": CorpNameAR},
		Type: upstream.TypeOIDC, Issuer: c.Issuer, ClientID: c.ClientID, ClientSecret: c.ClientSecret, JIT: &jit})
	cfg.InsecureOutboundAllow = append(cfg.InsecureOutboundAllow, u.Hostname())
}

// corpHost is Example Corp's host name: the other loopback name than the
// demo's, so that a browser keeps the two instances' cookies apart.
func corpHost(demoHost string) string {
	if strings.EqualFold(demoHost, "127.0.0.1") {
		return "localhost"
	}
	return "127.0.0.1"
}

// corpDir is where Example Corp keeps its store, beside the demo's.
func corpDir(dataDir string) string {
	if dataDir == "" {
		return ""
	}
	return filepath.Join(dataDir, "corp")
}

// warnings is log without its information lines: Example Corp's start-up
// notes (its passkeys are off on an IP address, say) would be taken for
// the demo's own.
func warnings(log *slog.Logger) *slog.Logger {
	return slog.New(minLevel{log.Handler(), slog.LevelWarn})
}

type minLevel struct {
	slog.Handler
	min slog.Level
}

func (h minLevel) Enabled(ctx context.Context, l slog.Level) bool {
	return l >= h.min && h.Handler.Enabled(ctx, l)
}

func (h minLevel) WithAttrs(attrs []slog.Attr) slog.Handler {
	return minLevel{h.Handler.WithAttrs(attrs), h.min}
}

func (h minLevel) WithGroup(name string) slog.Handler {
	return minLevel{h.Handler.WithGroup(name), h.min}
}

// Wait blocks until Example Corp stopped and returns its error, if any.
func (c *Corp) Wait() error {
	if err := <-c.done; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}
