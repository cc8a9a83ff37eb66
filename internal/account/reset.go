package account

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"strconv"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

type resetData struct {
	Token, Username, Error string
}

func (h *Handler) renderReset(w http.ResponseWriter, r *http.Request, status int, d resetData) {
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, status, "reset", "reset.title", ui.Page{CSRF: csrf, Data: d})
}

func (h *Handler) resetPage(w http.ResponseWriter, r *http.Request) {
	h.renderReset(w, r, http.StatusOK, resetData{})
}

// reset asks for a reset link. The answer is the same whatever was
// entered, and comes before any account is looked up: the lookup and the
// mail are made in the background, so that neither the text nor the time
// of the answer tells whether an account exists. Only a network that asks
// too often is told to wait.
func (h *Handler) reset(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	lang := ui.Lang(nil, r)
	login := strings.TrimSpace(r.PostForm.Get("login"))
	try, wait, err := h.Creations.Reserve(ctx, "reset-ip:"+network(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if wait > 0 {
		secs := ratelimit.RetrySeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.renderReset(w, r, http.StatusTooManyRequests, resetData{Error: ui.T(lang, "reset.throttled", secs)})
		return
	}
	if _, err := try.Fail(ctx); err != nil { // every request counts
		h.Log.WarnContext(ctx, "reset: count request", "err", err)
	}
	if login != "" && len(login) <= mail.MaxAddressLen && storage.ValidText(login) {
		bg := context.WithoutCancel(ctx)
		h.wg.Go(func() {
			bg, cancel := context.WithTimeout(bg, 30*time.Second)
			defer cancel()
			if err := h.sendReset(bg, login, lang); err != nil {
				h.Log.ErrorContext(bg, "reset: link not sent", "err", err)
			}
		})
	}
	h.notice(w, r, http.StatusOK, "reset.title", noticeData{Message: ui.T(lang, "reset.sent", h.minutes())})
}

// sendReset mails a reset link to the account login names (an address or
// a username), if there is one with a confirmed address, within the send
// budgets; the new link voids the account's earlier reset links
// (newLink). Links go to confirmed addresses only: an address someone
// typed at sign-up and never confirmed may be another person's.
func (h *Handler) sendReset(ctx context.Context, login, lang string) error {
	var u *storage.User
	var err error
	if strings.Contains(login, "@") {
		u, err = h.Store.GetUserByEmail(ctx, login)
	} else {
		u, err = h.Store.GetUserByUsername(ctx, login)
	}
	if errors.Is(err, storage.ErrNotFound) {
		h.Log.DebugContext(ctx, "reset: no account matches")
		return nil
	} else if err != nil {
		return err
	}
	if !u.EmailVerified || mail.CheckAddress(u.Email) != nil {
		h.Log.InfoContext(ctx, "reset: the account has no confirmed address", "user_id", u.ID)
		return nil
	}
	h.Audit.Record(ctx, audit.Event{Type: EventResetAsked, UserID: u.ID})
	if ok, err := h.mayMail(ctx, u.Email, u.ID); err != nil || !ok {
		if err == nil {
			h.Log.InfoContext(ctx, "reset: throttled, no mail sent", "user_id", u.ID)
		}
		return err
	}
	secret, err := h.newLink(ctx, storage.TokenResetPassword, u.ID, u.Email)
	if err != nil {
		return err
	}
	return h.Outbox.Send(ctx, mail.Message{To: u.Email, Kind: "reset", Subject: ui.T(lang, "mail.reset.subject"),
		Body: ui.T(lang, "mail.reset.body", u.Name, u.Username, h.minutes(), h.linkURL("/reset/confirm", secret, lang)) + h.signature(lang)})
}

// resetConfirmPage shows the form for a new password, for a live link; the
// link is spent only when the form is sent, so that a mail scanner that
// opens links spends nothing.
func (h *Handler) resetConfirmPage(w http.ResponseWriter, r *http.Request) {
	secret := r.URL.Query().Get("token")
	t, u, ok := h.peekReset(w, r, secret)
	if !ok {
		return
	}
	_ = t
	h.renderReset(w, r, http.StatusOK, resetData{Token: secret, Username: u.Username})
}

// peekReset finds the user of a live reset link without spending it.
func (h *Handler) peekReset(w http.ResponseWriter, r *http.Request, secret string) (*storage.AccountToken, *storage.User, bool) {
	ctx := r.Context()
	try, ok := h.reserveGuess(w, r, "reset.title")
	if !ok {
		return nil, nil, false
	}
	defer try.Release(ctx)
	var t *storage.AccountToken
	err := storage.ErrNotFound
	if secret != "" && storage.ValidText(secret) {
		t, err = h.Store.GetAccountToken(ctx, storage.Hash(secret), storage.TokenResetPassword, h.Now())
	}
	if t, ok = h.linkResult(w, r, try, t, err, storage.TokenResetPassword, "reset.title", "reset.invalid"); !ok {
		return nil, nil, false
	}
	u, err := h.Store.GetUser(ctx, t.UserID)
	// A link mailed to an address the account no longer has confirmed
	// (the operator changed it) opens nothing: whoever reads the old
	// mailbox keeps no way in.
	if errors.Is(err, storage.ErrNotFound) || err == nil && (!u.EmailVerified || storage.NormalEmail(u.Email) != t.Email) {
		h.notice(w, r, http.StatusBadRequest, "reset.title", noticeData{Error: ui.T(ui.Lang(nil, r), "reset.invalid")})
		return nil, nil, false
	} else if err != nil {
		h.fail(w, r, err)
		return nil, nil, false
	}
	return t, u, true
}

// resetConfirm sets the new password of the link's account — the link
// alone names the account; nothing else in the form does — then ends
// every session and refresh chain of the account, with back-channel
// logout to its apps, voids its other reset links, and mails a notice.
func (h *Handler) resetConfirm(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	lang := ui.Lang(nil, r)
	secret := r.PostForm.Get("token")
	_, u, ok := h.peekReset(w, r, secret)
	if !ok {
		return
	}
	pw := r.PostForm.Get("password")
	if err := password.Check(pw, u.Username); err != nil {
		h.renderReset(w, r, http.StatusBadRequest, resetData{Token: secret, Username: u.Username, Error: err.Error()})
		return
	}
	// Spend the link before changing anything: of concurrent uses, one
	// wins.
	if _, ok := h.useLink(w, r, secret, storage.TokenResetPassword, "reset.title", "reset.invalid"); !ok {
		return
	}
	hash, err := password.Hash(pw, h.Password)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.Store.UpdateUserPassword(ctx, u.ID, hash); err != nil {
		h.fail(w, r, err)
		return
	}
	if err := h.Store.DeleteAccountTokens(ctx, u.ID, storage.TokenResetPassword); err != nil {
		h.Log.WarnContext(ctx, "reset: older links not voided", "user_id", u.ID, "err", err)
	}
	sessions, grants, err := h.endEverywhere(ctx, u.ID)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: EventPasswordReset, UserID: u.ID,
		Detail: fmt.Sprintf("by emailed link; ended %d sessions and %d grants", sessions, grants)})
	// This browser's cookie named a session that ended: give it a fresh one.
	if err := h.Sessions.Logout(ctx, w, r); err != nil {
		h.Log.WarnContext(ctx, "reset: browser session not cleared", "err", err)
	}
	if mail.CheckAddress(u.Email) == nil {
		err := h.Outbox.Send(ctx, mail.Message{To: u.Email, Kind: "password_changed", Subject: ui.T(lang, "mail.changed.subject"),
			Body: ui.T(lang, "mail.changed.body", u.Name, u.Username, h.Now().UTC().Format("2006-01-02 15:04"),
				h.Issuer+"/reset?"+ui.LocalesParam+"="+lang) + h.signature(lang)})
		if err != nil {
			h.Log.ErrorContext(ctx, "reset: notice not queued", "user_id", u.ID, "err", err)
		}
	}
	h.notice(w, r, http.StatusOK, "reset.title", noticeData{Message: ui.T(lang, "reset.done"), Link: "/login?" + ui.LocalesParam + "=" + lang,
		LinkText: ui.T(lang, "reset.signin")})
}
