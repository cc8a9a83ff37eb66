// Package demo starts the whole story in one process: the authorization
// server with a seeded user, the provider's API (a resource server), and two
// third-party apps: "Notes", which asks for ordinary data, and "Greedy
// Games", which also asks for payment data, a sensitive scope. Beside them
// runs "Example Corp", a second bawwab that the first offers on its login
// page as an identity provider to sign in through ("Continue with Example
// Corp"), all on loopback and offline.
package demo

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/dpop"

	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/demo/client"
	"github.com/bawwab/bawwab/demo/resource"
	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// The seeded demo users: Amal signs in with her password; Karim has an
// authenticator app set up already (Demo.TOTPKey), so his sign-ins ask
// for a code after the password, and his Security page offers a passkey.
const (
	Username = "amal"
	Password = "open sesame"

	FactorUsername = "karim"
	FactorPassword = "open sesame"
)

// Options say where each part listens. Zero ports pick free ones.
type Options struct {
	Host                                     string // host name in URLs, default localhost
	AuthPort, APIPort, NotesPort, GreedyPort int
	// CorpPort is Example Corp's, the identity provider behind the login
	// page's "Continue with Example Corp" button.
	CorpPort int
	// ConsolePort is the admin listener's: the admin console, which Karim
	// (an admin, with an authenticator app) signs in to.
	ConsolePort int
	// DataDir holds the SQLite file; empty means a temporary directory.
	DataDir string
	// AccessTokenTTL is short in the demo so that refresh can be seen.
	AccessTokenTTL time.Duration
	// Password overrides the argon2id cost (tests).
	Password *password.Params
	Log      *slog.Logger
}

// Demo is a running demo.
type Demo struct {
	AuthURL, APIURL, NotesURL, GreedyURL string
	// ConsoleURL is the admin console's, at the loopback address it must
	// be opened at.
	ConsoleURL string
	Store      storage.Storage
	// Corp is Example Corp, a second bawwab on the other loopback host
	// name (127.0.0.1 when the demo is at localhost, else localhost), that
	// the demo's bawwab offers to sign in through (upstream CorpUpstream).
	Corp *Corp
	// TOTPKey is the base32 key of Karim's authenticator app, for typing
	// into an app by hand; TOTPURI is the same as an otpauth:// URI.
	TOTPKey, TOTPURI string
	// PasskeysOn says whether the browser may use passkeys here: WebAuthn
	// refuses an IP address as the server's name, so the demo must be
	// opened at a host name such as localhost.
	PasskeysOn bool
	done       chan error
}

// Start starts every part and returns once all listen. They stop when ctx ends.
func Start(ctx context.Context, o Options) (*Demo, error) {
	o = o.withDefaults()
	pw := password.Default
	if o.Password != nil {
		pw = *o.Password
	}
	listeners, err := listen(o.AuthPort, o.APIPort, o.NotesPort, o.GreedyPort, o.ConsolePort)
	if err != nil {
		return nil, err
	}
	urlOf := func(l net.Listener) string {
		return "http://" + net.JoinHostPort(o.Host, strconv.Itoa(l.Addr().(*net.TCPAddr).Port))
	}
	d := &Demo{AuthURL: urlOf(listeners[0]), APIURL: urlOf(listeners[1]), NotesURL: urlOf(listeners[2]), GreedyURL: urlOf(listeners[3]), done: make(chan error, parts),
		PasskeysOn: net.ParseIP(o.Host) == nil, ConsoleURL: "http://" + listeners[4].Addr().String() + "/console/"}
	store, err := openStore(ctx, o.DataDir)
	if err != nil {
		return nil, err
	}
	d.Store = store
	if d.Corp, err = StartCorp(ctx, CorpOptions{Host: corpHost(o.Host), Port: o.CorpPort, DataDir: corpDir(o.DataDir),
		RedirectURI: d.AuthURL + "/upstream/" + CorpUpstream + "/callback", Password: o.Password, Log: warnings(o.Log)}); err != nil {
		closeAll(listeners)
		store.Close()
		return nil, err
	}
	go func() { d.done <- d.Corp.Wait() }()

	const apiAudience = "provider-api"
	cfg := config.Default()
	cfg.Issuer, cfg.Audience, cfg.AccessTokenTTL = d.AuthURL, []string{apiAudience}, o.AccessTokenTTL
	d.Corp.federate(&cfg)
	// Anyone may create an account; with no mail relay, the verification
	// and reset mails are written to the log, labelled as not sent.
	cfg.Signup = "open"
	// Payment data is guarded by the API instead of at consent: reading it
	// needs a sign-in with a second factor, which the API asks for with an
	// RFC 9470 challenge and Greedy Games answers by stepping up.
	cfg.SecondFactorScopes = nil
	// The admin console, on a loopback listener of its own; its API's
	// token is of this run only.
	cfg.AdminListen, cfg.AdminToken = listeners[4].Addr().String(), rand.Text()+rand.Text()
	as, err := server.New(ctx, cfg, store, o.Log, server.Options{Password: &pw})
	if err != nil {
		return nil, err
	}
	notesSecret, greedySecret, apiSecret, err := seed(ctx, store, d, pw)
	if err != nil {
		return nil, err
	}
	api := d.api(store, apiAudience, apiSecret, o.Log)
	notesMux, greedyMux, err := d.clients(notesSecret, greedySecret, o.Log)
	if err != nil {
		return nil, err
	}

	go func() { d.done <- as.Serve(ctx, listeners[0]) }()
	go func() { d.done <- as.ServeAdmin(ctx, listeners[4]) }()
	for i, h := range []http.Handler{api, notesMux, greedyMux} {
		srv := server.HTTPServer(server.Harden(h, o.Log), o.Log)
		go func() { d.done <- server.ServeUntil(ctx, srv, listeners[i+1]) }()
	}
	go func() { <-ctx.Done(); time.Sleep(50 * time.Millisecond); store.Close() }()
	return d, nil
}

