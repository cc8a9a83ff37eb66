// Package account serves the pages where people manage their own account
// without an operator: self sign-up (/signup) with email verification
// (/verify, and /verify/resend for a new link from the Security page),
// and password reset by emailed link (/reset).
//
// Every emailed link is single use, short-lived and kept in the store
// only as its SHA-256 hash (storage.AccountToken). Sending links is
// throttled per address and per account, and guessing links per network
// (package ratelimit). Neither sign-up nor reset tells whether an account
// or an address exists: the reset page always answers the same, at once,
// and does its work in the background; sign-up with an address that
// another account has confirmed creates the account as with any other
// address and mails that address a notice instead of a link. Addresses
// are unique once confirmed (storage.GetUserByEmail).
package account

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// Sign-up modes (config signup).
const (
	SignupOff    = "off"
	SignupOpen   = "open"
	SignupInvite = "invite"
)

// Audit event types of this package.
const (
	EventSignup        = "signup"
	EventEmailVerified = "email_verified"
	EventResetAsked    = "password_reset_requested"
	EventPasswordReset = "password_reset"
	EventLinkRefused   = "account_link_refused" // a used, expired or unknown link
)

// Handler serves the account pages.
type Handler struct {
	Store    storage.Storage
	Sessions *session.Manager
	UI       *ui.UI
	Outbox   *mail.Outbox
	Audit    *audit.Log
	// Logouts tells the user's clients that the user was signed out
	// (OpenID Connect Back-Channel Logout) when a reset ends every session.
	Logouts *backchannel.Notifier
	Issuer  string
	Product string
	Log     *slog.Logger
	Now     func() time.Time
	// Password are the argon2id parameters of new hashes.
	Password password.Params
	// Signup is SignupOff, SignupOpen or SignupInvite.
	Signup string
	// LinkTTL is how long an emailed link is valid.
	LinkTTL time.Duration
	// Sends throttles mails per address and per account; Creations
	// throttles sign-ups and reset requests per network; Guesses throttles
	// links that match nothing, per network.
	Sends, Creations, Guesses *ratelimit.Backoff

	wg sync.WaitGroup
}

// Register adds the pages to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /signup", h.signupPage)
	mux.HandleFunc("POST /signup", h.signup)
	mux.HandleFunc("GET /verify", h.verify)
	mux.HandleFunc("POST /verify/resend", h.resendVerification)
	mux.HandleFunc("GET /reset", h.resetPage)
	mux.HandleFunc("POST /reset", h.reset)
	mux.HandleFunc("GET /reset/confirm", h.resetConfirmPage)
	mux.HandleFunc("POST /reset/confirm", h.resetConfirm)
}

// Wait waits for the work started in the background (reset requests)
// until ctx ends. Call it at shutdown, once no request can start more.
func (h *Handler) Wait(ctx context.Context) error {
	done := make(chan struct{})
	go func() { h.wg.Wait(); close(done) }()
	select {
	case <-done:
		return nil
	case <-ctx.Done():
		return ctx.Err()
	}
}

// newLink makes a link secret (160 random bits) and stores its hash as
// the user's one live link of its kind: the store voids the earlier ones
// in the same step, so that only the newest link mailed works, even when
// two are asked for at the same instant.
func (h *Handler) newLink(ctx context.Context, kind, userID, email string) (string, error) {
	secret := token.NewOpaque()
	now := h.Now()
	err := h.Store.ReplaceAccountToken(ctx, storage.AccountToken{Hash: storage.Hash(secret), Kind: kind, UserID: userID,
		Email: storage.NormalEmail(email), CreatedAt: now, ExpiresAt: now.Add(h.LinkTTL)})
	return secret, err
}

// linkURL is the address of a page with a link secret, in lang.
func (h *Handler) linkURL(path, secret, lang string) string {
	return h.Issuer + path + "?" + url.Values{"token": {secret}, ui.LocalesParam: {lang}}.Encode()
}

// mayMail reserves a mail to addr (and to the account userID, when set)
// within the send budgets, and reports whether it may be sent. A refusal
// is silent to the person asking: it would tell that the address exists.
func (h *Handler) mayMail(ctx context.Context, addr, userID string) (bool, error) {
	keys := []string{"mail-to:" + storage.NormalEmail(addr)}
	if userID != "" {
		keys = append(keys, "mail-user:"+userID)
	}
	var taken []*ratelimit.Attempt
	for _, k := range keys {
		a, wait, err := h.Sends.Reserve(ctx, k)
		if err != nil || wait > 0 {
			for _, t := range taken {
				_ = t.Release(ctx)
			}
			return false, err
		}
		taken = append(taken, a)
	}
	for _, a := range taken {
		if _, err := a.Fail(ctx); err != nil { // every mail sent counts
			return false, err
		}
	}
	return true, nil
}

// minutes is the link lifetime for the mails' text.
func (h *Handler) minutes() int { return int(h.LinkTTL / time.Minute) }

// network is the throttling key of the client's network.
func network(r *http.Request) string { return clientip.Network(clientip.Of(r)) }

type noticeData struct {
	Message, Error, Link, LinkText string
}

func (h *Handler) notice(w http.ResponseWriter, r *http.Request, status int, titleKey string, d noticeData) {
	h.UI.Render(w, r, status, "notice", titleKey, ui.Page{Data: d})
}

// fail shows an error page; a store outage is 503 with Retry-After.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	e := oautherr.From(oautherr.Wrap(err))
	if errors.Is(err, storage.ErrUnavailable) || e.Code == oautherr.TemporarilyUnavailable {
		h.Log.WarnContext(r.Context(), "account page: store unavailable", "path", r.URL.Path, "err", err)
		h.UI.Unavailable(w, r, oautherr.RetryAfterUnavailable)
		return
	}
	h.Log.ErrorContext(r.Context(), "account page failed", "path", r.URL.Path, "err", err)
	h.notice(w, r, http.StatusInternalServerError, "error.title", noticeData{Error: e.Description})
}

// parseForm parses a form and checks its CSRF token; on failure it writes
// the error page and returns false.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	switch err := h.Sessions.ReadForm(w, r); {
	case errors.Is(err, session.ErrCSRF):
		h.Audit.Record(r.Context(), audit.Event{Type: audit.CSRFRejected, Detail: "path=" + r.URL.Path})
		h.notice(w, r, http.StatusForbidden, "error.title", noticeData{Error: ui.T(ui.Lang(nil, r), "csrf.failed")})
		return false
	case err != nil:
		h.notice(w, r, http.StatusBadRequest, "error.title", noticeData{Error: err.Error()})
		return false
	}
	return true
}

// endEverywhere ends every session and every refresh chain of the user,
// and tells the user's clients by back-channel logout, as the admin's
// password change and "Sign out everywhere" do.
func (h *Handler) endEverywhere(ctx context.Context, userID string) (sessions, grants int64, err error) {
	clients := h.Logouts.Clients(ctx, userID)
	if sessions, err = h.Store.DeleteUserSessions(ctx, userID); err != nil {
		return 0, 0, err
	}
	if grants, err = h.Store.RevokeUserGrants(ctx, userID, h.Now()); err != nil {
		return sessions, 0, err
	}
	h.Logouts.Notify(userID, clients)
	return sessions, grants, nil
}
