// Package server wires bawwab's authorization server: it builds every
// endpoint from a Config and a store, adds the middleware every response
// gets (security headers, panic recovery, body limits), and runs the
// background jobs (expired-row cleanup, key reload).
package server

import (
	"context"
	"crypto/rand"
	"crypto/tls"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/http/pprof"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/account"
	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/authorize"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/console"
	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/introspect"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/metrics"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/oidc"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/registration"
	"github.com/bawwab/bawwab/internal/revoke"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/security"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// Server is a configured authorization server.
type Server struct {
	Config config.Config
	Store  storage.Storage
	Keys   *jwks.Manager
	Issuer *token.Issuer
	Scopes *scope.Catalog
	Log    *slog.Logger
	// Outbound sends the requests made for clients (package outbound).
	Outbound *outbound.Client

	handler http.Handler
	admin   http.Handler
	// adminTLS serves the admin listener over TLS when the settings name
	// a certificate (admin_tls_cert); nil serves plain http.
	adminTLS *tls.Config
	health   *health
	logouts  *backchannel.Notifier
	metrics  *metrics.Metrics
	// storeFiles is Options.StoreFiles.
	storeFiles int
	// mailer delivers the outbox; accounts runs reset requests in the
	// background (package account).
	mailer   *mail.Sender
	accounts *account.Handler
}

// Options change how New builds the server; the zero value is production.
type Options struct {
	// Now replaces the clock (tests).
	Now func() time.Time
	// Password overrides the argon2id parameters (tests use cheaper ones).
	Password *password.Params
	// StoreFiles is how many file descriptors the store holds open at
	// most, left free when the public listener's cap is derived from
	// RLIMIT_NOFILE (MaxConnections). Whoever opened the store knows it;
	// zero counts one per connection of the PostgreSQL pool.
	StoreFiles int
}

// New builds a server on store.
func New(ctx context.Context, cfg config.Config, store storage.Storage, log *slog.Logger, opts Options) (*Server, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	now := opts.Now
	if now == nil {
		now = time.Now
	}
	trusted, err := clientip.ParsePrefixes(cfg.TrustedProxies)
	if err != nil {
		return nil, fmt.Errorf("trusted_proxies: %w", err)
	}
	m := metrics.New(now)
	observeStore(store, m)
	log = slog.New(withRequestID(log.Handler()))
	// Clients are looked up on every token request; other nodes' changes
	// to them are seen within a second.
	store = storage.WithClientCache(store, time.Second, now)
	pw := cfg.PasswordParams()
	if opts.Password != nil {
		pw = *opts.Password
	}
	keys, err := jwks.New(ctx, store, log, now, cfg.KeyRetention())
	if err != nil {
		return nil, fmt.Errorf("signing keys: %w", err)
	}
	secure := strings.HasPrefix(cfg.Issuer, "https://")
	sessions, err := session.New(ctx, store, secure, cfg.SessionTTL, now)
	if err != nil {
		return nil, fmt.Errorf("sessions: %w", err)
	}
	pages, scopes, err := newPages(ctx, cfg, store, log)
	if err != nil {
		return nil, err
	}
	pairwiseKey, err := store.Secret(ctx, "pairwise", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, fmt.Errorf("pairwise key: %w", err)
	}
	auditLog := &audit.Log{Store: store, Log: log, Now: now, Retention: cfg.AuditRetention, OnEvent: m.AuditEvent}
	issuer := &token.Issuer{Audit: auditLog, PairwiseKey: pairwiseKey, URL: cfg.Issuer, Audience: cfg.Audience, Keys: keys, Store: store, Scopes: scopes,
		AccessTTL: cfg.AccessTokenTTL, RefreshTTL: cfg.RefreshTokenTTL, GrantTTL: cfg.GrantTTL, IDTokenTTL: cfg.IDTokenTTL, Now: now,
		AccessTokenAlg: cfg.AccessTokenAlg, Log: log}
	issuer.Leeway = cfg.ClockLeeway
	fetch, err := newOutbound(cfg, log, auditLog)
	if err != nil {
		return nil, err
	}
	auth := &clientauth.Authenticator{Store: store, Failures: &ratelimit.Backoff{Counter: store, Free: 10, Base: time.Second, Max: 5 * time.Minute, Now: now,
		Fresh: time.Second}, Audit: auditLog, Now: now,
		Audiences: []string{cfg.Issuer, cfg.Issuer + "/token", cfg.Issuer + "/introspect", cfg.Issuer + "/revoke", cfg.Issuer + "/par",
			cfg.Issuer + "/device_authorization"}}
	auth.Leeway = cfg.ClockLeeway
	auth.Keys.Fetch = fetch
	if auth.Sealer, err = clientauth.StoreSealer(ctx, store); err != nil {
		return nil, fmt.Errorf("secret sealer: %w", err)
	}
	tokens := token.NewEndpoint(auth, log,
		token.AuthorizationCode{Issuer: issuer},
		token.RefreshToken{Issuer: issuer, Grace: cfg.RefreshGrace},
		token.ClientCredentials{Issuer: issuer},
		token.DeviceCode{Issuer: issuer},
		token.TokenExchange{Issuer: issuer},
	)
	tokens.OnIssued = m.TokenIssued
	proofs, err := newProofs(ctx, cfg, store, now)
	if err != nil {
		return nil, err
	}
	tokens.DPoP, tokens.URL = proofs, cfg.Issuer+"/token"
	logouts := &backchannel.Notifier{Store: store, Keys: keys, Issuer: cfg.Issuer, Log: log, Now: now,
		Fetch: fetch, Subject: issuer.Subject}
	mux := http.NewServeMux()
	userFailures := &ratelimit.Backoff{Counter: store, Free: 5, Base: time.Second, Max: 15 * time.Minute, Now: now}
	ipFailures := &ratelimit.Backoff{Counter: store, Free: 50, Base: time.Second, Max: 15 * time.Minute, Now: now}
	sec, signIn, err := newSecurity(ctx, cfg, store, sessions, pages, auditLog, log, pw, logouts, now, userFailures, ipFailures, fetch)
	if err != nil {
		return nil, err
	}
	(&authorize.Handler{Store: store, Sessions: sessions, UI: pages, Scopes: scopes, Issuer: cfg.Issuer, Log: log, Now: now,
		CodeTTL: cfg.CodeTTL, RequestTTL: 30 * time.Minute,
		UserFailures: userFailures, IPFailures: ipFailures, Password: pw, SignIn: signIn,
		Audit: auditLog, Auth: auth, IDTokens: issuer, Logouts: logouts, Audiences: cfg.Audience,
		Leeway: cfg.ClockLeeway, DPoP: proofs,
	}).Register(mux)
	sec.Register(mux)
	tokens.Register(mux)
	mailer, accounts, err := newAccounts(cfg, store, sessions, pages, auditLog, logouts, log, now, pw)
	if err != nil {
		return nil, err
	}
	accounts.Register(mux)
	sec.Notify = &security.MailNotifier{Store: store, Outbox: accounts.Outbox, Log: log, Product: pages.Product}
	(&revoke.Endpoint{Auth: auth, Issuer: issuer, Log: log}).Register(mux)
	(&device.Endpoint{Auth: auth, Store: store, Scopes: scopes, Issuer: cfg.Issuer, Log: log, Now: now, TTL: cfg.DeviceCodeTTL, Interval: 5}).Register(mux)
	(&introspect.Endpoint{Auth: auth, Issuer: issuer, Log: log}).Register(mux)
	(&oidc.Provider{Issuer: issuer, Store: store, GrantTypes: tokens.GrantTypes(), UILocales: ui.Languages, Log: log,
		Registration: cfg.Registration != registration.Off, DPoP: proofs}).Register(mux)
	(&registration.Endpoint{Store: store, Scopes: scopes, Issuer: cfg.Issuer, Log: log, Now: now, Mode: cfg.Registration,
		InitialToken: cfg.RegistrationToken, Outbound: fetch, Audit: auditLog,
		// Counted in the store (Fresh zero): registrations are rare, and
		// the budget must hold on every node and against a burst.
		Attempts:          &ratelimit.Backoff{Counter: store, Free: 10, Base: time.Second, Max: 15 * time.Minute, Now: now},
		AllowNonceInstead: cfg.RegistrationPKCE == storage.PKCENonceInstead}).Register(mux)
	keys.Register(mux)
	mux.Handle("GET /static/", ui.Static())
	mux.HandleFunc("GET /favicon.ico", ui.Favicon)
	mux.HandleFunc("GET /healthz", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok\n")) })
	health := newHealth(store, log, now)
	health.onProbe = m.StoreCommits
	mux.HandleFunc("GET /readyz", ready(health, keys))
	mux.Handle("GET /metrics", m.Handler())

	adminAPI := &adminapi.API{Store: store, Keys: keys, Scopes: scopes, Password: pw, Log: log, Now: now, Token: cfg.AdminToken,
		Logouts: logouts, Outbound: fetch, Issuer: cfg.Issuer, Audit: auditLog, Notify: sec.Notify, Verify: accounts,
		Upstreams: cfg.Upstreams, UpstreamsChanged: sec.Upstreams.Registry.Forget,
		Registration: adminapi.Registration{Mode: cfg.Registration, TokenSet: cfg.RegistrationToken != "", PKCE: cfg.RegistrationPKCE}}
	handler := Harden(withRequest(clientip.Resolver{Trusted: trusted}, m.Middleware(mux)), log)
	adminHandler, adminTLS, err := newAdminListener(ctx, cfg, adminAPI, handler, sessions, auditLog, m.Recent)
	if err != nil {
		return nil, err
	}
	return &Server{Config: cfg, Store: store, Keys: keys, Issuer: issuer, Scopes: scopes, Log: log, Outbound: fetch,
		handler: handler,
		admin:   Harden(withRequest(clientip.Resolver{}, adminHandler), log), adminTLS: adminTLS,
		health: health, logouts: logouts, metrics: m, storeFiles: opts.StoreFiles,
		mailer: mailer, accounts: accounts,
	}, nil
}

// newPages parses the pages and loads the scope catalog from the store.
func newPages(ctx context.Context, cfg config.Config, store storage.Storage, log *slog.Logger) (*ui.UI, *scope.Catalog, error) {
	pages, err := ui.New(log, "bawwab")
	if err != nil {
		return nil, nil, err
	}
	pages.Signup = cfg.Signup == account.SignupOpen
	scopes := scope.NewCatalog() // filled from the store by Load
	if err := scope.Load(ctx, store, scopes); err != nil {
		return nil, nil, fmt.Errorf("scopes: %w", err)
	}
	return pages, scopes, nil
}

// newAdminListener is what the admin listener serves (newAdmin), and its
// TLS configuration when the settings name a certificate (newAdminTLS).
func newAdminListener(ctx context.Context, cfg config.Config, api *adminapi.API, public http.Handler, sessions *session.Manager,
	auditLog *audit.Log, recent *metrics.History) (http.Handler, *tls.Config, error) {
	adminTLS, err := newAdminTLS(cfg)
	if err != nil {
		return nil, nil, err
	}
	h, err := newAdmin(ctx, api, public, sessions, auditLog, recent, &console.Console{SecondFactor: cfg.ConsoleSecondFactor, TLS: adminTLS != nil,
		NoPasskeys: !passkeysOn(cfg)})
	return h, adminTLS, err
}

// newAdmin serves the admin listener: the admin API, and the admin
// console under /console/, which calls the API in process (package
// console); opts carries the console's settings. Without an admin token
// neither is served.
func newAdmin(ctx context.Context, api *adminapi.API, public http.Handler, sessions *session.Manager, auditLog *audit.Log,
	recent *metrics.History, opts *console.Console) (http.Handler, error) {
	apiHandler := api.Handler()
	if api.Token == "" {
		return apiHandler, nil
	}
	c, err := console.New(ctx, &console.Console{API: apiHandler, Token: api.Token, Public: public, Issuer: api.Issuer, Store: api.Store,
		Audit: auditLog, Log: api.Log, Now: api.Now, Recent: recent, SecondFactor: opts.SecondFactor, TLS: opts.TLS, NoPasskeys: opts.NoPasskeys}, sessions, api.Scopes)
	if err != nil {
		return nil, fmt.Errorf("console: %w", err)
	}
	mux := http.NewServeMux()
	mux.Handle("/console/", c.Handler())
	mux.Handle("/", apiHandler)
	return mux, nil
}

// observeStore times the store's statements into m, when the store can.
func observeStore(store storage.Storage, m *metrics.Metrics) {
	if o, ok := store.(interface {
		SetObserver(func(string, time.Duration))
	}); ok {
		o.SetObserver(m.StoreOp)
	}
}

// newOutbound is the client for every request bawwab sends to a URL a
// client registered; what it refuses goes to the audit log.
func newOutbound(cfg config.Config, log *slog.Logger, auditLog *audit.Log) (*outbound.Client, error) {
	allow, err := outbound.ParseAllow(cfg.InsecureOutboundAllow)
	if err != nil {
		return nil, fmt.Errorf("insecure_outbound_allow: %w", err)
	}
	fetch := outbound.New(outbound.Options{Allow: allow})
	fetch.Log = log
	fetch.Refused = func(ctx context.Context, clientID, uri, detail string) {
		auditLog.Record(ctx, audit.Event{Type: audit.OutboundRefused, ClientID: clientID, Detail: oautherr.Clip(uri) + ": " + detail})
	}
	return fetch, nil
}

// newProofs checks DPoP proofs (RFC 9449), with server nonces (§8) under
// a key every node shares when the operator turned them on.
func newProofs(ctx context.Context, cfg config.Config, store storage.Storage, now func() time.Time) (*dpop.Checker, error) {
	proofs := &dpop.Checker{Replays: store, Now: now, Window: cfg.DPoPWindow}
	if cfg.DPoPNonce == "on" {
		key, err := store.Secret(ctx, "dpop-nonce", []byte(rand.Text()+rand.Text()))
		if err != nil {
			return nil, fmt.Errorf("dpop nonces: %w", err)
		}
		proofs.Nonces = &dpop.Nonces{Key: key, Slot: 5 * time.Minute}
	}
	return proofs, nil
}

type requestIDKey struct{}

// withRequest gives each request an id (X-Request-Id, kept from the client
// when it is a short token, made otherwise), echoed in the response and
// carried by every log line of the request; and resolves the client's
// address once, for throttling and the audit log.
func withRequest(addrs clientip.Resolver, h http.Handler) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		id := r.Header.Get("X-Request-Id")
		if !validRequestID(id) {
			id = rand.Text()[:16]
		}
		w.Header().Set("X-Request-Id", id)
		ctx := context.WithValue(r.Context(), requestIDKey{}, id)
		h.ServeHTTP(w, r.WithContext(clientip.With(ctx, addrs.Resolve(r))))
	})
}