// withDefaults fills in what o leaves out: localhost, no logs, two-minute
// access tokens.
func (o Options) withDefaults() Options {
	if o.Host == "" {
		o.Host = "localhost"
	}
	if o.Log == nil {
		o.Log = slog.New(slog.NewTextHandler(io.Discard, nil))
	}
	if o.AccessTokenTTL == 0 {
		o.AccessTokenTTL = 2 * time.Minute
	}
	return o
}

// listen listens on each port of 127.0.0.1 (0: any free one), closing
// what it opened when one fails.
func listen(ports ...int) ([]net.Listener, error) {
	listeners := make([]net.Listener, len(ports))
	for i, port := range ports {
		l, err := net.Listen("tcp", net.JoinHostPort("127.0.0.1", strconv.Itoa(port)))
		if err != nil {
			closeAll(listeners[:i])
			return nil, fmt.Errorf("demo: listen on port %d: %w", port, err)
		}
		listeners[i] = l
	}
	return listeners, nil
}

func closeAll(listeners []net.Listener) {
	for _, l := range listeners {
		l.Close()
	}
}

// openStore opens the demo's SQLite store in dir, or in a temporary
// directory removed when ctx ends.
func openStore(ctx context.Context, dir string) (storage.Storage, error) {
	if dir == "" {
		tmp, err := os.MkdirTemp("", "bawwab-demo-")
		if err != nil {
			return nil, err
		}
		dir = tmp
		go func() { <-ctx.Done(); <-time.After(100 * time.Millisecond); os.RemoveAll(tmp) }()
	} else if err := os.MkdirAll(dir, 0o700); err != nil {
		return nil, err
	}
	return sqlite.Open(ctx, filepath.Join(dir, "bawwab.db"))
}

// api is the resource server: it accepts access tokens (JWTs, checked
// offline, or introspected) for audience, bound by DPoP when they are.
func (d *Demo) api(store storage.Storage, audience, secret string, log *slog.Logger) *http.ServeMux {
	api := http.NewServeMux()
	introspector := &resource.Introspector{URL: d.AuthURL + "/introspect", ClientID: audience, ClientSecret: secret, HTTP: &http.Client{Timeout: 5 * time.Second}}
	(&resource.Server{
		Verifier: &resource.Verifier{Issuer: d.AuthURL, Audience: audience, JWKSURL: d.AuthURL + "/jwks.json", HTTP: &http.Client{Timeout: 5 * time.Second},
			Now: time.Now, Introspect: introspector},
		Log:    log,
		URL:    d.APIURL,
		DPoP:   &dpop.Checker{Replays: &dpop.MemoryReplays{}, Now: time.Now},
		Lookup: lookup(store, d.APIURL),
	}).Register(api)
	resource.ServePhoto(api)
	return api
}

