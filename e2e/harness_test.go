// Package e2e runs bawwab for real: each test starts the server on a
// loopback port with its own store and speaks HTTP to it, as a browser and
// as OAuth clients would.
package e2e

import (
	"cmp"
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/testenv"
	"github.com/bawwab/bawwab/internal/token"
)

// clock is an adjustable clock shared by the server under test. It ticks
// in real time unless frozen; Advance moves it either way.
type clock struct {
	mu     sync.Mutex
	offset time.Duration
	frozen time.Time // non-zero: Now stands still here
}

func (c *clock) Now() time.Time {
	c.mu.Lock()
	defer c.mu.Unlock()
	if !c.frozen.IsZero() {
		return c.frozen
	}
	return time.Now().Add(c.offset)
}

func (c *clock) Advance(d time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.offset += d
	if !c.frozen.IsZero() {
		c.frozen = c.frozen.Add(d)
	}
}

// Freeze stops the clock where it is, for a test whose outcome must not
// depend on how long a loaded machine takes between two steps (a backoff
// that expires, a second boundary passed). Only Advance moves it then.
func (c *clock) Freeze() {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.frozen.IsZero() {
		c.frozen = time.Now().Add(c.offset)
	}
}

// env is one running server with a user and clients.
type env struct {
	t      *testing.T
	URL    string
	Store  storage.Storage
	Server *server.Server
	Clock  *clock
	Logs   *syncBuffer // everything the server logged
	// AdminURL is the admin API's listener (token adminToken).
	AdminURL string

	// Notes is a confidential client; CLI a public one; Robot uses client_credentials.
	NotesSecret, RobotSecret string
	UserID                   string
}

const (
	adminToken        = "admin-token-for-tests-0123456789abcdef"
	registrationToken = "initial-access-token-for-tests-0123456789"
)

const (
	notesRedirect = "https://notes.example/callback"
	cliRedirect   = "http://127.0.0.1/callback"
	userName      = "amal"
	userPassword  = "correct horse battery"
)

var testPassword = password.Params{Memory: 1024, Time: 1, Threads: 1}

func start(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return startOn(t, store)
}

// startWith is start with settings changed by configure.
func startWith(t *testing.T, configure func(*config.Config)) *env {
	t.Helper()
	return startNode(t, sqliteStore(t), listen(t), "", &clock{}, configure)
}

