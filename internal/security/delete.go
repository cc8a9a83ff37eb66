package security

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// FreshSignIn is how recent the sign-in of an account without a password
// must be to delete it: with no password to ask again, a fresh pass through
// the sign-in pipeline (passkey, second factor) is the re-authentication.
const FreshSignIn = 5 * time.Minute

// DeletionNotifier is a Notifier that also tells a person their account
// was deleted, from the account as it was (MailNotifier does).
type DeletionNotifier interface {
	AccountDeleted(ctx context.Context, u *storage.User)
}

// deleteData is what the account deletion page shows.
type deleteData struct {
	// Password says the account has one, which is asked again; without
	// one, Fresh says the session's sign-in is recent enough.
	Password, Fresh bool
	Minutes         int
	// ErrorText is what went wrong, in the page's language.
	ErrorText string
}

func (h *Handler) deletePage(w http.ResponseWriter, r *http.Request) {
	sess, u := h.user(w, r)
	if u == nil {
		return
	}
	h.renderDelete(w, r, http.StatusOK, sess, u, "")
}

func (h *Handler) renderDelete(w http.ResponseWriter, r *http.Request, status int, sess *storage.Session, u *storage.User, errText string) {
	d := deleteData{Password: u.PasswordHash != "", Fresh: h.fresh(sess), Minutes: int(FreshSignIn / time.Minute), ErrorText: errText}
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, status, "delete", "security.delete.title", ui.Page{CSRF: csrf, User: u.Name, Data: d})
}

// fresh reports whether the session's sign-in is recent enough to delete
// an account without a password.
func (h *Handler) fresh(sess *storage.Session) bool {
	return h.Now().Sub(sess.AuthTime) < FreshSignIn
}

// deleteAccount deletes the signed-in account after re-authentication:
// the password (throttled like sign-in), or for an account without one a
// sign-in made within FreshSignIn; a person with a second factor must
// have signed in with it (mayManage), as for changing it. Every grant, refresh token and session
// ends, the apps that asked for it get a back-channel logout, and the
// factors, consents, emailed links and unsent mail go with the user, in
// one transaction (storage.DeleteUser). An audit event, under the internal
// id only, stays. The last enabled admin is refused (storage.KeepingAdmin):
// no one could sign in to the admin console after.
func (h *Handler) deleteAccount(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	if !h.reauthDelete(w, r, sess, u) || !h.manages(w, r, sess, u) {
		return
	}
	var clients []storage.Client
	if h.Logouts != nil {
		clients = h.Logouts.Clients(ctx, u.ID) // before the consents go
	}
	err := h.Store.KeepingAdmin(ctx, u.ID, storage.Delete, h.Now())
	switch {
	case errors.Is(err, storage.ErrLastAdmin):
		h.renderDelete(w, r, http.StatusConflict, sess, u, ui.T(ui.Lang(nil, r), "security.delete.last_admin"))
		return
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if h.Logouts != nil {
		h.Logouts.Notify(u.ID, clients)
	}
	if n, ok := h.Notify.(DeletionNotifier); ok {
		n.AccountDeleted(ctx, u) // after the deletion, which drops unsent mail
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.AccountDeleted, UserID: u.ID, Detail: "apps told: " + strconv.Itoa(len(clients))})
	if err := h.Sessions.Logout(ctx, w, r); err != nil {
		h.Log.WarnContext(ctx, "deleted account: session cookie not cleared", "err", err)
	}
	h.UI.Render(w, r, http.StatusOK, "notice", "security.delete.title",
		ui.Page{Data: map[string]string{"Message": ui.T(ui.Lang(nil, r), "security.delete.done")}})
}

// reauthDelete asks the account's password again, or without one checks
// that the sign-in is fresh. When it fails it shows the page again (401,
// 429 with Retry-After while throttled, 403 for a stale sign-in) and
// returns false.
func (h *Handler) reauthDelete(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) bool {
	lang := ui.Lang(nil, r)
	if u.PasswordHash == "" {
		if !h.fresh(sess) {
			h.renderDelete(w, r, http.StatusForbidden, sess, u, ui.T(lang, "security.delete.stale"))
			return false
		}
		return true
	}
	err := h.reauth(r.Context(), u, r.PostForm.Get("current"))
	var re *errReauth
	switch {
	case err == nil:
		return true
	case errors.As(err, &re) && re.key == "security.throttled":
		w.Header().Set("Retry-After", strconv.Itoa(re.args[0].(int)))
		h.renderDelete(w, r, http.StatusTooManyRequests, sess, u, ui.T(lang, re.key, re.args...))
	case errors.As(err, &re):
		h.renderDelete(w, r, http.StatusUnauthorized, sess, u, ui.T(lang, re.key, re.args...))
	default:
		h.fail(w, r, oautherr.Wrap(err))
	}
	return false
}
