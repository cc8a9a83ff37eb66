package security

import (
	"errors"
	"html/template"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// pageData is what the Security page shows.
type pageData struct {
	// Notice and Error are catalog keys (with Args) of the outcome of
	// the last change.
	Notice, Error string
	Args          []any
	// ErrorText is Error in the page's language, with Args.
	ErrorText  string
	TOTPActive bool
	// Enrolment is a TOTP secret waiting for its first code; QR is its
	// QR code, a PNG data URI made here (html/template refuses data URIs
	// it did not see made).
	Enrolment *factors.Enrolment
	QR        template.URL
	// Codes are new recovery codes, shown this once.
	Codes     []string
	CodesLeft int
	Passkeys  []passkeyView
	Sessions  []sessionView
	Events    []eventView
	// Passkeys says whether passkeys are offered.
	PasskeysOn bool
	// Unconfirmed is the account's address while it is not confirmed:
	// the page offers to mail a new link.
	Unconfirmed string
	// Links are the upstream identities linked to the account; LinksOn
	// says whether upstreams are configured.
	Links   []linkView
	LinksOn bool
	// NoPassword says the account has none (made just in time by an
	// upstream): the page offers to set one, after a sign-in within
	// Minutes (Fresh).
	NoPassword, Fresh bool
	Minutes           int
}

// passkeyView is a passkey of the account; Last says it is the only way
// to sign in left, which the page offers no button to remove.
type passkeyView struct {
	ID, Name, Created, LastUsed string
	Last                        bool
}

type sessionView struct {
	IDHash, Created, Expires string
	Current                  bool
}

type eventView struct{ When, Type, Detail string }

// date writes t isolated left to right, so that an Arabic page keeps its
// parts in order.
func date(t interface{ Format(string) string }) string {
	return "\u2066" + t.Format("2006-01-02 15:04") + "\u2069"
}

func (h *Handler) page(w http.ResponseWriter, r *http.Request) {
	sess, u := h.user(w, r)
	if u == nil {
		return
	}
	d := pageData{Notice: r.URL.Query().Get("done")}
	if !knownNotice[d.Notice] {
		d.Notice = ""
	}
	h.render(w, r, http.StatusOK, sess, u, d)
}

// knownNotice are the notices a redirect may name in ?done=.
var knownNotice = map[string]bool{
	"security.password.changed": true, "security.password.set": true, "security.totp.on": true, "security.totp.off": true,
	"security.session.ended": true, "security.passkey.added": true, "security.passkey.removed": true, "security.passkey.renamed": true,
	"security.verify.sent":       true,
	"security.upstream.unlinked": true,
}

// render fills in what the page always shows and writes it.
func (h *Handler) render(w http.ResponseWriter, r *http.Request, status int, sess *storage.Session, u *storage.User, d pageData) {
	ctx := r.Context()
	if u.Email != "" && !u.EmailVerified {
		d.Unconfirmed = u.Email
	}
	d.NoPassword, d.Fresh, d.Minutes = u.PasswordHash == "", h.fresh(sess), int(FreshSignIn/time.Minute)
	var err error
	if d.TOTPActive, err = h.TOTP.Active(ctx, u.ID); err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if d.CodesLeft, err = h.Recovery.Remaining(ctx, u.ID); err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	sessions, err := h.Store.ListUserSessions(ctx, u.ID)
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	now := h.Now()
	for _, s := range sessions {
		if now.Before(s.ExpiresAt) {
			d.Sessions = append(d.Sessions, sessionView{IDHash: s.IDHash, Created: date(s.CreatedAt), Expires: date(s.ExpiresAt), Current: s.IDHash == sess.IDHash})
		}
	}
	events, err := h.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: u.ID, Limit: 20})
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	for _, e := range events {
		d.Events = append(d.Events, eventView{When: date(e.Time), Type: e.Type, Detail: e.Detail})
	}
	if err := errors.Join(h.passkeys(r, u, &d), h.linkedAccounts(r, u, &d), h.lastWayIn(r, u, &d)); err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if d.Error != "" {
		d.ErrorText = ui.T(ui.Lang(nil, r), d.Error, d.Args...)
	}
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, status, "security", "security.title", ui.Page{CSRF: csrf, User: u.Name, Data: d})
}

// done sends the browser back to the page with a notice (303 after a POST:
// a form with a password in it is never re-posted, RFC 9700 §4.12).
func done(w http.ResponseWriter, r *http.Request, notice string) {
	http.Redirect(w, r, "/account/security?done="+url.QueryEscape(notice)+"&"+ui.LocalesParam+"="+ui.Lang(nil, r), http.StatusSeeOther)
}

