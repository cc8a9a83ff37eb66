package security

import (
	"context"
	"errors"
	"net/http"
	"slices"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// mayManage reports whether sess may add, replace or remove the second
// factors of u (an authenticator app, passkeys, recovery codes): a session
// that proved a second factor may, and so may one that signed in before u
// had any (it set them up itself). A session of the password alone may
// not: whoever holds only the password would otherwise mint the second
// factor that apps and sensitive scopes ask for, or remove the owner's.
func (h *Handler) mayManage(ctx context.Context, sess *storage.Session, u *storage.User) (bool, error) {
	if slices.Contains(sess.AMR, signin.AMRMFA) {
		return true, nil
	}
	t, err := h.Store.GetTOTP(ctx, u.ID)
	switch {
	case err == nil && !t.ConfirmedAt.IsZero() && t.ConfirmedAt.Before(sess.AuthTime):
		return false, nil
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return false, err
	}
	keys, err := h.Store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return false, err
	}
	return !slices.ContainsFunc(keys, func(k storage.Passkey) bool { return k.CreatedAt.Before(sess.AuthTime) }), nil
}

// manages answers whether sess may manage u's factors (mayManage); when
// it may not, it has shown the Security page with the way to go on: sign
// in again, which asks for the second factor (403).
func (h *Handler) manages(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) bool {
	ok, err := h.mayManage(r.Context(), sess, u)
	switch {
	case err != nil:
		h.fail(w, r, oautherr.Wrap(err))
	case !ok:
		h.Audit.Record(r.Context(), audit.Event{Type: audit.StepUpRefused, UserID: u.ID, Detail: "path=" + r.URL.Path})
		h.render(w, r, http.StatusForbidden, sess, u, pageData{Error: "security.stepup"})
	}
	return err == nil && ok
}

// managesJSON is manages for the passkey script's requests.
func (h *Handler) managesJSON(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) bool {
	ok, err := h.mayManage(r.Context(), sess, u)
	switch {
	case err != nil:
		h.jsonFail(w, r, u.ID, err)
	case !ok:
		h.Audit.Record(r.Context(), audit.Event{Type: audit.StepUpRefused, UserID: u.ID, Detail: "path=" + r.URL.Path})
		writeJSON(w, http.StatusForbidden, jsonAnswer{Message: ui.T(ui.Lang(nil, r), "security.stepup")})
	}
	return err == nil && ok
}
