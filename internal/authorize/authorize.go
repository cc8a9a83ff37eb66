// Package authorize implements the authorization endpoint (RFC 6749 §3.1,
// §4.1.1) with OpenID Connect's prompt and max_age, and the pages a person
// sees on the way: login, consent, and "Connected apps" where access is
// taken back.
//
// Errors found before the redirect URI is known to belong to the client are
// shown on an error page and never redirected (RFC 6749 §4.1.2.1); later
// errors go back to the client with state and iss (RFC 9207).
//
// Request validation is in validate.go, one function per concern. The
// Handler registers, and lends its pages to, the parts that live in
// packages of their own: sign-in steps (package signin), request objects
// (RFC 9101, package jar), pushed requests (RFC 9126, package par),
// sign-out and RP-initiated logout (package logout), and the device
// flow's user page (RFC 8628 §3.3, package device).
package authorize

import (
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/redirecturi"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// Handler serves /authorize and the interactive pages.
type Handler struct {
	Store    storage.Storage
	Sessions *session.Manager
	UI       *ui.UI
	Scopes   *scope.Catalog
	Issuer   string
	Log      *slog.Logger
	Now      func() time.Time
	// CodeTTL is the lifetime of an authorization code; RFC 6749 §4.1.2
	// recommends at most 10 minutes, bawwab defaults to one.
	CodeTTL time.Duration
	// RequestTTL is how long a user may take to log in and consent.
	RequestTTL time.Duration
	// UserFailures and IPFailures throttle failed logins per account and
	// per client IP. A success resets the account's counter only: one good
	// password must not clear an address that guesses many accounts.
	UserFailures, IPFailures *ratelimit.Backoff
	// Auth authenticates clients at /par.
	Auth *clientauth.Authenticator
	// IDTokens reads id_token_hint at /end_session.
	IDTokens *token.Issuer
	// Logouts tells the user's clients when the user signs out.
	Logouts *backchannel.Notifier
	// Audiences are the resources a request may name (RFC 8707).
	Audiences []string
	Audit     *audit.Log
	Password  password.Params
	// Leeway is the clock skew forgiven in a request object's exp, nbf
	// and iat; zero means token.DefaultLeeway.
	Leeway time.Duration
	// DPoP checks the DPoP proofs of pushed requests (RFC 9449 §10.1).
	DPoP *dpop.Checker
	// SignIn drives /login (package signin). Nil means a password alone,
	// throttled by UserFailures and IPFailures.
	SignIn *signin.Pipeline
}

// Register adds the endpoint and pages to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /authorize", h.authorize)
	mux.HandleFunc("POST /authorize", h.authorize)
	mux.HandleFunc("GET /login", h.loginPage)
	mux.HandleFunc("POST /login", h.login)
	mux.HandleFunc("GET /upstream/{id}/callback", h.upstreamReturn)
	mux.HandleFunc("GET /consent", h.consentPage)
	mux.HandleFunc("POST /consent", h.consent)
	mux.HandleFunc("GET /account", h.account)
	mux.HandleFunc("POST /account/revoke", h.revokeApp)
	mux.HandleFunc("GET /account/profile", h.profilePage)
	mux.HandleFunc("POST /account/profile", h.saveProfile)
	h.pushedRequests().Register(mux)
	h.signOut().Register(mux)
	h.devicePage().Register(mux)
	mux.HandleFunc("GET /{$}", func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, "/account", http.StatusFound)
	})
}

// redirectError is an authorization error sent to the client's redirect URI.
type redirectError struct {
	err                *oautherr.Error
	redirectURI, state string
}

func (e *redirectError) Error() string { return e.err.Error() }

const maxParamLen = 2048

