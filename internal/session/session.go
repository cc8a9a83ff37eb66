// Package session keeps browser sessions on the server and protects forms
// against cross-site request forgery.
//
// Every browser gets one random cookie. While nobody is logged in it is only
// a handle for CSRF tokens; on login it is replaced by a fresh value (so a
// planted cookie never becomes a session: session fixation) whose SHA-256
// is stored with the user id. A CSRF token is an HMAC of the cookie value
// under a secret shared by every node through the store, so any node can
// check a form that another node rendered.
package session

import (
	"context"
	"crypto/hmac"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"errors"
	"net/http"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// CookieName is the browser cookie.
const CookieName = "bawwab_session"

// FormField is the form field that carries the CSRF token.
const FormField = "csrf_token"

// ErrNoSession means the browser is not logged in.
var ErrNoSession = errors.New("session: not logged in")

// Manager issues and checks sessions.
type Manager struct {
	store  storage.Storage
	key    []byte
	secure bool
	ttl    time.Duration
	now    func() time.Time
	// cookie, path and sameSite are those of the cookie; scope is prefixed
	// to the cookie value before it is hashed into the stored id, so that a
	// scoped manager's sessions are no sessions of another (Scoped).
	cookie, path, scope string
	sameSite            http.SameSite
	// require, when set, is what a user must be to hold a session of this
	// manager (RequireUser).
	require func(*storage.User) error
}

// RequireUser returns m asking require of the user at every sign-in, as it
// asks that the user be enabled: before the session is stored, and again
// after, so that a sign-in racing a change that ends the user's sessions
// (an admin role taken, say) keeps none.
func (m *Manager) RequireUser(require func(*storage.User) error) *Manager {
	s := *m
	s.require = require
	return &s
}

// New returns a Manager. secure marks cookies Secure (an https issuer).
func New(ctx context.Context, store storage.Storage, secure bool, ttl time.Duration, now func() time.Time) (*Manager, error) {
	key, err := store.Secret(ctx, "csrf", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, err
	}
	return &Manager{store: store, key: key, secure: secure, ttl: ttl, now: now, cookie: CookieName, path: "/", sameSite: http.SameSiteLaxMode}, nil
}

// Scoped returns a manager of sessions of their own, under the cookie
// name, sent only to path and only with same-site requests
// (SameSite=Strict), lasting ttl, Secure if secure: the admin console's.
// Its cookie values are no sessions of m, nor m's of it, and its CSRF
// tokens are its own.
func (m *Manager) Scoped(name, path string, ttl time.Duration, secure bool) *Manager {
	s := *m
	s.cookie, s.path, s.scope, s.sameSite, s.ttl, s.secure = name, path, name+"\x00", http.SameSiteStrictMode, ttl, secure
	return &s
}

// idHash is the stored id of the session with cookie value id.
func (m *Manager) idHash(id string) string { return storage.Hash(m.scope + id) }

func (m *Manager) setCookie(w http.ResponseWriter, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: m.cookie, Value: value, Path: m.path, MaxAge: maxAge,
		HttpOnly: true, Secure: m.secure, SameSite: m.sameSite})
}

func (m *Manager) cookieValue(r *http.Request) string {
	c, err := r.Cookie(m.cookie)
	if err != nil || len(c.Value) < 20 || len(c.Value) > 64 {
		return ""
	}
	return c.Value
}

// Current returns the session of r, or ErrNoSession.
func (m *Manager) Current(ctx context.Context, r *http.Request) (*storage.Session, error) {
	id := m.cookieValue(r)
	if id == "" {
		return nil, ErrNoSession
	}
	s, err := m.store.GetSession(ctx, m.idHash(id))
	if errors.Is(err, storage.ErrNotFound) {
		return nil, ErrNoSession
	}
	if err != nil {
		return nil, err
	}
	if !m.now().Before(s.ExpiresAt) {
		return nil, ErrNoSession
	}
	return s, nil
}

// Login starts a session for userID under a new cookie value and returns it.
// The old session of this browser, if any, ends.
func (m *Manager) Login(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string) (*storage.Session, error) {
	return m.LoginWith(ctx, w, r, userID, nil)
}

// LoginWith is Login for a sign-in that proved the authentication methods
// amr (RFC 8176), which the session keeps for the ID tokens it leads to.
//
// A disabled user gets no session (ErrDisabled). The user is read again
// after the session is stored: an operator disables a user before ending
// its sessions, so a session stored concurrently is either ended by the
// operator or found here and ended.
func (m *Manager) LoginWith(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string) (*storage.Session, error) {
	return m.LoginFrom(ctx, w, r, userID, amr, storage.UpstreamSession{})
}