// clients are the two client apps, Notes and Greedy Games.
func (d *Demo) clients(notesSecret, greedySecret string, log *slog.Logger) (notesMux, greedyMux *http.ServeMux, err error) {
	endpoint := oauth2.Endpoint{AuthURL: d.AuthURL + "/authorize", TokenURL: d.AuthURL + "/token", AuthStyle: oauth2.AuthStyleInHeader}
	notes, err := client.New("Notes", "notes_visit", &oauth2.Config{ClientID: "notes", ClientSecret: notesSecret, Endpoint: endpoint,
		RedirectURL: d.NotesURL + "/callback", Scopes: []string{"openid", "profile", "photo", "email", "files.read", "offline_access"}}, d.APIURL, log)
	if err != nil {
		return nil, nil, err
	}
	greedy, err := client.New("Greedy Games", "greedy_visit", &oauth2.Config{ClientID: "greedy", ClientSecret: greedySecret, Endpoint: endpoint,
		RedirectURL: d.GreedyURL + "/callback", Scopes: []string{"openid", "profile", "email", "payment"}}, d.APIURL, log)
	if err != nil {
		return nil, nil, err
	}
	notesMux, greedyMux = http.NewServeMux(), http.NewServeMux()
	notes.Register(notesMux)
	greedy.Register(greedyMux)
	return notesMux, greedyMux, nil
}

// parts counts what Start runs: the authorization server, its admin
// listener, the API, the two apps and Example Corp.
const parts = 6

// Wait blocks until every part stopped and returns the first error.
func (d *Demo) Wait() error {
	var first error
	for range parts {
		if err := <-d.done; err != nil && !errors.Is(err, http.ErrServerClosed) && first == nil {
			first = err
		}
	}
	return first
}

func seed(ctx context.Context, s storage.Storage, d *Demo, pw password.Params) (notes, greedy, api string, err error) {
	cat := scope.Default()
	if _, err = admin.AddUser(ctx, s, admin.UserSpec{Username: Username, Password: Password, Name: "Amal Haddad", Email: "amal@example.com",
		EmailVerified: true, Picture: d.APIURL + "/photos/amal.svg"}, pw); err != nil {
		return
	}
	if err = d.seedFactorUser(ctx, s, pw); err != nil {
		return
	}
	// Notes is vouched for by the operator; Greedy Games registered itself
	// and nobody checked it: its consent page says so.
	home := func(u string) storage.ClientInfo {
		if !admin.ValidInfoURL(u) {
			return storage.ClientInfo{}
		}
		return storage.ClientInfo{ClientURI: u}
	}
	if notes, err = admin.AddClient(ctx, s, admin.ClientSpec{ID: "notes", Name: "Notes", RedirectURIs: []string{d.NotesURL + "/callback"},
		Scopes: []string{"openid", "profile", "photo", "email", "files.read", "offline_access"}, Info: home(d.NotesURL), Verified: true}, cat); err != nil {
		return
	}
	if greedy, err = admin.AddClient(ctx, s, admin.ClientSpec{ID: "greedy", Name: "Greedy Games", RedirectURIs: []string{d.GreedyURL + "/callback"},
		Scopes: []string{"openid", "profile", "email", "payment"}, Info: home(d.GreedyURL)}, cat); err != nil {
		return
	}
	api, err = admin.AddClient(ctx, s, admin.ClientSpec{ID: "provider-api", Name: "Provider API", GrantTypes: []string{granttype.ClientCredentials}}, cat)
	return
}

// seedFactorUser adds Karim, an admin, with an authenticator app already
// confirmed (which the console then asks for), and keeps its key for the
// demo to print.
func (d *Demo) seedFactorUser(ctx context.Context, s storage.Storage, pw password.Params) error {
	id, err := admin.AddUser(ctx, s, admin.UserSpec{Username: FactorUsername, Password: FactorPassword, Name: "Karim Nassar",
		Email: "karim@example.com", EmailVerified: true, Admin: true}, pw)
	if err != nil {
		return err
	}
	user, err := s.GetUser(ctx, id)
	if err != nil {
		return err
	}
	sealer, err := factors.StoreSealer(ctx, s)
	if err != nil {
		return err
	}
	enrolment, err := (&factors.TOTP{Store: s, Sealer: sealer, Issuer: factors.IssuerName(d.AuthURL), Now: time.Now}).Enrol(ctx, user)
	if err != nil {
		return err
	}
	rec, err := s.GetTOTP(ctx, id)
	if err != nil {
		return err
	}
	if err := s.ConfirmTOTP(ctx, id, rec.SecretSealed, time.Now()); err != nil {
		return err
	}
	d.TOTPKey, d.TOTPURI = enrolment.Secret, enrolment.URL
	return nil
}

// lookup serves the demo user's data to the resource server.
func lookup(s storage.Storage, apiURL string) func(context.Context, string) (*resource.Profile, error) {
	return func(ctx context.Context, sub string) (*resource.Profile, error) {
		u, err := s.GetUser(ctx, sub)
		if err != nil {
			return nil, err
		}
		return &resource.Profile{Name: u.Name, Email: u.Email, Picture: u.Picture,
			Files: []string{"Trip to Petra.pdf", "Budget 2026.xlsx", "Grandma's recipes.docx"}}, nil
	}
}
