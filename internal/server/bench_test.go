package server_test

import (
	"context"
	"encoding/json"
	"io"
	"log/slog"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
)

// The handler benchmarks call the server's handler directly (no network),
// so that ns/op and allocs/op are the server's own. Run with -benchmem.
// The load tool (bawwab bench) measures the same paths over real HTTP.

const (
	redirect = "https://notes.example/callback"
	secret   = "notes-secret-for-benchmarks-0123456789"
)

var cheap = password.Params{Memory: 1024, Time: 1, Threads: 1}

type bench struct {
	srv    *server.Server
	h      http.Handler
	store  storage.Storage
	userID string
}

func newBench(b testing.TB) *bench {
	b.Helper()
	return newBenchWith(b, server.Options{Password: &cheap}, "")
}

// newBenchWith is newBench with the server's options given (a clock), and
// the client's ID tokens signed with idTokenAlg (RS256 when empty).
func newBenchWith(b testing.TB, opts server.Options, idTokenAlg string) *bench {
	b.Helper()
	store, err := sqlite.Open(context.Background(), filepath.Join(b.TempDir(), "bench.db"))
	if err != nil {
		b.Fatal(err)
	}
	b.Cleanup(func() { store.Close() })
	return newBenchOn(b, store, opts, idTokenAlg)
}

// newBenchOn is newBenchWith on a store of the caller's.
func newBenchOn(b testing.TB, store storage.Storage, opts server.Options, idTokenAlg string) *bench {
	b.Helper()
	ctx := context.Background()
	cfg := config.Default()
	cfg.Issuer = "http://localhost:8080"
	srv, err := server.New(ctx, cfg, store, slog.New(slog.NewTextHandler(io.Discard, nil)), opts)
	if err != nil {
		b.Fatal(err)
	}
	uid, err := admin.AddUser(ctx, store, admin.UserSpec{Username: "amal", Password: "open sesame", Name: "Amal", Email: "amal@example.com"}, cheap)
	if err != nil {
		b.Fatal(err)
	}
	if _, err := admin.AddClient(ctx, store, admin.ClientSpec{ID: "notes", Name: "Notes", RedirectURIs: []string{redirect},
		GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		Scopes:     []string{"openid", "email", "offline_access", "files.read"}, Secret: secret, IDTokenAlg: idTokenAlg}, scope.Default()); err != nil {
		b.Fatal(err)
	}
	return &bench{srv: srv, h: srv.Handler(), store: store, userID: uid}
}

// post serves one form POST with Basic client authentication and returns
// the decoded JSON answer; any status but 200 fails the benchmark.
func (s *bench) post(b testing.TB, path string, form string) map[string]any {
	req := httptest.NewRequest("POST", path, strings.NewReader(form))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("notes", secret)
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	if w.Code != 200 {
		b.Fatalf("%s: %d %s", path, w.Code, w.Body)
	}
	var m map[string]any
	if err := json.Unmarshal(w.Body.Bytes(), &m); err != nil {
		b.Fatal(err)
	}
	return m
}

func BenchmarkClientCredentials(b *testing.B) {
	s := newBench(b)
	form := "grant_type=client_credentials&scope=files.read"
	b.ReportAllocs()
	for b.Loop() {
		req := httptest.NewRequest("POST", "/token", strings.NewReader(form))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("notes", secret)
		w := httptest.NewRecorder()
		s.h.ServeHTTP(w, req)
		if w.Code != 200 {
			b.Fatalf("%d %s", w.Code, w.Body)
		}
	}
}

// codes stores n authorization codes as /authorize would have issued them.
func (s *bench) codes(b testing.TB, n int, verifier string) []string {
	b.Helper()
	ctx := context.Background()
	now := s.srv.Issuer.Now()
	out := make([]string, n)
	for i := range out {
		out[i] = token.NewOpaque()
		if err := s.store.CreateAuthCode(ctx, storage.AuthCode{Hash: storage.Hash(out[i]), GrantID: token.NewID(), ClientID: "notes",
			UserID: s.userID, RedirectURI: redirect, Scopes: []string{"openid", "email", "offline_access"}, CodeChallenge: token.S256(verifier),
			CodeChallengeMethod: "S256", AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
			b.Fatal(err)
		}
	}
	return out
}

func BenchmarkAuthorizationCode(b *testing.B) {
	s := newBench(b)
	verifier := strings.Repeat("v", 43)
	codes := s.codes(b, b.N, verifier)
	b.ReportAllocs()
	b.ResetTimer()
	for i := range b.N {
		s.post(b, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {codes[i]}, "redirect_uri": {redirect},
			"code_verifier": {verifier}}.Encode())
	}
}

// BenchmarkRefresh rotates a refresh token of a client with the default
// RS256 ID tokens: the RSA signature is most of the CPU.
func BenchmarkRefresh(b *testing.B) { benchRefresh(b, newBench(b)) }