// LoginFrom is LoginWith for a sign-in through the upstream session up,
// which the session keeps: the upstream's back-channel logout ends it.
func (m *Manager) LoginFrom(ctx context.Context, w http.ResponseWriter, r *http.Request, userID string, amr []string, up storage.UpstreamSession) (*storage.Session, error) {
	if err := m.enabled(ctx, userID); err != nil {
		return nil, err
	}
	if old := m.cookieValue(r); old != "" {
		_ = m.store.DeleteSession(ctx, m.idHash(old))
	}
	id := rand.Text() + rand.Text()
	now := m.now()
	s := storage.Session{IDHash: m.idHash(id), UserID: userID, AMR: amr, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(m.ttl), Upstream: up}
	if err := m.store.CreateSession(ctx, s); err != nil {
		return nil, err
	}
	if err := m.enabled(ctx, userID); err != nil {
		return nil, errors.Join(err, m.store.DeleteSession(ctx, s.IDHash))
	}
	if err := m.upstreamLive(ctx, up); err != nil {
		return nil, errors.Join(err, m.store.DeleteSession(ctx, s.IDHash))
	}
	m.setCookie(w, id, int(m.ttl.Seconds()))
	return &s, nil
}

// ErrUpstreamEnded refuses a session to a sign-in through an upstream
// session that the upstream's back-channel logout ended meanwhile.
var ErrUpstreamEnded = errors.New("session: the upstream session of the sign-in has ended")

// upstreamLive returns ErrUpstreamEnded when up's logout was recorded. It
// runs after the session is stored, and the logout records before it ends
// the stored sessions: of a sign-in racing the logout, either the logout
// finds the session or the session finds the logout.
func (m *Manager) upstreamLive(ctx context.Context, up storage.UpstreamSession) error {
	if up.Upstream == "" || up.SID == "" {
		return nil
	}
	switch ended, err := m.store.IsTokenRevoked(ctx, up.Ended()); {
	case err != nil:
		return err
	case ended:
		return ErrUpstreamEnded
	}
	return nil
}

// ErrDisabled refuses a session to a user an operator disabled.
var ErrDisabled = errors.New("session: the account is disabled")

// enabled returns ErrDisabled when the user is disabled, or what the
// manager's requirement (RequireUser) says of the user.
func (m *Manager) enabled(ctx context.Context, userID string) error {
	u, err := m.store.GetUser(ctx, userID)
	if err != nil {
		return err
	}
	if u.Disabled {
		return ErrDisabled
	}
	if m.require != nil {
		return m.require(u)
	}
	return nil
}

// Logout ends the session of r and gives the browser a fresh anonymous cookie.
func (m *Manager) Logout(ctx context.Context, w http.ResponseWriter, r *http.Request) error {
	if id := m.cookieValue(r); id != "" {
		// A session the store could not delete would outlive the cookie
		// (and work for whoever copied it): keep both and report.
		if err := m.store.DeleteSession(ctx, m.idHash(id)); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	m.setCookie(w, rand.Text()+rand.Text(), 0)
	return nil
}

// CSRFToken returns the CSRF token for the browser of r, giving it a cookie
// first if it has none. Call it before writing the response body.
func (m *Manager) CSRFToken(w http.ResponseWriter, r *http.Request) string {
	id := m.cookieValue(r)
	if id == "" {
		id = rand.Text() + rand.Text()
		m.setCookie(w, id, 0)
		// Later calls on this request see the new cookie in place of an
		// invalid one; the browser's other cookies (its language) stay.
		cookies := r.Cookies()
		r.Header.Del("Cookie")
		for _, c := range cookies {
			if c.Name != m.cookie {
				r.AddCookie(c)
			}
		}
		r.AddCookie(&http.Cookie{Name: m.cookie, Value: id})
	}
	return m.token(id)
}

func (m *Manager) token(id string) string {
	mac := hmac.New(sha256.New, m.key)
	mac.Write([]byte("csrf\x00" + m.scope + id))
	return base64.RawURLEncoding.EncodeToString(mac.Sum(nil))
}

// MaxFormBytes bounds a browser form's body.
const MaxFormBytes = 16 << 10

// Errors of ReadForm.
var (
	ErrMalformedForm = errors.New("the form is malformed or too large")
	ErrCSRF          = errors.New("the form's CSRF token is missing or not this browser's")
)

// ReadForm parses the browser form of r, at most MaxFormBytes, and checks
// its CSRF token: every page that takes a form starts so. It returns
// ErrMalformedForm or ErrCSRF; the caller words the page and audits a
// refused token.
func (m *Manager) ReadForm(w http.ResponseWriter, r *http.Request) error {
	r.Body = http.MaxBytesReader(w, r.Body, MaxFormBytes)
	if err := r.ParseForm(); err != nil {
		return ErrMalformedForm
	}
	if !m.CheckCSRF(r) {
		return ErrCSRF
	}
	return nil
}

// CheckCSRF reports whether the submitted form of r carries the CSRF token
// of its cookie. The form must be parsed.
func (m *Manager) CheckCSRF(r *http.Request) bool {
	id := m.cookieValue(r)
	if id == "" {
		return false
	}
	got := r.PostFormValue(FormField)
	return hmac.Equal([]byte(got), []byte(m.token(id)))
}
