package session

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

func newManager(t *testing.T, secure bool) (*Manager, storage.Storage, *time.Time) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	for _, id := range []string{"u1", "u2"} {
		if err := s.CreateUser(ctx, storage.User{ID: id, Username: id, PasswordHash: "$argon2id$x"}); err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now().Truncate(time.Second)
	m, err := New(ctx, s, secure, time.Hour, func() time.Time { return now })
	if err != nil {
		t.Fatal(err)
	}
	return m, s, &now
}

func cookieOf(t *testing.T, rec *httptest.ResponseRecorder) *http.Cookie {
	t.Helper()
	for _, c := range rec.Result().Cookies() {
		if c.Name == CookieName {
			return c
		}
	}
	t.Fatal("no session cookie set")
	return nil
}

func withCookie(c *http.Cookie) *http.Request {
	r := httptest.NewRequest("GET", "/", nil)
	if c != nil {
		r.AddCookie(&http.Cookie{Name: c.Name, Value: c.Value})
	}
	return r
}

// TestLogin: the session cookie is HttpOnly, SameSite=Lax, Secure when
// asked, lives as long as the session, and names a session of the user;
// only the hash of its value is stored. A login replaces the session the
// browser had (no session fixation).
func TestLogin(t *testing.T) {
	ctx := context.Background()
	for _, secure := range []bool{false, true} {
		m, s, now := newManager(t, secure)
		rec := httptest.NewRecorder()
		pre := &http.Cookie{Name: CookieName, Value: strings.Repeat("f", 32)}
		sess, err := m.Login(ctx, rec, withCookie(pre), "u1")
		if err != nil {
			t.Fatal(err)
		}
		c := cookieOf(t, rec)
		if !c.HttpOnly || c.SameSite != http.SameSiteLaxMode || c.Secure != secure || c.MaxAge != 3600 || c.Path != "/" || c.Value == pre.Value {
			t.Fatalf("cookie %+v (secure %v)", c, secure)
		}
		if sess.IDHash != storage.Hash(c.Value) || sess.UserID != "u1" || !sess.AuthTime.Equal(*now) {
			t.Fatalf("session %+v", sess)
		}
		if _, err := s.GetSession(ctx, c.Value); !errors.Is(err, storage.ErrNotFound) {
			t.Fatal("the cookie value itself is a key of the store")
		}
		got, err := m.Current(ctx, withCookie(c))
		if err != nil || got.UserID != "u1" {
			t.Fatalf("Current = %+v, %v", got, err)
		}
	}
}

// TestCurrent: each row a request and whether it has a session.
func TestCurrent(t *testing.T) {
	ctx := context.Background()
	m, _, now := newManager(t, false)
	rec := httptest.NewRecorder()
	if _, err := m.Login(ctx, rec, withCookie(nil), "u1"); err != nil {
		t.Fatal(err)
	}
	good := cookieOf(t, rec)
	tests := []struct {
		name    string
		cookie  *http.Cookie
		advance time.Duration
		wantErr error
	}{
		{"no cookie", nil, 0, ErrNoSession},
		{"unknown value", &http.Cookie{Name: CookieName, Value: strings.Repeat("a", 32)}, 0, ErrNoSession},
		{"too short", &http.Cookie{Name: CookieName, Value: "short"}, 0, ErrNoSession},
		{"too long", &http.Cookie{Name: CookieName, Value: strings.Repeat("a", 65)}, 0, ErrNoSession},
		{"valid", good, 0, nil},
		{"expired", good, time.Hour, ErrNoSession},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			*now = now.Add(tt.advance)
			_, err := m.Current(ctx, withCookie(tt.cookie))
			if !errors.Is(err, tt.wantErr) || tt.wantErr == nil && err != nil {
				t.Fatalf("Current = %v, want %v", err, tt.wantErr)
			}
		})
	}
}

// TestLogout: the session is deleted from the store and the cookie
// replaced.
func TestLogout(t *testing.T) {
	ctx := context.Background()
	m, _, _ := newManager(t, false)
	rec := httptest.NewRecorder()
	if _, err := m.Login(ctx, rec, withCookie(nil), "u1"); err != nil {
		t.Fatal(err)
	}
	c := cookieOf(t, rec)
	out := httptest.NewRecorder()
	m.Logout(ctx, out, withCookie(c))
	if cookieOf(t, out).Value == c.Value {
		t.Fatal("logout kept the cookie value")
	}
	if _, err := m.Current(ctx, withCookie(c)); !errors.Is(err, ErrNoSession) {
		t.Fatalf("the old cookie after logout: %v", err)
	}
}

// TestCSRF: the token is bound to the browser's cookie (a fresh cookie
// is set when there is none), and a form passes only with the token of
// its own cookie.
func TestCSRF(t *testing.T) {
	m, _, _ := newManager(t, false)
	r := withCookie(nil)
	rec := httptest.NewRecorder()
	tok := m.CSRFToken(rec, r)
	c := cookieOf(t, rec)
	if again := m.CSRFToken(httptest.NewRecorder(), withCookie(c)); again != tok {
		t.Fatal("the CSRF token of one cookie changes")
	}
	other := &http.Cookie{Name: CookieName, Value: strings.Repeat("b", 32)}
	form := func(c *http.Cookie, token string) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(url.Values{FormField: {token}}.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if c != nil {
			r.AddCookie(c)
		}
		return r
	}
	tests := []struct {
		name string
		req  *http.Request
		want bool
	}{
		{"own token", form(c, tok), true},
		{"no token", form(c, ""), false},
		{"another cookie's token", form(other, tok), false},
		{"no cookie", form(nil, tok), false},
		{"tampered", form(c, tok[:len(tok)-1]+"A"), tok[len(tok)-1] == 'A'},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := m.CheckCSRF(tt.req); got != tt.want {
				t.Fatalf("CheckCSRF = %v, want %v", got, tt.want)
			}
		})
	}
	// Another server's key gives other tokens.
	m2, _, _ := newManager(t, false)
	if m2.CSRFToken(httptest.NewRecorder(), withCookie(c)) == tok {
		t.Fatal("two servers with their own keys made the same CSRF token")
	}
}

