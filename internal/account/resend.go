package account

import (
	"errors"
	"net/http"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/ui"
)

// EventVerifyResent is the audit event of a new confirmation link asked
// for on the Security page.
const EventVerifyResent = "verify_link_resent"

// ResentNotice is the Security page's notice after a new link was asked
// for; the page names it in ?done=.
const ResentNotice = "security.verify.sent"

// resendVerification mails the signed-in person's unconfirmed address a
// new confirmation link, which voids the earlier ones (mailConfirmation).
// It acts on the session's own account only, within the same send budgets
// per address and per account as every mail, and answers alike whether a
// mail left, was held back by the budget, or was a notice that another
// account owns the address: the answer tells nothing of other accounts.
func (h *Handler) resendVerification(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	lang := ui.Lang(nil, r)
	sess, err := h.Sessions.Current(ctx, r)
	if errors.Is(err, session.ErrNoSession) {
		http.Redirect(w, r, "/login?"+ui.LocalesParam+"="+lang, http.StatusSeeOther)
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	u, err := h.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if u.Email == "" || u.EmailVerified {
		http.Redirect(w, r, "/account/security?"+ui.LocalesParam+"="+lang, http.StatusSeeOther)
		return
	}
	if err := h.mailConfirmation(ctx, *u, lang); err != nil {
		h.fail(w, r, err)
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: EventVerifyResent, UserID: u.ID})
	http.Redirect(w, r, "/account/security?done="+ResentNotice+"&"+ui.LocalesParam+"="+lang, http.StatusSeeOther)
}