// refused shows the page again with what was wrong: 401 for a wrong
// password or code, 429 with Retry-After while throttled.
func (h *Handler) refused(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User, err error, d pageData) {
	var re *errReauth
	var te *factors.ThrottledError
	status := http.StatusUnauthorized
	switch {
	case errors.As(err, &re):
		d.Error, d.Args = re.key, re.args
		if re.key == "security.throttled" {
			status = http.StatusTooManyRequests
			w.Header().Set("Retry-After", strconv.Itoa(re.args[0].(int)))
		}
	case errors.As(err, &te):
		secs := ratelimit.RetrySeconds(te.Wait)
		d.Error, d.Args, status = "security.throttled", []any{secs}, http.StatusTooManyRequests
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.Audit.Record(r.Context(), audit.Event{Type: audit.FactorThrottled, UserID: u.ID, Detail: "security page"})
	case errors.Is(err, factors.ErrReplayed):
		d.Error = "security.code.used"
		h.Audit.Record(r.Context(), audit.Event{Type: audit.FactorReplay, UserID: u.ID, Detail: "security page"})
	case errors.Is(err, factors.ErrInvalidCode):
		d.Error = "security.code.wrong"
		h.Audit.Record(r.Context(), audit.Event{Type: audit.FactorFailed, UserID: u.ID, Detail: "security page"})
	default:
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.render(w, r, status, sess, u, d)
}

func (h *Handler) changePassword(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	if u.PasswordHash == "" {
		h.setFirstPassword(w, r, sess, u)
		return
	}
	if err := h.reauth(r.Context(), u, r.PostForm.Get("current")); err != nil {
		h.refused(w, r, sess, u, err, pageData{})
		return
	}
	ctx := r.Context()
	hash, ok := h.newPassword(w, r, sess, u)
	if !ok {
		return
	}
	if err := h.Store.UpdateUserPassword(ctx, u.ID, hash); err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	// A reset link mailed before would set the password again: whoever
	// asked for it (a mailbox read by someone else) keeps no way in.
	if err := h.Store.DeleteAccountTokens(ctx, u.ID, storage.TokenResetPassword); err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	// Whoever knew the old password may hold a session: every session
	// ends, and this browser gets a fresh one.
	n, err := h.Store.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if h.Logouts != nil {
		h.Logouts.LoggedOut(ctx, u.ID)
	}
	if _, err := h.Sessions.Login(ctx, w, r, u.ID); err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.event(ctx, u.ID, audit.PasswordChanged, "sessions ended: "+strconv.FormatInt(n, 10))
	done(w, r, "security.password.changed")
}

// newPassword checks the form's new password (typed twice, strong
// enough) and returns its hash; else it has written the page saying why.
func (h *Handler) newPassword(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) (string, bool) {
	next := r.PostForm.Get("new")
	if next != r.PostForm.Get("confirm") {
		h.render(w, r, http.StatusBadRequest, sess, u, pageData{Error: "security.password.mismatch"})
		return "", false
	}
	if err := password.Check(next, u.Username); err != nil {
		h.render(w, r, http.StatusBadRequest, sess, u, pageData{Error: "security.password.weak", Args: []any{err.Error()}})
		return "", false
	}
	hash, err := password.Hash(next, h.Password)
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return "", false
	}
	return hash, true
}