// TestReadForm: a form too large is malformed before its token is read;
// a form without this browser's token is ErrCSRF; its own token passes.
func TestReadForm(t *testing.T) {
	m, _, _ := newManager(t, false)
	rec := httptest.NewRecorder()
	tok := m.CSRFToken(rec, withCookie(nil))
	c := cookieOf(t, rec)
	post := func(form url.Values) *http.Request {
		r := httptest.NewRequest("POST", "/", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		r.AddCookie(c)
		return r
	}
	tests := []struct {
		name string
		form url.Values
		want error
	}{
		{"own token", url.Values{FormField: {tok}}, nil},
		{"no token", url.Values{"x": {"y"}}, ErrCSRF},
		{"too large", url.Values{FormField: {tok}, "x": {strings.Repeat("y", MaxFormBytes)}}, ErrMalformedForm},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if err := m.ReadForm(httptest.NewRecorder(), post(tt.form)); err != tt.want {
				t.Fatalf("ReadForm = %v, want %v", err, tt.want)
			}
		})
	}
}

// TestLoginDisabled: a disabled user gets no session and no cookie, nor
// does an unknown one; enabled again, it signs in.
func TestLoginDisabled(t *testing.T) {
	ctx := context.Background()
	m, s, _ := newManager(t, false)
	if err := s.SetUserDisabled(ctx, "u2", true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		user string
		want error
	}{{"u2", ErrDisabled}, {"nobody", storage.ErrNotFound}} {
		rec := httptest.NewRecorder()
		if _, err := m.Login(ctx, rec, withCookie(nil), tt.user); !errors.Is(err, tt.want) {
			t.Fatalf("login %s: %v, want %v", tt.user, err, tt.want)
		}
		if len(rec.Result().Cookies()) != 0 {
			t.Fatalf("login %s set a cookie", tt.user)
		}
	}
	if sessions, _ := s.ListUserSessions(ctx, "u2"); len(sessions) != 0 {
		t.Fatalf("a disabled user has sessions: %v", sessions)
	}
	if err := s.SetUserDisabled(ctx, "u2", false); err != nil {
		t.Fatal(err)
	}
	if _, err := m.Login(ctx, httptest.NewRecorder(), withCookie(nil), "u2"); err != nil {
		t.Fatalf("login after enabling: %v", err)
	}
}

// TestScoped: a scoped manager's cookie has its name, path, SameSite=Strict
// and lifetime; its value is no session of the server's manager, nor a
// server session's value one of it; its CSRF tokens are its own.
func TestScoped(t *testing.T) {
	m, _, _ := newManager(t, true)
	ctx := context.Background()
	sc := m.Scoped("console", "/console/", 10*time.Minute, false)

	rec := httptest.NewRecorder()
	if _, err := sc.Login(ctx, rec, httptest.NewRequest("GET", "/console/", nil), "u1"); err != nil {
		t.Fatal(err)
	}
	var c *http.Cookie
	for _, ck := range rec.Result().Cookies() {
		if ck.Name == "console" {
			c = ck
		}
	}
	if c == nil || c.Path != "/console/" || c.SameSite != http.SameSiteStrictMode || !c.HttpOnly || c.Secure || c.MaxAge != 600 {
		t.Fatalf("scoped cookie: %+v", c)
	}
	if s, err := sc.Current(ctx, withCookie(c)); err != nil || s.UserID != "u1" {
		t.Fatalf("scoped session: %v %+v", err, s)
	}
	// The console's value under the server's cookie name: no session.
	if _, err := m.Current(ctx, withCookie(&http.Cookie{Name: CookieName, Value: c.Value})); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a scoped cookie value is a server session: %v", err)
	}
	// A server session's value under the console's name: no session.
	rec = httptest.NewRecorder()
	if _, err := m.Login(ctx, rec, httptest.NewRequest("GET", "/", nil), "u2"); err != nil {
		t.Fatal(err)
	}
	pub := cookieOf(t, rec)
	if _, err := sc.Current(ctx, withCookie(&http.Cookie{Name: "console", Value: pub.Value})); !errors.Is(err, ErrNoSession) {
		t.Fatalf("a server session value is a scoped session: %v", err)
	}
	// CSRF tokens of one are not tokens of the other for the same value.
	if sc.token(c.Value) == m.token(c.Value) {
		t.Fatal("scoped and server CSRF tokens are the same")
	}
	form := url.Values{FormField: {m.token(c.Value)}}
	r := httptest.NewRequest("POST", "/console/x", strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.AddCookie(&http.Cookie{Name: "console", Value: c.Value})
	if err := sc.ReadForm(httptest.NewRecorder(), r); !errors.Is(err, ErrCSRF) {
		t.Fatalf("the server's CSRF token passed a scoped form: %v", err)
	}
}