func validRequestID(id string) bool {
	if id == "" || len(id) > 64 {
		return false
	}
	for _, c := range id {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '-' || c == '_' || c == '.') {
			return false
		}
	}
	return true
}

// requestIDHandler adds the request id of the context to each record.
type requestIDHandler struct{ slog.Handler }

func withRequestID(h slog.Handler) slog.Handler {
	if _, ok := h.(requestIDHandler); ok {
		return h
	}
	return requestIDHandler{h}
}

func (h requestIDHandler) Handle(ctx context.Context, r slog.Record) error {
	if id, ok := ctx.Value(requestIDKey{}).(string); ok {
		r.AddAttrs(slog.String("request_id", id))
	}
	return h.Handler.Handle(ctx, r)
}

func (h requestIDHandler) WithAttrs(as []slog.Attr) slog.Handler {
	return requestIDHandler{h.Handler.WithAttrs(as)}
}

func (h requestIDHandler) WithGroup(name string) slog.Handler {
	return requestIDHandler{h.Handler.WithGroup(name)}
}

// Pprof serves Go's profiler, for a loopback listener of its own.
func Pprof() http.Handler {
	mux := http.NewServeMux()
	mux.HandleFunc("/debug/pprof/", pprof.Index)
	mux.HandleFunc("/debug/pprof/cmdline", pprof.Cmdline)
	mux.HandleFunc("/debug/pprof/profile", pprof.Profile)
	mux.HandleFunc("/debug/pprof/symbol", pprof.Symbol)
	mux.HandleFunc("/debug/pprof/trace", pprof.Trace)
	return mux
}