// setFirstPassword gives an account without a password (made just in time
// by an upstream sign-in) its first one. With no password to ask, a
// sign-in made within FreshSignIn is the proof that the person is at the
// keyboard, as for deleting the account; of two concurrent requests only
// the first sets it (storage.SetFirstPassword).
func (h *Handler) setFirstPassword(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) {
	if !h.fresh(sess) {
		h.render(w, r, http.StatusForbidden, sess, u, pageData{Error: "security.password.stale", Args: []any{int(FreshSignIn / time.Minute)}})
		return
	}
	hash, ok := h.newPassword(w, r, sess, u)
	if !ok {
		return
	}
	ctx := r.Context()
	switch err := h.Store.SetFirstPassword(ctx, u.ID, hash); {
	case errors.Is(err, storage.ErrAlreadyExists):
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.password.exists"})
		return
	case err != nil:
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.event(ctx, u.ID, audit.PasswordChanged, "first password set")
	done(w, r, "security.password.set")
}

// totp starts an enrolment, confirms it, or turns TOTP off (action).
func (h *Handler) totp(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	switch action := r.PostForm.Get("action"); {
	case (action == "start" || action == "disable") && !h.manages(w, r, sess, u):
	case action == "start":
		h.totpStart(w, r, sess, u)
	case action == "confirm":
		h.totpConfirm(w, r, sess, u)
	case action == "disable":
		h.totpDisable(w, r, sess, u)
	default:
		h.fail(w, r, oautherr.New(oautherr.InvalidRequest, "action must be start, confirm or disable"))
	}
}

// totpStart shows a new secret as a QR code and a key.
func (h *Handler) totpStart(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) {
	e, err := h.TOTP.Enrol(r.Context(), u)
	if errors.Is(err, storage.ErrAlreadyExists) {
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.totp.already"})
		return
	} else if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.render(w, r, http.StatusOK, sess, u, pageData{Enrolment: e, QR: template.URL(e.QR)})
}

// totpConfirm turns TOTP on with its first code; the first second factor
// comes with recovery codes, shown once.
func (h *Handler) totpConfirm(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) {
	ctx := r.Context()
	err := h.TOTP.Confirm(ctx, u.ID, r.PostForm.Get("code"))
	switch {
	case errors.Is(err, factors.ErrNotEnrolled):
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.totp.restart"})
		return
	case errors.Is(err, storage.ErrAlreadyExists):
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.totp.already"})
		return
	case err != nil:
		// The secret is not shown again: the person starts over.
		h.refused(w, r, sess, u, err, pageData{})
		return
	}
	h.event(ctx, u.ID, audit.TOTPEnabled, "")
	d := pageData{Notice: "security.totp.on"}
	n, err := h.Recovery.Remaining(ctx, u.ID)
	if err == nil && n == 0 {
		d.Codes, err = h.Recovery.Generate(ctx, u.ID)
		h.event(ctx, u.ID, audit.RecoveryCodesNew, "with TOTP")
	}
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.render(w, r, http.StatusOK, sess, u, d)
}

// totpDisable turns TOTP off, after the password.
func (h *Handler) totpDisable(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) {
	ctx := r.Context()
	if err := h.reauth(ctx, u, r.PostForm.Get("current")); err != nil {
		h.refused(w, r, sess, u, err, pageData{})
		return
	}
	if err := h.TOTP.Disable(ctx, u.ID); err != nil && !errors.Is(err, factors.ErrNotEnrolled) {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.event(ctx, u.ID, audit.TOTPDisabled, "")
	done(w, r, "security.totp.off")
}

// regenerate replaces the recovery codes, after the password, and shows
// the new ones once.
func (h *Handler) regenerate(w http.ResponseWriter, r *http.Request) {
	sess, u, ok := h.withPassword(w, r)
	if !ok || !h.manages(w, r, sess, u) {
		return
	}
	ctx := r.Context()
	codes, err := h.Recovery.Generate(ctx, u.ID)
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.event(ctx, u.ID, audit.RecoveryCodesNew, "")
	h.render(w, r, http.StatusOK, sess, u, pageData{Codes: codes, Notice: "security.recovery.new"})
}

// endSession signs out one of the user's sessions (another device).
func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	_, u := h.posted(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	id := r.PostForm.Get("session")
	s, err := (*storage.Session)(nil), storage.ErrNotFound
	if storage.ValidText(id) && len(id) <= 128 {
		s, err = h.Store.GetSession(ctx, id)
	}
	// Another user's session is as unknown as one that does not exist.
	if errors.Is(err, storage.ErrNotFound) || err == nil && s.UserID != u.ID {
		done(w, r, "security.session.ended")
		return
	} else if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if err := h.Store.DeleteSession(ctx, id); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.event(ctx, u.ID, audit.SessionEnded, "")
	done(w, r, "security.session.ended")
}

// withPassword starts every change that needs the current password: the
// form parsed, the signed-in user, and the password asked again (so that a
// session left open is not enough). ok is false when it answered already.
func (h *Handler) withPassword(w http.ResponseWriter, r *http.Request) (sess *storage.Session, u *storage.User, ok bool) {
	if sess, u = h.posted(w, r); u == nil {
		return nil, nil, false
	}
	if err := h.reauth(r.Context(), u, r.PostForm.Get("current")); err != nil {
		h.refused(w, r, sess, u, err, pageData{})
		return nil, nil, false
	}
	return sess, u, true
}
