// Package console is bawwab's admin console: server-rendered pages, in
// English and Arabic, served on the admin listener under /console/.
//
// Operators sign in through bawwab itself: the console is a confidential
// OAuth client of its own server (ClientID, registered at the first
// sign-in), whose secret derives from a key every node shares and that
// nothing else knows, so that a code brought to another program on a
// loopback port is worth nothing. It runs the authorization code flow
// with PKCE, state and nonce, exchanges the code and verifies the ID token
// with go-oidc against the server's own issuer, in process (no network:
// the issuer's public URL need not be reachable from the server). Only
// users with the admin role get a console session, and an admin who set
// up a second factor must have passed it (see SecondFactor); every other
// is refused with a 403 page and an audit event.
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
	"reflect"
	"slices"
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
// from the issuer, which may be another site). Over TLS both are Secure
// and carry the __Host- prefix (see cookies).
const (
	SessionCookie = "bawwab_console"
	loginCookie   = "bawwab_console_login"
	langCookie    = "bawwab_console_lang"
	callbackPath  = "/console/callback"
)

// HostPrefix is the prefix of the console's cookies over TLS: the browser
// keeps such a cookie only when it is Secure, host-only and Path=/
// (RFC 6265bis §4.1.3.2), so that no other host's page can set or shadow
// it. It does not fence the cookie off from other ports of the host:
// cookies ignore ports, and Chromium counts http://127.0.0.1 as secure
// (docs/console.md).
const HostPrefix = "__Host-"

// Second factor policies of the console (SecondFactor).
const (
	// SecondFactorEnrolled: an admin who set up a second factor passes
	// it; one without signs in with what the server's policy asks.
	SecondFactorEnrolled = "enrolled"
	// SecondFactorRequired: every admin passes a second factor; one
	// without is refused and sent to set one up.
	SecondFactorRequired = "required"
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
	// SecondFactor is SecondFactorEnrolled (when empty) or
	// SecondFactorRequired: the server's sign-in policy asks it (package
	// signin), and the callback checks the ID token's amr again.
	SecondFactor string
	// NoPasskeys says the server offers no passkeys (its issuer names an
	// IP address): a passkey an admin holds cannot be passed at sign-in,
	// so it does not count as a second factor set up.
	NoPasskeys bool
	// TLS says the admin listener serves TLS: the callback is https, and
	// the cookies are Secure, with the __Host- prefix.
	TLS bool

	sessions *session.Manager
	key      []byte
	pages    map[string]*template.Template
	scopes   *scope.Catalog
	// session and login are the names of the session cookie and of the
	// sign-in in progress (loginName); path is where the session goes.
	session, loginName, path string

	mu sync.Mutex
}

// New returns the console. sessions is the server's manager; the
// console's sessions are scoped apart from it.
func New(ctx context.Context, c *Console, sessions *session.Manager, cat *scope.Catalog) (*Console, error) {
	var err error
	if c.key, err = c.Store.Secret(ctx, "console", []byte(rand.Text()+rand.Text())); err != nil {
		return nil, err
	}
	c.session, c.loginName, c.path = SessionCookie, loginCookie, "/console/"
	if c.TLS {
		// __Host- needs Path=/: the admin API beside the console takes a
		// Bearer token only, so the cookie sent to it carries no power there.
		c.session, c.loginName, c.path = HostPrefix+SessionCookie, HostPrefix+loginCookie, "/"
	}
	c.sessions = sessions.Scoped(c.session, c.path, SessionTTL, c.TLS).RequireUser(isAdmin)
	c.scopes = cat
	c.pages, err = ui.ParsePages(templateFS)
	return c, err
}

// register registers the console's client, or brings an earlier
// registration up to date, at each sign-in: a confidential client whose
// secret only the server knows (clientSecret), with PKCE, whose redirect
// URIs are the console's callback at loopback addresses, on any port (RFC
// 8252 §7.3). A public registration of an earlier version, or one an
// operator changed, gets the secret back; the operator's other changes
// (a second factor required, the name) stay.
func (c *Console) register(ctx context.Context) error {
	c.mu.Lock()
	defer c.mu.Unlock()
	cl, err := c.Store.GetClient(ctx, ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		_, err = admin.AddClient(ctx, c.Store, admin.ClientSpec{ID: ClientID, Name: "bawwab admin console", Secret: c.clientSecret(),
			RedirectURIs: c.redirectURIs(), GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, Verified: true}, c.scopes)
		var exists *admin.ExistsError
		if !errors.As(err, &exists) && !errors.Is(err, storage.ErrAlreadyExists) {
			return err
		}
		cl, err = c.Store.GetClient(ctx, ClientID) // another node registered it meanwhile
	}
	if err != nil {
		return err
	}
	if up, changed := c.upgrade(*cl); changed {
		return c.Store.UpdateClient(ctx, up)
	}
	return nil
}

// upgrade returns cl as the console needs it: confidential, with the
// console's secret (client_secret_post or _basic), PKCE required, and the
// sign-in the console runs possible: the code grant and the openid scope
// among its own, no pushed requests or DPoP proofs required (it sends
// neither), subjects that name users (not pairwise: the callback looks
// the admin up by the ID token's sub), ID tokens in the default algorithm,
// and the console's redirect URIs among its own. An operator's edit that
// took any of these would lock every operator out of the console.
func (c *Console) upgrade(cl storage.Client) (storage.Client, bool) {
	want := cl
	want.Public, want.SecretHash, want.AuthMethod, want.SecretSealed = false, storage.Hash(c.clientSecret()), "", ""
	want.PKCEPolicy, want.DPoPBound, want.RequirePAR = storage.PKCERequired, false, false
	want.Pairwise, want.SectorIdentifierURI, want.IDTokenAlg = false, "", ""
	want.GrantTypes = withAll(cl.GrantTypes, "authorization_code")
	want.Scopes = withAll(cl.Scopes, "openid")
	want.RedirectURIs = withAll(cl.RedirectURIs, c.redirectURIs()...)
	return want, !reflect.DeepEqual(want, cl)
}

// withAll is l with each of vs it lacks appended, in a new slice.
func withAll(l []string, vs ...string) []string {
	out := slices.Clone(l)
	for _, v := range vs {
		if !slices.Contains(out, v) {
			out = append(out, v)
		}
	}
	return out
}

// redirectURIs are the console's callbacks at the loopback addresses,
// https when the admin listener serves TLS.
func (c *Console) redirectURIs() []string {
	scheme := "http://"
	if c.TLS {
		scheme = "https://"
	}
	return []string{scheme + "127.0.0.1" + callbackPath, scheme + "[::1]" + callbackPath}
}

// clientSecret is the console's client secret: derived from the
// console's key, which every node shares through the store and which
// never leaves the server, so that no other program can redeem a code
// issued to the console, even one brought to it on another loopback port.
func (c *Console) clientSecret() string { return c.derive("client-secret", "") }

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
