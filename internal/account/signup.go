package account

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"unicode"
	"unicode/utf8"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

type signupData struct {
	Req, Invite, ClientName, Name, Email, Username, Error string
}

// ValidUsername reports whether name may be chosen at sign-up: 3 to 64
// ASCII letters, digits, dots, dashes and underscores. No "@", so that a
// reset request names an address or a username without doubt.
func ValidUsername(name string) bool {
	if len(name) < 3 || len(name) > 64 {
		return false
	}
	for _, c := range name {
		if !(c >= 'a' && c <= 'z' || c >= 'A' && c <= 'Z' || c >= '0' && c <= '9' || c == '.' || c == '_' || c == '-') {
			return false
		}
	}
	return true
}

// ValidName reports whether a display name may be stored: 1 to 100
// characters, none a control character (a line break in a name must not
// reach a mail header or a log line).
func ValidName(name string) bool {
	n := utf8.RuneCountInString(name)
	return n >= 1 && n <= 100 && utf8.ValidString(name) && strings.IndexFunc(name, unicode.IsControl) < 0
}

// clientName names the client of a pending authorization request, or
// returns "" when there is none (or it ended).
func (h *Handler) clientName(ctx context.Context, reqID string) string {
	if reqID == "" || !storage.ValidText(reqID) {
		return ""
	}
	req, err := h.Store.GetAuthRequest(ctx, reqID)
	if err != nil || !h.Now().Before(req.ExpiresAt) {
		return ""
	}
	c, err := h.Store.GetClient(ctx, req.ClientID)
	if err != nil {
		return ""
	}
	return c.Name
}

// allowed reports whether sign-up is open to this request: open, or by
// invitation with a live invitation.
func (h *Handler) allowed(ctx context.Context, invite string) (bool, error) {
	switch h.Signup {
	case SignupOpen:
		return true, nil
	case SignupInvite:
		if invite == "" || !storage.ValidText(invite) {
			return false, nil
		}
		_, err := h.Store.GetAccountToken(ctx, storage.Hash(invite), storage.TokenInvite, h.Now())
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyUsed) {
			return false, nil
		}
		return err == nil, err
	}
	return false, nil
}

func (h *Handler) refuseSignup(w http.ResponseWriter, r *http.Request) {
	lang := ui.Lang(nil, r)
	if h.Signup == SignupOff {
		http.NotFound(w, r)
		return
	}
	key := "signup.off"
	if r.FormValue("invite") != "" {
		key = "signup.invite.invalid"
	}
	h.notice(w, r, http.StatusForbidden, "signup.title", noticeData{Error: ui.T(lang, key)})
}

func (h *Handler) signupPage(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	q := r.URL.Query()
	ok, err := h.allowed(ctx, q.Get("invite"))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		h.refuseSignup(w, r)
		return
	}
	d := signupData{Req: q.Get("req"), Invite: q.Get("invite")}
	d.ClientName = h.clientName(ctx, d.Req)
	h.renderSignup(w, r, http.StatusOK, d)
}

func (h *Handler) renderSignup(w http.ResponseWriter, r *http.Request, status int, d signupData) {
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, status, "signup", "signup.title", ui.Page{CSRF: csrf, Data: d})
}

// signup creates an account, signs the person in, and mails a link to
// confirm the address; from an authorization request it goes on to the
// consent. The account's address is unconfirmed (email_verified false)
// until the link is followed. An address another account confirmed gets
// a notice instead of a link, and the answer here is the same, so that
// sign-up tells no one which addresses have accounts.
func (h *Handler) signup(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	f := r.PostForm
	d := signupData{Req: f.Get("req"), Invite: f.Get("invite"), Name: strings.TrimSpace(f.Get("name")),
		Email: strings.TrimSpace(f.Get("email")), Username: strings.TrimSpace(f.Get("username"))}
	ok, err := h.allowed(ctx, d.Invite)
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if !ok {
		h.refuseSignup(w, r)
		return
	}
	d.ClientName = h.clientName(ctx, d.Req)
	lang := ui.Lang(nil, r)
	pw := f.Get("password")
	if d.Error = checkSignup(d, pw, lang); d.Error != "" {
		h.renderSignup(w, r, http.StatusBadRequest, d)
		return
	}
	// Accounts made from one network are throttled, against mass sign-up.
	try, wait, err := h.Creations.Reserve(ctx, "signup-ip:"+network(r))
	if err != nil {
		h.fail(w, r, err)
		return
	}
	if wait > 0 {
		secs := ratelimit.RetrySeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		d.Error = ui.T(lang, "signup.throttled", secs)
		h.renderSignup(w, r, http.StatusTooManyRequests, d)
		return
	}
	defer try.Release(ctx)
	u, err := h.createAccount(ctx, d, pw)
	switch {
	case errors.Is(err, errInviteSpent):
		h.refuseSignup(w, r)
		return
	case errors.Is(err, errUsernameTaken):
		d.Error = ui.T(lang, "signup.taken")
		h.renderSignup(w, r, http.StatusBadRequest, d)
		return
	case err != nil:
		h.fail(w, r, err)
		return
	}
	if _, err := try.Fail(ctx); err != nil { // every account made counts
		h.Log.WarnContext(ctx, "sign-up: count creation", "err", err)
	}
	h.welcome(w, r, u, d, lang)
}