// sqliteStore opens a new embedded store in a directory of the test's,
// closed when the test ends.
func sqliteStore(t *testing.T) storage.Storage {
	t.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

// postgresStore opens the store of a new schema of the test database
// (testenv.PostgresSchema: skipped where there is none, failed under
// BAWWAB_REQUIRE_ALL), closed when the test ends.
func postgresStore(t *testing.T) storage.Storage {
	t.Helper()
	dsn, schema := testenv.PostgresSchema(t)
	store, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return store
}

func startOn(t *testing.T, store storage.Storage) *env {
	t.Helper()
	return startNode(t, store, listen(t), "", &clock{})
}

func listen(t *testing.T) net.Listener {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	return l
}

// startNode serves bawwab on l with the given store and clock. issuer is
// the public URL when several nodes share one; empty means l's own URL.
// configure, if given, changes the configuration before the server starts.
func startNode(t *testing.T, store storage.Storage, l net.Listener, issuer string, c *clock, configure ...func(*config.Config)) *env {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	e := &env{t: t, URL: "http://" + l.Addr().String(), Store: store, Clock: c, Logs: &syncBuffer{},
		NotesSecret: notesSecretForTests, RobotSecret: robotSecretForTests}
	cfg := config.Default()
	cfg.Issuer = cmp.Or(issuer, e.URL)
	cfg.AdminToken = adminToken
	// "api" is the audience of every access token; "gateway" may exchange
	// them and "files" is a downstream API (TestTokenExchange).
	cfg.Audience = []string{"api", "gateway", "files"}
	cfg.Registration, cfg.RegistrationToken = "token", registrationToken
	// The jwks_uri and back-channel logout servers of the tests listen on
	// loopback, which bawwab refuses to call unless the operator allows it
	// (TestOutboundRefused runs without this).
	cfg.InsecureOutboundAllow = []string{"127.0.0.1"}
	for _, f := range configure {
		f(&cfg)
	}
	var out io.Writer = e.Logs
	if testing.Verbose() {
		out = io.MultiWriter(e.Logs, &testWriter{t})
	}
	log := slog.New(slog.NewJSONHandler(out, &slog.HandlerOptions{Level: slog.LevelDebug}))
	srv, err := server.New(ctx, cfg, store, log, server.Options{Now: e.Clock.Now, Password: &testPassword})
	if err != nil {
		t.Fatal(err)
	}
	e.Server = srv
	al := listen(t)
	e.AdminURL = "http://" + al.Addr().String()
	if cfg.AdminTLSCert != "" {
		e.AdminURL = "https://" + al.Addr().String()
	}
	done, adminDone := make(chan struct{}), make(chan struct{})
	go func() { defer close(done); _ = srv.Serve(ctx, l) }()
	go func() { defer close(adminDone); _ = srv.ServeAdmin(ctx, al) }()
	t.Cleanup(func() { cancel(); <-done; <-adminDone })
	e.UserID = seed(t, store, e.NotesSecret, e.RobotSecret)
	return e
}

// seed adds the test user and clients unless they exist (another node of
// the same store added them), and returns the user's id.
func seed(t *testing.T, store storage.Storage, notesSecret, robotSecret string) string {
	t.Helper()
	ctx := context.Background()
	if u, err := store.GetUserByUsername(ctx, userName); err == nil {
		return u.ID
	}
	id, err := admin.AddUser(ctx, store, admin.UserSpec{Username: userName, Password: userPassword, Name: "Amal Haddad",
		Email: "amal@example.com", EmailVerified: true, Picture: "https://example.com/amal.png"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	cat := scope.Default()
	all := []string{"openid", "profile", "photo", "email", "address", "phone", "files.read", "offline_access", "payment"}
	for _, c := range []admin.ClientSpec{
		{ID: "notes", Name: "Notes", RedirectURIs: []string{notesRedirect}, Scopes: all, Secret: notesSecret},
		{ID: "cli", Name: "CLI", Public: true, RedirectURIs: []string{cliRedirect}, Scopes: all},
		{ID: "tv", Name: "Living-room TV", Public: true, GrantTypes: []string{token.DeviceCodeGrantType, "refresh_token"}, Scopes: all},
		{ID: "robot", Name: "Robot", GrantTypes: []string{"client_credentials"}, Scopes: []string{"files.read"}, Secret: robotSecret},
		{ID: "api", Name: "Provider API", GrantTypes: []string{"client_credentials"}, Secret: "api-secret-for-tests-0123456789"},
	} {
		if _, err := admin.AddClient(ctx, store, c, cat); err != nil {
			t.Fatal(err)
		}
	}
	return id
}

// syncBuffer collects log output written from many goroutines.
type syncBuffer struct {
	mu  sync.Mutex
	buf strings.Builder
}

func (b *syncBuffer) Write(p []byte) (int, error) {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.Write(p)
}

func (b *syncBuffer) String() string {
	b.mu.Lock()
	defer b.mu.Unlock()
	return b.buf.String()
}

type testWriter struct{ t *testing.T }

func (w *testWriter) Write(p []byte) (int, error) {
	w.t.Log(strings.TrimRight(string(p), "\n"))
	return len(p), nil
}

// browser is a cookie-keeping HTTP client that does not follow redirects.
type browser struct {
	*http.Client
	e *env
}

func (e *env) browser() *browser {
	jar, _ := cookiejar.New(nil)
	return &browser{e: e, Client: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

// on is the same browser (same cookies) talking to another node.
func (b *browser) on(e *env) *browser { return &browser{Client: b.Client, e: e} }

type page struct {
	Status   int
	Location string
	Body     string
	Header   http.Header
}

func (b *browser) do(req *http.Request) page {
	b.e.t.Helper()
	resp, err := b.Do(req)
	if err != nil {
		b.e.t.Fatalf("%s %s: %v", req.Method, req.URL, err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return page{Status: resp.StatusCode, Location: resp.Header.Get("Location"), Body: string(body), Header: resp.Header}
}

func (b *browser) get(path string) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("GET", b.abs(path), nil)
	return b.do(req)
}

func (b *browser) post(path string, form url.Values) page {
	b.e.t.Helper()
	req, _ := http.NewRequest("POST", b.abs(path), strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(req)
}

func (b *browser) abs(path string) string {
	if strings.HasPrefix(path, "http") {
		return path
	}
	return b.e.URL + path
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

func csrfOf(t *testing.T, p page) string {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token in page (status %d): %s", p.Status, p.Body)
	}
	return m[1]
}

// authRequest is the query of an authorization request.
type authRequest struct {
	ClientID, RedirectURI, Scope, State, Nonce, Verifier string
	Extra                                                url.Values
}

func (e *env) notesRequest(scopes string) authRequest {
	return authRequest{ClientID: "notes", RedirectURI: notesRedirect, Scope: scopes, State: "state-" + token.NewID(),
		Nonce: "nonce-" + token.NewID(), Verifier: token.NewOpaque() + token.NewOpaque()}
}

func (r authRequest) query() url.Values {
	q := url.Values{"response_type": {"code"}, "client_id": {r.ClientID}, "redirect_uri": {r.RedirectURI}, "scope": {r.Scope},
		"state": {r.State}, "code_challenge": {token.S256(r.Verifier)}, "code_challenge_method": {"S256"}}
	if r.Nonce != "" {
		q.Set("nonce", r.Nonce)
	}
	for k, v := range r.Extra {
		q[k] = v
	}
	return q
}

func (r authRequest) url() string { return "/authorize?" + r.query().Encode() }

// login signs the browser in through the login form of a pending request.
func (b *browser) login(loginURL, user, pw string) page {
	b.e.t.Helper()
	p := b.get(loginURL)
	if p.Status != 200 {
		b.e.t.Fatalf("login page: %d %s", p.Status, p.Body)
	}
	u, _ := url.Parse(loginURL)
	return b.post("/login", url.Values{"csrf_token": {csrfOf(b.e.t, p)}, "req": {u.Query().Get("req")}, "username": {user}, "password": {pw}})
}

// consent answers a consent page: allow with the given scopes, or deny.
// When consent is remembered the page is a redirect, which it returns.
func (b *browser) consent(consentURL string, allow bool, scopes ...string) page {
	b.e.t.Helper()
	p := b.get(consentURL)
	if p.Status == http.StatusFound {
		return p
	}
	if p.Status != 200 {
		b.e.t.Fatalf("consent page: %d %s", p.Status, p.Body)
	}
	u, _ := url.Parse(consentURL)
	form := url.Values{"csrf_token": {csrfOf(b.e.t, p)}, "req": {u.Query().Get("req")}, "scope": scopes, "action": {"deny"}}
	if allow {
		form.Set("action", "allow")
	}
	return b.post("/consent", form)
}

// authorize runs the whole browser side: authorize, login if asked, consent
// with the given scopes if asked. It returns the final redirect's query.
func (b *browser) authorize(r authRequest, scopes ...string) url.Values {
	b.e.t.Helper()
	p := b.get(r.url())
	for range 4 {
		if p.Status != http.StatusFound && p.Status != http.StatusSeeOther {
			b.e.t.Fatalf("authorize: unexpected %d: %s", p.Status, p.Body)
		}
		switch {
		case strings.HasPrefix(p.Location, "/login"):
			p = b.login(p.Location, userName, userPassword)
		case strings.HasPrefix(p.Location, "/consent"):
			p = b.consent(p.Location, true, scopes...)
		case strings.HasPrefix(p.Location, r.RedirectURI):
			u, err := url.Parse(p.Location)
			if err != nil {
				b.e.t.Fatal(err)
			}
			return u.Query()
		default:
			b.e.t.Fatalf("authorize: unexpected redirect to %s", p.Location)
		}
	}
	b.e.t.Fatal("authorize: too many redirects")
	return nil
}

// tokenResult is a token endpoint answer, success or error.
type tokenResult struct {
	Status int
	Header http.Header
	token.Response
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// post sends a form to an endpoint with optional Basic credentials.
func (e *env) post(path string, form url.Values, user, pass string) (int, http.Header, []byte) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if user != "" {
		req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body
}

func (e *env) token(form url.Values, user, pass string) tokenResult {
	e.t.Helper()
	status, h, body := e.post("/token", form, user, pass)
	var r tokenResult
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatalf("token response is not JSON (%d): %s", status, body)
	}
	r.Status, r.Header = status, h
	return r
}

// redeem exchanges a code as the Notes client.
func (e *env) redeem(code string, r authRequest) tokenResult {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI},
		"code_verifier": {r.Verifier}}, "notes", e.NotesSecret)
}

func (e *env) refresh(rt string) tokenResult {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "notes", e.NotesSecret)
}

func (e *env) introspect(tok, user, pass string) map[string]any {
	e.t.Helper()
	status, _, body := e.post("/introspect", url.Values{"token": {tok}}, user, pass)
	if status != 200 {
		e.t.Fatalf("introspect: %d %s", status, body)
	}
	var m map[string]any
	if err := json.Unmarshal(body, &m); err != nil {
		e.t.Fatal(err)
	}
	return m
}

func (e *env) userinfo(accessToken string) (int, map[string]any, http.Header) {
	e.t.Helper()
	req, _ := http.NewRequest("GET", e.URL+"/userinfo", nil)
	req.Header.Set("Authorization", "Bearer "+accessToken)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	_ = json.NewDecoder(resp.Body).Decode(&m)
	return resp.StatusCode, m, resp.Header
}

func wantStatus(t *testing.T, got, want int, what string, body any) {
	t.Helper()
	if got != want {
		t.Fatalf("%s: status %d, want %d: %v", what, got, want, body)
	}
}

func wantTokenError(t *testing.T, r tokenResult, status int, code string) {
	t.Helper()
	if r.Status != status || r.Error != code {
		t.Fatalf("got %d %q (%s), want %d %q", r.Status, r.Error, r.Description, status, code)
	}
	if r.Description == "" {
		t.Fatalf("error %s has no error_description", r.Error)
	}
	if r.AccessToken != "" {
		t.Fatal("error response carries an access token")
	}
}

type ctxT = context.Context

func quietLog() *slog.Logger { return slog.New(slog.NewTextHandler(io.Discard, nil)) }

// signJWT signs claims with key as a compact JWT: the tests' client
// assertions, request objects, DPoP proofs and forged tokens.
func signJWT(t *testing.T, key jose.SigningKey, opts *jose.SignerOptions, claims any) string {
	t.Helper()
	s, err := jose.NewSigner(key, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(s).Claims(claims).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}
