package authorize

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"slices"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/redirecturi"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// Step-up (OpenID Connect Core §3.1.2.1 acr_values and max_age, §5.5.1.1
// an essential acr claim, RFC 9470): a session counts for a request only
// when what its sign-in proved, and when, meets everything the request
// and the operator's policy demand (package signin). A session that falls
// short sends the person to /login, where the pipeline starts from what
// the session proved and asks only for what is missing: a second factor,
// or the first one again when max_age or prompt=login wants it fresh.

// errUnmet is the refusal of a request whose person lacks the second
// factor it needs.
var errUnmet = errors.New("authorize: the request needs a second factor the user has not set up")

// shortfall returns the kind of step that sess falls short of for req: 0
// when the session suffices, signin.FirstFactor without a session (or
// for a person deleted since). errUnmet means a second factor is needed
// and the person has none.
func (h *Handler) shortfall(ctx context.Context, req *storage.AuthRequest, client *storage.Client, sess *storage.Session) (signin.Kind, error) {
	if sess == nil {
		return signin.FirstFactor, nil
	}
	user, err := h.Store.GetUser(ctx, sess.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return signin.FirstFactor, nil
	} else if err != nil {
		return 0, err
	}
	a := &signin.Attempt{Request: req, Client: client, User: user, Proved: signin.SessionProofs(sess)}
	step, err := h.signIn().Check(ctx, a)
	switch {
	case errors.Is(err, signin.ErrNoStep):
		return 0, errUnmet
	case err != nil:
		return 0, err
	case step == nil:
		return 0, nil
	}
	return step.Kind(), nil
}

// signedIn answers whether the session of r suffices for req. When it
// does not, it has written the response: the way to /login, a redirect
// error for prompt=none, or the page of a person without the second
// factor the request needs.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, client *storage.Client, sess *storage.Session, stored bool) bool {
	kind, err := h.shortfall(r.Context(), req, client, sess)
	switch {
	case errors.Is(err, errUnmet):
		h.unmet(w, r, req, client, sess.UserID)
		return false
	case err != nil:
		h.storeFailed(w, r, req, err)
		return false
	case kind == 0:
		return true
	}
	if hasPrompt(req.Prompt, "none") {
		e := oautherr.New(oautherr.LoginRequired, "the user is not logged in")
		switch {
		case kind == signin.SecondFactor:
			e = oautherr.New(oautherr.InteractionRequired, "the user must pass a second sign-in step")
		case sess != nil:
			e = oautherr.New(oautherr.LoginRequired, "the user must sign in again")
		}
		h.fail(w, r, &redirectError{err: e, redirectURI: req.RedirectURI, state: req.State})
		return false
	}
	h.continueAt(w, r, req, stored, "/login")
	return false
}

// stepUpData is what the page of a missing second factor shows.
type stepUpData struct {
	Message, SecurityLink, SecurityText, BackLink, BackText string
}

// unmet refuses a request that needs a second factor its person never set
// up. prompt=none gets interaction_required; otherwise the page says what
// to do, links to the Security page, and offers the way back to the app
// with access_denied (RFC 6749 §4.1.2.1). The request is spent.
func (h *Handler) unmet(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, client *storage.Client, userID string) {
	ctx := r.Context()
	if err := h.Store.DeleteAuthRequest(ctx, req.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.Log.WarnContext(ctx, "could not delete refused auth request", "err", err)
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.ConsentDenied, UserID: userID, ClientID: client.ID, Detail: "no second factor enrolled"})
	if hasPrompt(req.Prompt, "none") {
		h.fail(w, r, &redirectError{err: oautherr.New(oautherr.InteractionRequired, "the user must set up a second sign-in step first"),
			redirectURI: req.RedirectURI, state: req.State})
		return
	}
	lang := ui.Lang(nil, r)
	e := oautherr.New(oautherr.AccessDenied, "the user has no second sign-in step, which this request needs")
	q := e.Params()
	q.Set("iss", h.Issuer)
	if req.State != "" {
		q.Set("state", req.State)
	}
	d := stepUpData{Message: ui.T(lang, "stepup.message", client.Name),
		SecurityLink: withLang(r, "/account/security"), SecurityText: ui.T(lang, "stepup.security")}
	if !device.IsRequest(req) {
		d.BackLink, d.BackText = redirecturi.WithQuery(req.RedirectURI, q), ui.T(lang, "stepup.back", client.Name)
	}
	h.UI.Render(w, r, http.StatusForbidden, "stepup", "stepup.title", ui.Page{Data: d})
}

// noStep answers a sign-in that stopped because the request needs a
// second factor the person a identified never set up (signin.ErrNoStep).
// When the person proved something on this page, they get a session of
// it, which lets them reach the Security page, and /consent refuses the
// request; otherwise the refusal is shown at once.
func (h *Handler) noStep(w http.ResponseWriter, r *http.Request, a *signin.Attempt) {
	ctx := r.Context()
	fresh := slices.ContainsFunc(a.Proved, func(p signin.Proof) bool { return p.Step != signin.SessionStep })
	if !fresh || r.Method != http.MethodPost {
		h.unmet(w, r, a.Request, a.Client, a.User.ID)
		return
	}
	if p := h.signIn().Progress; p != nil {
		if err := p.Clear(ctx, w, r); err != nil {
			h.errorPage(w, r, oautherr.Wrap(err))
			return
		}
	}
	rec := a.Record()
	h.startSession(w, r, a, &rec)
}

// loginTarget is where a finished sign-in goes on: the consent step of
// its request, or the account pages.
func loginTarget(a *signin.Attempt) string {
	if a.Request != nil {
		return "/consent?req=" + url.QueryEscape(a.Request.ID)
	}
	return "/account"
}