// Handler is the server's HTTP handler.
func (s *Server) Handler() http.Handler { return s.handler }

// Harden wraps h with the protections every bawwab response gets: security
// headers (no framing: RFC 9700 §4.16; no inline script or style; no
// referrer), and recovery from panics into an RFC 6749 server_error.
func Harden(h http.Handler, log *slog.Logger) http.Handler {
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		hd := w.Header()
		hd.Set("X-Content-Type-Options", "nosniff")
		hd.Set("X-Frame-Options", "DENY")
		hd.Set("Referrer-Policy", "no-referrer")
		hd.Set("Content-Security-Policy", contentPolicy(r.URL.Path))
		defer func() {
			if v := recover(); v != nil {
				if v == http.ErrAbortHandler {
					panic(v)
				}
				log.ErrorContext(r.Context(), "panic while serving", "path", r.URL.Path, "panic", fmt.Sprint(v))
				oautherr.Write(w, oautherr.Wrap(fmt.Errorf("panic: %v", v)), "")
			}
		}()
		h.ServeHTTP(w, r)
	})
}

// HTTPServer returns an http.Server for h with timeouts that bound slow
// clients (slowloris) and header sizes.
func HTTPServer(h http.Handler, log *slog.Logger) *http.Server {
	return &http.Server{
		Handler:           h,
		ReadHeaderTimeout: 5 * time.Second,
		ReadTimeout:       15 * time.Second,
		WriteTimeout:      30 * time.Second,
		IdleTimeout:       2 * time.Minute,
		MaxHeaderBytes:    32 << 10,
		ErrorLog:          slog.NewLogLogger(log.Handler(), slog.LevelWarn),
	}
}