// BenchmarkRefreshES256 is BenchmarkRefresh for a client registered with
// id_token_signed_response_alg ES256.
func BenchmarkRefreshES256(b *testing.B) {
	benchRefresh(b, newBenchWith(b, server.Options{Password: &cheap}, "ES256"))
}

func benchRefresh(b *testing.B, s *bench) {
	verifier := strings.Repeat("v", 43)
	first := s.post(b, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {s.codes(b, 1, verifier)[0]},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}.Encode())
	rt := first["refresh_token"].(string)
	b.ReportAllocs()
	for b.Loop() {
		rt = s.post(b, "/token", "grant_type=refresh_token&refresh_token="+rt)["refresh_token"].(string)
	}
}

func BenchmarkIntrospectJWT(b *testing.B) {
	s := newBench(b)
	at := s.post(b, "/token", "grant_type=client_credentials&scope=files.read")["access_token"].(string)
	form := "token=" + at
	b.ReportAllocs()
	for b.Loop() {
		if s.post(b, "/introspect", form)["active"] != true {
			b.Fatal("inactive")
		}
	}
}

func BenchmarkIntrospectOpaque(b *testing.B) {
	s := newBench(b)
	verifier := strings.Repeat("v", 43)
	rt := s.post(b, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {s.codes(b, 1, verifier)[0]},
		"redirect_uri": {redirect}, "code_verifier": {verifier}}.Encode())["refresh_token"].(string)
	form := "token=" + rt + "&token_type_hint=refresh_token"
	b.ReportAllocs()
	for b.Loop() {
		if s.post(b, "/introspect", form)["active"] != true {
			b.Fatal("inactive")
		}
	}
}

var csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// BenchmarkAuthorize is GET /authorize of a logged-in user whose consent is
// remembered: the request is checked and a code issued at once.
func BenchmarkAuthorize(b *testing.B) {
	s := newBench(b)
	authURL, cookies := s.signIn(b, "openid email")
	b.ReportAllocs()
	for b.Loop() {
		s.authorize(b, authURL, cookies)
	}
}

// signIn logs the user in and consents to scope once, over HTTP, and
// returns an authorization URL that now yields a code at once, with the
// session's cookies.
func (s *bench) signIn(b testing.TB, scope string) (string, []*http.Cookie) {
	b.Helper()
	ts := httptest.NewServer(s.h)
	defer ts.Close()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	q := url.Values{"response_type": {"code"}, "client_id": {"notes"}, "redirect_uri": {redirect}, "scope": {scope},
		"state": {"xyz"}, "code_challenge": {token.S256(strings.Repeat("v", 43))}, "code_challenge_method": {"S256"}}
	authURL := "/authorize?" + q.Encode()
	loc := get(b, c, ts.URL+authURL)
	for range 3 {
		if strings.HasPrefix(loc, redirect) {
			break
		}
		page := body(b, c, ts.URL+loc)
		u, _ := url.Parse(loc)
		form := url.Values{"csrf_token": {csrfRE.FindStringSubmatch(page)[1]}, "req": {u.Query().Get("req")}}
		if strings.HasPrefix(loc, "/login") {
			form.Set("username", "amal")
			form.Set("password", "open sesame")
		} else {
			form["scope"] = strings.Fields(strings.TrimPrefix(scope, "openid "))
			form.Set("action", "allow")
		}
		resp, err := c.PostForm(ts.URL+u.Path, form)
		if err != nil {
			b.Fatal(err)
		}
		resp.Body.Close()
		loc = resp.Header.Get("Location")
	}
	if !strings.HasPrefix(loc, redirect) {
		b.Fatalf("setup ended at %s", loc)
	}
	tsURL, _ := url.Parse(ts.URL)
	return authURL, jar.Cookies(tsURL)
}

// authorize serves GET authURL with the session's cookies and returns the
// code it redirects with.
func (s *bench) authorize(b testing.TB, authURL string, cookies []*http.Cookie) string {
	req := httptest.NewRequest("GET", authURL, nil)
	for _, ck := range cookies {
		req.AddCookie(ck)
	}
	w := httptest.NewRecorder()
	s.h.ServeHTTP(w, req)
	loc := w.Header().Get("Location")
	if w.Code != http.StatusFound || !strings.HasPrefix(loc, redirect) {
		b.Fatalf("%d %s", w.Code, loc)
	}
	u, _ := url.Parse(loc)
	return u.Query().Get("code")
}

func get(b testing.TB, c *http.Client, u string) string {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	resp.Body.Close()
	return resp.Header.Get("Location")
}

func body(b testing.TB, c *http.Client, u string) string {
	resp, err := c.Get(u)
	if err != nil {
		b.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return string(raw)
}