// checkSignup returns why the form cannot make an account, in lang, or "".
func checkSignup(d signupData, pw, lang string) string {
	switch {
	case !ValidName(d.Name):
		return ui.T(lang, "signup.bad.name")
	case mail.CheckAddress(d.Email) != nil:
		return ui.T(lang, "signup.bad.email")
	case !ValidUsername(d.Username):
		return ui.T(lang, "signup.bad.username")
	}
	if err := password.Check(pw, d.Username); err != nil {
		return err.Error()
	}
	return ""
}

var (
	errInviteSpent   = errors.New("the invitation is unknown or used")
	errUsernameTaken = errors.New("the username is taken")
)

// createAccount stores the account the form describes, its address not yet
// confirmed. With invitations, the invitation is spent before the account
// exists: of two sign-ups with one invitation, one wins.
func (h *Handler) createAccount(ctx context.Context, d signupData, pw string) (storage.User, error) {
	// Taken also when another account's name differs only in case or
	// width (storage.UsernameKey): checked before an invitation is spent.
	if taken, err := h.Store.UsernameTaken(ctx, d.Username); err != nil {
		return storage.User{}, err
	} else if taken {
		return storage.User{}, errUsernameTaken
	}
	if h.Signup == SignupInvite {
		_, err := h.Store.ConsumeAccountToken(ctx, storage.Hash(d.Invite), storage.TokenInvite, h.Now())
		if errors.Is(err, storage.ErrNotFound) || errors.Is(err, storage.ErrAlreadyUsed) {
			return storage.User{}, errInviteSpent
		} else if err != nil {
			return storage.User{}, err
		}
	}
	hash, err := password.Hash(pw, h.Password)
	if err != nil {
		return storage.User{}, err
	}
	now := h.Now()
	u := storage.User{ID: token.NewID(), Username: d.Username, PasswordHash: hash, Name: d.Name, Email: d.Email, CreatedAt: now}
	u.Profile.UpdatedAt = now
	if err := h.Store.CreateUser(ctx, u); errors.Is(err, storage.ErrAlreadyExists) {
		return storage.User{}, errUsernameTaken // taken a moment ago
	} else if err != nil {
		return storage.User{}, err
	}
	return u, nil
}

// welcome audits the new account u, mails the confirmation link, signs the
// person in and sends them on: to the consent of the authorization request
// they came from, or to their account.
func (h *Handler) welcome(w http.ResponseWriter, r *http.Request, u storage.User, d signupData, lang string) {
	ctx := r.Context()
	h.Audit.Record(ctx, audit.Event{Type: EventSignup, UserID: u.ID, Detail: "mode=" + h.Signup})
	if err := h.mailConfirmation(ctx, u, lang); err != nil {
		// The account exists; the person can ask for a link again.
		h.Log.ErrorContext(ctx, "sign-up: confirmation mail not queued", "user_id", u.ID, "err", err)
	}
	if _, err := h.Sessions.Login(ctx, w, r, u.ID); err != nil {
		h.fail(w, r, err)
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.Login, UserID: u.ID, Detail: "method=signup"})
	next := "/account"
	if d.Req != "" && d.ClientName != "" {
		next = "/consent?req=" + url.QueryEscape(d.Req)
	}
	http.Redirect(w, r, next+sep(next)+ui.LocalesParam+"="+lang, http.StatusSeeOther)
}

func sep(path string) string {
	if strings.Contains(path, "?") {
		return "&"
	}
	return "?"
}

// mailConfirmation mails u's address a link to confirm it, voiding the
// links mailed before; or, when another account confirmed that address, a
// notice that says so and how to sign in, since that account is its
// owner's. Over the send budget it mails nothing, silently.
func (h *Handler) mailConfirmation(ctx context.Context, u storage.User, lang string) error {
	ok, err := h.mayMail(ctx, u.Email, u.ID)
	if err != nil || !ok {
		return err
	}
	return h.sendConfirmation(ctx, u, lang)
}

// ResendVerification mails u's unconfirmed address a new link to confirm
// it (an operator's request), in the language of u's profile, within the
// budgets of mails to one address and one account that sign-up and reset
// share; false when they are spent.
func (h *Handler) ResendVerification(ctx context.Context, u storage.User) (bool, error) {
	ok, err := h.mayMail(ctx, u.Email, u.ID)
	if err != nil || !ok {
		return false, err
	}
	lang := "en"
	if strings.HasPrefix(strings.ToLower(u.Profile.Locale), "ar") {
		lang = "ar"
	}
	return true, h.sendConfirmation(ctx, u, lang)
}

