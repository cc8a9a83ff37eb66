// Package security serves the account's Security page (/account/security),
// beside Connected apps: the password, second factors (TOTP, recovery
// codes, passkeys), the sessions that are signed in, and recent security
// events from the audit log.
//
// Every change is a POST with the page's CSRF token, made for the session's
// own user only. Changes that weaken the account (turning TOTP off, new
// recovery codes, a new password) ask for the current password again, so
// that a stolen session cookie alone cannot remove a second factor (MFA
// bypass); those checks are throttled like sign-in.
package security

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
	"github.com/bawwab/bawwab/internal/upstream"
)

// Notifier tells a person of a security event on their account: a new
// passkey, a second factor turned off, a changed password. The mail outbox
// implements it; a nil Notifier tells nobody. It must not block on
// delivery: queue the notice and return.
type Notifier interface {
	SecurityEvent(ctx context.Context, userID, event string)
}

// LoggedOut is told when the user's other sessions end (a password
// change), to sign the user out of the apps too (back-channel logout).
// For a deleted account, Clients names the apps to tell before the
// deletion removes what links them, and Notify tells them after it
// (package backchannel).
type LoggedOut interface {
	LoggedOut(ctx context.Context, userID string)
	Clients(ctx context.Context, userID string) []storage.Client
	Notify(userID string, clients []storage.Client)
}

// Handler serves the Security page.
type Handler struct {
	Store    storage.Storage
	Sessions *session.Manager
	UI       *ui.UI
	Audit    *audit.Log
	Log      *slog.Logger
	TOTP     *factors.TOTP
	Recovery *factors.Recovery
	// Passkeys manages passkeys; nil offers none.
	Passkeys *factors.Passkeys
	// Issuer is the server's URL (Secure cookies under https).
	Issuer   string
	Password password.Params
	// Reauth throttles the current-password checks of each user.
	Reauth *ratelimit.Backoff
	// Notify and Logouts may be nil.
	Notify  Notifier
	Logouts LoggedOut
	Now     func() time.Time
	// Upstreams are the identity providers people sign in through; nil
	// lists no linked accounts.
	Upstreams *upstream.Flow
}

// Register adds the Security page and its forms to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /account/security", h.page)
	mux.HandleFunc("POST /account/security/password", h.changePassword)
	mux.HandleFunc("POST /account/security/totp", h.totp)
	mux.HandleFunc("POST /account/security/recovery", h.regenerate)
	mux.HandleFunc("POST /account/security/sessions/end", h.endSession)
	mux.HandleFunc("POST /account/security/data", h.download)
	mux.HandleFunc("GET /account/security/delete", h.deletePage)
	mux.HandleFunc("POST /account/security/delete", h.deleteAccount)
	mux.HandleFunc("POST /account/security/upstream/unlink", func(w http.ResponseWriter, r *http.Request) {
		if h.Upstreams == nil {
			http.NotFound(w, r)
			return
		}
		h.unlink(w, r)
	})
	if h.Upstreams != nil {
		mux.HandleFunc("GET "+upstream.ConfirmPath, h.linkPage)
		mux.HandleFunc("POST "+upstream.ConfirmPath, h.linkAnswer)
		h.Upstreams.Register(mux) // their back-channel logout
	}
	if h.Passkeys != nil {
		h.registerPasskeys(mux)
	} else {
		// The login page's script asks; it shows no passkey button.
		mux.HandleFunc("POST /login/passkey/begin", func(w http.ResponseWriter, r *http.Request) {
			writeJSON(w, http.StatusOK, map[string]bool{"off": true})
		})
	}
}

// event records a security event in the audit log and tells the person.
func (h *Handler) event(ctx context.Context, userID, typ, detail string) {
	h.Audit.Record(ctx, audit.Event{Type: typ, UserID: userID, Detail: detail})
	if h.Notify != nil {
		h.Notify.SecurityEvent(ctx, userID, typ)
	}
}

// parseForm parses a form and checks its CSRF token; on failure it writes
// the error page and returns false.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	switch err := h.Sessions.ReadForm(w, r); {
	case errors.Is(err, session.ErrCSRF):
		h.Audit.Record(r.Context(), audit.Event{Type: audit.CSRFRejected, Detail: "path=" + r.URL.Path})
		h.UI.Message(w, r, http.StatusForbidden, "csrf.failed")
		return false
	case err != nil:
		h.fail(w, r, oautherr.New(oautherr.InvalidRequest, err.Error()))
		return false
	}
	return true
}

// fail writes the error page for err: 503 while the store is out of reach
// (ui.Error).
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) { h.UI.Error(w, r, err) }

// posted reads a form posted from a page of the signed-in person: the
// CSRF check (parseForm), then the session and its user (user). The user
// is nil when it answered already.
func (h *Handler) posted(w http.ResponseWriter, r *http.Request) (*storage.Session, *storage.User) {
	if !h.parseForm(w, r) {
		return nil, nil
	}
	return h.user(w, r)
}

// user returns the signed-in user of r. Without a session it sends the
// browser to sign in and returns nil; on a store error it shows the error
// page and returns nil.
func (h *Handler) user(w http.ResponseWriter, r *http.Request) (*storage.Session, *storage.User) {
	sess, err := h.Sessions.Current(r.Context(), r)
	switch {
	case errors.Is(err, session.ErrNoSession):
		status := http.StatusFound
		if r.Method == http.MethodPost {
			status = http.StatusSeeOther
		}
		http.Redirect(w, r, "/login?"+ui.LocalesParam+"="+ui.Lang(nil, r), status)
		return nil, nil
	case err != nil:
		h.fail(w, r, oautherr.Wrap(err))
		return nil, nil
	}
	u, err := h.Store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return nil, nil
	}
	return sess, u
}

// errReauth means the current password was wrong or must wait; the
// message key says which.
type errReauth struct {
	key  string
	args []any
}

func (e *errReauth) Error() string { return "security: " + e.key }

// reauth checks the user's current password, throttled per user: counted
// before it is checked (package ratelimit).
func (h *Handler) reauth(ctx context.Context, u *storage.User, pw string) error {
	a, wait, err := h.Reauth.Reserve(ctx, "reauth-user:"+u.ID)
	if err != nil {
		return err
	}
	if wait > 0 {
		return &errReauth{key: "security.throttled", args: []any{ratelimit.RetrySeconds(wait)}}
	}
	defer a.Release(ctx)
	if _, err := password.Verify(pw, u.PasswordHash, h.Password); err != nil {
		if _, ferr := a.Fail(ctx); ferr != nil {
			return ferr
		}
		h.Audit.Record(ctx, audit.Event{Type: audit.LoginFailed, UserID: u.ID, Detail: "reauthentication on the security page"})
		return &errReauth{key: "security.password.wrong"}
	}
	return a.Succeed(ctx)
}