// params returns the authorization request parameters: the query of a GET,
// the form of a POST (OpenID Connect Core §3.1.2.1). A repeated parameter is
// an error (RFC 6749 §3.1).
func params(r *http.Request) (url.Values, error) {
	var v url.Values
	if r.Method == http.MethodPost {
		r.Body = http.MaxBytesReader(nil, r.Body, token.MaxFormBytes)
		if err := r.ParseForm(); err != nil {
			return nil, oautherr.New(oautherr.InvalidRequest, "the request body is not a valid form")
		}
		v = r.PostForm
	} else {
		var err error
		if v, err = url.ParseQuery(r.URL.RawQuery); err != nil {
			return nil, oautherr.New(oautherr.InvalidRequest, "the query string is malformed")
		}
	}
	for k, vals := range v {
		if len(vals) > 1 && k != "resource" { // RFC 8707 §2 lets resource repeat
			return nil, oautherr.Newf(oautherr.InvalidRequest, "parameter %s appears more than once", oautherr.Clip(k))
		}
		if len(vals[0]) > maxParamLen {
			return nil, oautherr.Newf(oautherr.InvalidRequest, "parameter %s is too long", oautherr.Clip(k))
		}
	}
	return v, nil
}

func reqLocales(req *storage.AuthRequest) string {
	if req == nil {
		return ""
	}
	return req.UILocales
}

func hasPrompt(prompt, p string) bool { return slices.Contains(strings.Fields(prompt), p) }

func (h *Handler) authorize(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	v, err := params(r)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	var req *storage.AuthRequest
	var client *storage.Client
	if v.Has("request") {
		v, err = h.requestObject(ctx, v)
		if err != nil {
			h.fail(w, r, err)
			return
		}
	}
	if l := ui.FromLocales(v.Get(ui.LocalesParam)); l != "" { // signed or plain, the request's wish comes first
		r = r.WithContext(ui.WithLang(ctx, l))
	}
	if v.Has("request_uri") {
		req, client, err = h.fromPushed(ctx, v)
		if l := ui.FromLocales(reqLocales(req)); l != "" {
			r = r.WithContext(ui.WithLang(ctx, l))
		}
	} else {
		req, client, err = h.validate(ctx, v, false)
	}
	if err != nil {
		h.fail(w, r, err)
		return
	}
	h.proceed(w, r, req, client, false)
}

// proceed decides, for a valid request, whether the user must log in or
// consent, and otherwise issues the code. stored tells whether req is
// already in the store (we are on the consent page).
func (h *Handler) proceed(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, client *storage.Client, stored bool) {
	ctx := r.Context()
	redirectErr := func(code, desc string) {
		h.fail(w, r, &redirectError{err: oautherr.New(code, desc), redirectURI: req.RedirectURI, state: req.State})
	}
	sess, err := h.Sessions.Current(ctx, r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		h.storeFailed(w, r, req, err)
		return
	}
	if !h.signedIn(w, r, req, client, sess, stored) {
		return
	}
	items := token.ConsentItems(h.Scopes, client, req.Scopes, req.Claims)
	needConsent := hasPrompt(req.Prompt, "consent")
	if !needConsent {
		c, err := h.Store.GetConsent(ctx, sess.UserID, client.ID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			needConsent = true
		case err != nil:
			h.storeFailed(w, r, req, err)
			return
		default:
			needConsent = !scope.Subset(items, c.Scopes)
		}
	}
	if needConsent {
		if hasPrompt(req.Prompt, "none") {
			redirectErr(oautherr.ConsentRequired, "the user has not granted these scopes yet")
			return
		}
		if !stored {
			h.continueAt(w, r, req, false, "/consent")
			return
		}
		h.renderConsent(w, r, req, client, sess)
		return
	}
	h.finish(w, r, req, sess, items)
}

// continueAt stores req if needed and sends the browser to path?req=ID,
// in the language this request speaks.
func (h *Handler) continueAt(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, stored bool, path string) {
	if !stored {
		if err := h.Store.CreateAuthRequest(r.Context(), *req); err != nil {
			h.storeFailed(w, r, req, err)
			return
		}
	}
	redirect(w, r, withLang(r, path+"?req="+url.QueryEscape(req.ID)))
}

// withLang adds the language of r to a path on bawwab as ui_locales, so
// that the next page speaks it whatever cookies the browser keeps.
func withLang(r *http.Request, path string) string {
	sep := "?"
	if strings.Contains(path, "?") {
		sep = "&"
	}
	return path + sep + ui.LocalesParam + "=" + ui.Lang(nil, r)
}

