// Package console is bawwab's admin console: server-rendered pages, in
// English and Arabic, served on the admin listener under /console/.
//
// Operators sign in through bawwab itself: the console is a public OAuth
// client of its own server (ClientID, registered at start), which runs the
// authorization code flow with PKCE, state and nonce, exchanges the code
// and verifies the ID token with go-oidc against the server's own issuer,
// in process (no network: the issuer's public URL need not be reachable
// from the server). Only users with the admin role get a console session;
// every other is refused with a 403 page and an audit event.
//
// The console changes nothing itself: every action is a call of the admin
// API's own handler, in process, under the operator's name (the audit
// log's operator), so that the console, the CLI and the REST API share
// one code path.
package console

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"embed"
	"encoding/base64"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/metrics"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// ClientID is the console's client at its own server.
const ClientID = "bawwab-console"

// Cookies of the console: its session (SameSite=Strict, under /console/)
// and the sign-in in progress (Lax: it must come back with the redirect
// from the issuer, which may be another site).
const (
	SessionCookie = "bawwab_console"
	loginCookie   = "bawwab_console_login"
	langCookie    = "bawwab_console_lang"
	callbackPath  = "/console/callback"
)

// SessionTTL is how long a console session lasts.
const SessionTTL = time.Hour

//go:embed templates/*.html
var templateFS embed.FS

// Console serves the console.
type Console struct {
	// API is the admin API's handler, called in process with Token.
	API   http.Handler
	Token string
	// Public is the server's public handler: the console's OAuth requests
	// (discovery, keys, token) go to it in process.
	Public http.Handler
	Issuer string
	Store  storage.Storage
	Audit  *audit.Log
	Log    *slog.Logger
	Now    func() time.Time
	// Recent is this node's per-minute history of the counters of
	// /metrics, drawn on the dashboard; nil draws no charts.
	Recent *metrics.History

	sessions *session.Manager
	key      []byte
	pages    map[string]*template.Template
	scopes   *scope.Catalog

	mu         sync.Mutex
	registered bool
}

// New returns the console. sessions is the server's manager; the
// console's sessions are scoped apart from it.
func New(ctx context.Context, c *Console, sessions *session.Manager, cat *scope.Catalog) (*Console, error) {
	var err error
	if c.key, err = c.Store.Secret(ctx, "console", []byte(rand.Text()+rand.Text())); err != nil {
		return nil, err
	}
	c.sessions = sessions.Scoped(SessionCookie, "/console/", SessionTTL, false)
	c.scopes = cat
	c.pages, err = ui.ParsePages(templateFS)
	return c, err
}

// register registers the console's client at the first sign-in, when it
// is missing: a public client (PKCE) whose redirect URIs are the
// console's callback at loopback addresses, on any port (RFC 8252 §7.3).
// An operator's later changes to it (a second factor required) stay.
func (c *Console) register(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.registered {
		return nil
	}
	_, err := admin.AddClient(ctx, c.Store, admin.ClientSpec{ID: ClientID, Name: "bawwab admin console", Public: true,
		RedirectURIs: []string{"http://127.0.0.1" + callbackPath, "http://[::1]" + callbackPath},
		GrantTypes:   []string{"authorization_code"}, Scopes: []string{"openid"}, Verified: true}, c.scopes)
	var exists *admin.ExistsError
	if err != nil && !errors.As(err, &exists) && !errors.Is(err, storage.ErrAlreadyExists) {
		return err
	}
	c.registered = true
	return nil
}

// derive is a value of the sign-in in progress whose cookie value is
// login: its state, nonce or PKCE verifier. Only the browser holding the
// cookie (HttpOnly) and the server know it.
func (c *Console) derive(label, login string) string {
	m := hmac.New(sha256.New, c.key)
	m.Write([]byte(label + "\x00" + login))
	return base64.RawURLEncoding.EncodeToString(m.Sum(nil))
}

// Handler serves the console's routes, under /console/.
func (c *Console) Handler() http.Handler {
	mux := http.NewServeMux()
	mux.Handle("GET /console/static/", http.StripPrefix("/console", ui.Static()))
	mux.HandleFunc("GET /console/login", c.login)
	mux.HandleFunc("GET "+callbackPath, c.callback)
	mux.HandleFunc("POST /console/logout", c.form(c.logout))
	mux.HandleFunc("GET /console/{$}", c.page(c.dashboard))
	mux.HandleFunc("GET /console/clients", c.page(c.clients))
	mux.HandleFunc("POST /console/clients", c.form(c.createClient))
	mux.HandleFunc("GET /console/clients/{id}", c.page(c.editClient))
	mux.HandleFunc("POST /console/clients/{id}", c.form(c.saveClient))
	mux.HandleFunc("GET /console/clients/{id}/delete", c.page(c.confirmDelete))
	mux.HandleFunc("POST /console/clients/{id}/delete", c.form(c.deleteClient))
	mux.HandleFunc("GET /console/users", c.page(c.users))
	mux.HandleFunc("POST /console/users", c.form(c.createUser))
	mux.HandleFunc("GET /console/users/{id}", c.page(c.userPage))
	mux.HandleFunc("POST /console/users/{id}/password", c.form(c.resetPassword))
	mux.HandleFunc("POST /console/users/{id}/do/{action}", c.form(c.userAction))
	mux.HandleFunc("POST /console/users/{id}/disable", c.form(c.disableUser))
	mux.HandleFunc("POST /console/users/{id}/enable", c.form(c.enableUser))
	mux.HandleFunc("POST /console/users/{id}/role", c.form(c.setRole))
	mux.HandleFunc("GET /console/audit", c.page(c.auditLog))
	mux.HandleFunc("POST /console/keys/rotate", c.form(c.rotateKeys))
	mux.HandleFunc("GET /console/users/{id}/grants", c.page(c.grants))
	mux.HandleFunc("POST /console/users/{id}/grants/{client}/revoke", c.form(c.revokeGrant))
	mux.HandleFunc("GET /console/upstreams", c.page(c.upstreams))
	mux.HandleFunc("POST /console/upstreams", c.form(c.createUpstream))
	mux.HandleFunc("GET /console/upstreams/{id}", c.page(c.editUpstream))
	mux.HandleFunc("POST /console/upstreams/{id}", c.form(c.saveUpstream))
	mux.HandleFunc("POST /console/upstreams/{id}/enabled", c.form(c.setUpstream))
	mux.HandleFunc("GET /console/upstreams/{id}/users", c.page(c.upstreamUsers))
	mux.HandleFunc("GET /console/registration", c.page(c.registration))
	mux.HandleFunc("POST /console/registration/tokens", c.form(c.createToken))
	mux.HandleFunc("GET /console/registration/tokens/{id}/revoke", c.page(c.confirmRevokeToken))
	mux.HandleFunc("POST /console/registration/tokens/{id}/revoke", c.form(c.revokeToken))
	mux.HandleFunc("GET /console/scopes", c.page(c.scopeList))
	mux.HandleFunc("GET /console/scopes/{name}", c.page(c.editScope))
	mux.HandleFunc("POST /console/scopes/{name}", c.form(c.saveScope))
	mux.HandleFunc("/console/", func(w http.ResponseWriter, r *http.Request) {
		c.message(w, r, http.StatusNotFound, "console.not_found")
	})
	return mux
}