// Serve serves on l until ctx ends, then shuts down in order (see Run).
func (s *Server) Serve(ctx context.Context, l net.Listener) error {
	return s.Run(ctx, l, nil)
}

// ServeAdmin serves the admin API on l until ctx ends, over TLS when the
// settings name a certificate.
func (s *Server) ServeAdmin(ctx context.Context, l net.Listener) error {
	return ServeUntil(ctx, HTTPServer(s.admin, s.Log), s.adminListener(l))
}

// adminListener is l, wrapped in TLS when the settings name a certificate.
func (s *Server) adminListener(l net.Listener) net.Listener {
	if s.adminTLS == nil {
		return l
	}
	return tls.NewListener(l, s.adminTLS)
}

// ServeUntil runs srv on l until ctx ends, then shuts it down, letting
// requests in flight finish for up to 10 seconds.
func ServeUntil(ctx context.Context, srv *http.Server, l net.Listener) error {
	return serveUntil(ctx, srv, l, 10*time.Second)
}

// serveUntil is ServeUntil with the time requests in flight may take.
func serveUntil(ctx context.Context, srv *http.Server, l net.Listener, grace time.Duration) error {
	errc := make(chan error, 1)
	go func() { errc <- srv.Serve(l) }()
	select {
	case err := <-errc:
		return err
	case <-ctx.Done():
	}
	sctx, cancel := context.WithTimeout(context.Background(), grace)
	defer cancel()
	if err := srv.Shutdown(sctx); err != nil {
		return err
	}
	if err := <-errc; !errors.Is(err, http.ErrServerClosed) {
		return err
	}
	return nil
}

// every calls fn each interval until ctx ends.
func every(ctx context.Context, interval time.Duration, fn func(context.Context)) {
	t := time.NewTicker(interval)
	defer t.Stop()
	for {
		select {
		case <-ctx.Done():
			return
		case <-t.C:
			fn(ctx)
		}
	}
}