// sendConfirmation mails the link or the notice of mailConfirmation.
func (h *Handler) sendConfirmation(ctx context.Context, u storage.User, lang string) error {
	owner, err := h.Store.GetUserByEmail(ctx, u.Email)
	switch {
	case err == nil && owner.ID != u.ID:
		return h.Outbox.Send(ctx, mail.Message{To: u.Email, Kind: "signup_exists", Subject: ui.T(lang, "mail.exists.subject"),
			Body: ui.T(lang, "mail.exists.body", h.Issuer+"/reset?"+ui.LocalesParam+"="+lang) + h.signature(lang)})
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return err
	}
	// Only the newest link works: one asked for again voids those before
	// (newLink).
	secret, err := h.newLink(ctx, storage.TokenVerifyEmail, u.ID, u.Email)
	if err != nil {
		return err
	}
	return h.Outbox.Send(ctx, mail.Message{To: u.Email, Kind: "verify", Subject: ui.T(lang, "mail.verify.subject"),
		Body: ui.T(lang, "mail.verify.body", u.Name, h.minutes(), h.linkURL("/verify", secret, lang)) + h.signature(lang)})
}

func (h *Handler) signature(lang string) string {
	return "\n" + ui.T(lang, "mail.signature", h.Product) + "\n"
}

// verify confirms an address with its emailed link: single use, and only
// while the account still has that address; addresses are unique once
// confirmed.
func (h *Handler) verify(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	lang := ui.Lang(nil, r)
	t, ok := h.useLink(w, r, r.URL.Query().Get("token"), storage.TokenVerifyEmail, "verify.title", "verify.invalid")
	if !ok {
		return
	}
	u, err := h.Store.GetUser(ctx, t.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		h.notice(w, r, http.StatusBadRequest, "verify.title", noticeData{Error: ui.T(lang, "verify.invalid")})
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	if storage.NormalEmail(u.Email) != t.Email {
		h.notice(w, r, http.StatusBadRequest, "verify.title", noticeData{Error: ui.T(lang, "verify.changed")})
		return
	}
	u.EmailVerified = true
	u.Profile.UpdatedAt = h.Now()
	if err := h.Store.UpdateUser(ctx, *u); errors.Is(err, storage.ErrAlreadyExists) {
		h.notice(w, r, http.StatusConflict, "verify.title", noticeData{Error: ui.T(lang, "verify.taken")})
		return
	} else if err != nil {
		h.fail(w, r, err)
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: EventEmailVerified, UserID: u.ID})
	h.notice(w, r, http.StatusOK, "verify.title", noticeData{Message: ui.T(lang, "verify.done"), Link: "/account?" + ui.LocalesParam + "=" + lang,
		LinkText: ui.T(lang, "verify.continue")})
}

// useLink spends an emailed link of kind. A link that matches nothing
// counts as a guess against the client's network; a used or expired one
// is refused like an unknown one. On refusal it writes the page.
func (h *Handler) useLink(w http.ResponseWriter, r *http.Request, secret, kind, titleKey, invalidKey string) (*storage.AccountToken, bool) {
	ctx := r.Context()
	try, ok := h.reserveGuess(w, r, titleKey)
	if !ok {
		return nil, false
	}
	defer try.Release(ctx)
	var t *storage.AccountToken
	err := storage.ErrNotFound
	if secret != "" && storage.ValidText(secret) {
		t, err = h.Store.ConsumeAccountToken(ctx, storage.Hash(secret), kind, h.Now())
	}
	return h.linkResult(w, r, try, t, err, kind, titleKey, invalidKey)
}

// reserveGuess counts a link lookup against the client's network before
// it is made; throttled, it writes the page.
func (h *Handler) reserveGuess(w http.ResponseWriter, r *http.Request, titleKey string) (*ratelimit.Attempt, bool) {
	try, wait, err := h.Guesses.Reserve(r.Context(), "link-ip:"+network(r))
	if err != nil {
		h.fail(w, r, err)
		return nil, false
	}
	if wait > 0 {
		secs := ratelimit.RetrySeconds(wait)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.notice(w, r, http.StatusTooManyRequests, titleKey, noticeData{Error: ui.T(ui.Lang(nil, r), "reset.throttled", secs)})
		return nil, false
	}
	return try, true
}

// linkResult settles a link lookup: unknown links count as guesses.
func (h *Handler) linkResult(w http.ResponseWriter, r *http.Request, try *ratelimit.Attempt, t *storage.AccountToken, err error,
	kind, titleKey, invalidKey string) (*storage.AccountToken, bool) {
	ctx := r.Context()
	switch {
	case err == nil:
		return t, true
	case errors.Is(err, storage.ErrNotFound), errors.Is(err, storage.ErrAlreadyUsed):
		if errors.Is(err, storage.ErrNotFound) {
			_, _ = try.Fail(ctx)
		}
		ev := audit.Event{Type: EventLinkRefused, Detail: "kind=" + kind}
		if t != nil {
			ev.UserID, ev.Detail = t.UserID, ev.Detail+"; used before"
		}
		h.Audit.Record(ctx, ev)
		h.notice(w, r, http.StatusBadRequest, titleKey, noticeData{Error: ui.T(ui.Lang(nil, r), invalidKey)})
	default:
		h.fail(w, r, err)
	}
	return nil, false
}