// finish issues an authorization code for the granted consent items
// (scopes, and claims asked for one by one) and sends the browser back to
// the client (RFC 6749 §4.1.2, RFC 9207 §2).
func (h *Handler) finish(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, sess *storage.Session, items []string) {
	granted, released := token.SplitGranted(h.Scopes, items, req.Claims)
	if device.IsRequest(req) {
		h.devicePage().Decide(w, r, req, sess, true, granted)
		return
	}
	ctx := r.Context()
	code := token.NewOpaque()
	now := h.Now()
	err := h.Store.CreateAuthCode(ctx, storage.AuthCode{
		Hash: storage.Hash(code), GrantID: token.NewID(), ClientID: req.ClientID, UserID: sess.UserID, RedirectURI: req.RedirectURI,
		Scopes: granted, Nonce: req.Nonce, CodeChallenge: req.CodeChallenge, CodeChallengeMethod: req.CodeChallengeMethod,
		DPoPJKT: req.DPoPJKT, Resources: req.Resources, Claims: released, AMR: sess.AMR,
		AuthTime: sess.AuthTime, CreatedAt: now, ExpiresAt: now.Add(h.CodeTTL),
	})
	if err != nil {
		h.storeFailed(w, r, req, err)
		return
	}
	if err := h.Store.DeleteAuthRequest(ctx, req.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.Log.WarnContext(ctx, "could not delete finished auth request", "err", err)
	}
	h.Log.InfoContext(ctx, "authorization code issued", "client_id", req.ClientID, "user_id", sess.UserID, "scope", scope.Join(granted))
	q := url.Values{"code": {code}, "state": {req.State}, "iss": {h.Issuer}}
	redirect(w, r, redirecturi.WithQuery(req.RedirectURI, q))
}

// fail shows err, or redirects it to the client when it is a redirectError.
func (h *Handler) fail(w http.ResponseWriter, r *http.Request, err error) {
	var re *redirectError
	if !errors.As(err, &re) {
		h.errorPage(w, r, err)
		return
	}
	h.Log.InfoContext(r.Context(), "authorization request refused", "error", re.err.Code, "description", re.err.Description)
	q := re.err.Params()
	q.Set("iss", h.Issuer)
	if re.state != "" {
		q.Set("state", re.state)
	}
	redirect(w, r, redirecturi.WithQuery(re.redirectURI, q))
}

// storeFailed answers a store error met while handling a validated
// request, whose redirect URI is trusted: an outage goes back to the
// client as temporarily_unavailable (RFC 6749 §4.1.2.1), so that the app
// can tell its user and try again; anything else, and any outage on a
// device request (which has no redirect URI), is shown as a page.
func (h *Handler) storeFailed(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, err error) {
	if errors.Is(err, storage.ErrUnavailable) && !device.IsRequest(req) {
		h.Log.WarnContext(r.Context(), "authorization failed: store unavailable", "client_id", req.ClientID, "err", err)
		h.fail(w, r, &redirectError{err: oautherr.Unavailable(err), redirectURI: req.RedirectURI, state: req.State})
		return
	}
	h.errorPage(w, r, oautherr.Wrap(err))
}

// errorPage shows err to the user without redirecting (ui.Error).
func (h *Handler) errorPage(w http.ResponseWriter, r *http.Request, err error) { h.UI.Error(w, r, err) }

// pageError shows a message from the UI catalog.
func (h *Handler) pageError(w http.ResponseWriter, r *http.Request, status int, key string) {
	h.UI.Message(w, r, status, key)
}

// redirect sends the browser on: 302 after a GET, 303 after a POST, so that
// a form (with a password in it) is never re-posted (RFC 9700 §4.12).
func redirect(w http.ResponseWriter, r *http.Request, to string) {
	status := http.StatusFound
	if r.Method == http.MethodPost {
		status = http.StatusSeeOther
	}
	http.Redirect(w, r, to, status)
}

// essentialClaims returns the claims a valid claims parameter marks
// essential (OpenID Connect Core §5.5.1), for the consent page to mark.
// The person may still decline them (§5.5.1: not an error).
func essentialClaims(raw string) []string {
	var req map[string]map[string]*struct {
		Essential bool `json:"essential"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &req) != nil {
		return nil
	}
	var out []string
	for _, claims := range req {
		for name, c := range claims {
			if c != nil && c.Essential && !slices.Contains(out, name) {
				out = append(out, name)
			}
		}
	}
	return out
}
