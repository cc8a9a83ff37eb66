package authorize

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strings"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// pending loads the stored request named by ?req= or the form's req, with
// its client. It writes an error page and returns nil when it cannot.
func (h *Handler) pending(w http.ResponseWriter, r *http.Request, id string) (*storage.AuthRequest, *storage.Client) {
	ctx := r.Context()
	req, err := h.Store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) || err == nil && !h.Now().Before(req.ExpiresAt) {
		h.pageError(w, r, http.StatusBadRequest, "request.expired")
		return nil, nil
	} else if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return nil, nil
	}
	client, err := h.Store.GetClient(ctx, req.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		h.pageError(w, r, http.StatusBadRequest, "request.expired")
		return nil, nil
	} else if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return nil, nil
	}
	return req, client
}

// attempt starts a sign-in for the pending request id (none for a
// sign-in to the account pages). It writes an error page and returns nil
// when the request is gone.
func (h *Handler) attempt(w http.ResponseWriter, r *http.Request, id string) *signin.Attempt {
	a := &signin.Attempt{Lang: ui.Lang(nil, r), Choice: r.PostForm.Get(signin.ChoiceField)}
	if id != "" {
		if a.Request, a.Client = h.pending(w, r, id); a.Client == nil {
			return nil
		}
		if !h.fromSession(w, r, a) {
			return nil
		}
	}
	a.CSRF = h.Sessions.CSRFToken(w, r) // before any page is written
	return a
}

// fromSession starts a's sign-in from the browser's session, if any: the
// person stays identified and what the session proved counts as long as
// it is fresh enough, so that a step-up asks only for what is missing.
// It writes an error page and returns false on a store error.
func (h *Handler) fromSession(w http.ResponseWriter, r *http.Request, a *signin.Attempt) bool {
	ctx := r.Context()
	sess, err := h.Sessions.Current(ctx, r)
	if errors.Is(err, session.ErrNoSession) {
		return true
	} else if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return false
	}
	u, err := h.Store.GetUser(ctx, sess.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return true
	} else if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return false
	}
	a.User, a.Proved, a.SessionUser = u, signin.SessionProofs(sess), u.ID
	return true
}

// loginPage shows the sign-in step the request needs first (package
// signin); someone signed in already who came without a request goes to
// the account pages.
func (h *Handler) loginPage(w http.ResponseWriter, r *http.Request) {
	id := r.URL.Query().Get("req")
	if id == "" {
		if s, _ := h.Sessions.Current(r.Context(), r); s != nil {
			http.Redirect(w, r, withLang(r, "/account"), http.StatusFound)
			return
		}
	}
	a := h.attempt(w, r, id)
	if a == nil {
		return
	}
	err := h.signIn().Show(r.Context(), w, r, a)
	switch {
	case errors.Is(err, signin.ErrNoStep) && a.Request != nil && a.User != nil:
		h.noStep(w, r, a)
	case err != nil:
		h.errorPage(w, r, oautherr.Wrap(err))
	}
}

// parseForm parses a browser form and checks its CSRF token; on failure it
// writes the error page and returns false.
func (h *Handler) parseForm(w http.ResponseWriter, r *http.Request) bool {
	switch err := h.Sessions.ReadForm(w, r); {
	case errors.Is(err, session.ErrCSRF):
		h.Audit.Record(r.Context(), audit.Event{Type: audit.CSRFRejected, Detail: "path=" + r.URL.Path})
		h.pageError(w, r, http.StatusForbidden, "csrf.failed")
		return false
	case err != nil:
		h.errorPage(w, r, oautherr.New(oautherr.InvalidRequest, err.Error()))
		return false
	}
	return true
}

// login verifies the posted sign-in step; once the pipeline has all the
// policy needs, it starts a session and goes on to consent (or to the
// account pages).
func (h *Handler) login(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	a := h.attempt(w, r, r.PostForm.Get("req"))
	if a == nil {
		return
	}
	rec, err := h.signIn().Submit(ctx, w, r, a)
	switch {
	case errors.Is(err, signin.ErrNoStep) && a.Request != nil && a.User != nil:
		h.noStep(w, r, a)
		return
	case err != nil:
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	case rec == nil: // the pipeline showed a page: a failure or the next step
		return
	}
	h.startSession(w, r, a, rec)
}

// startSession starts the session of a finished sign-in and goes on.
func (h *Handler) startSession(w http.ResponseWriter, r *http.Request, a *signin.Attempt, rec *signin.Record) {
	ctx := r.Context()
	switch _, err := h.Sessions.LoginFrom(ctx, w, r, rec.UserID, rec.AMR, rec.Upstream); {
	case errors.Is(err, session.ErrUpstreamEnded):
		h.Audit.Record(ctx, audit.Event{Type: audit.UpstreamLogout, UserID: rec.UserID, Detail: "upstream=" + rec.Upstream.Upstream + "; a sign-in in progress"})
		h.pageError(w, r, http.StatusUnauthorized, "upstream.ended")
		return
	case err != nil:
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.Login, UserID: rec.UserID, Detail: "method=" + strings.Join(rec.Steps, "+")})
	to := loginTarget(a)
	if rec.Then != "" { // a page of the sign-in's own first, which goes on to the request
		to = rec.Then
	}
	http.Redirect(w, r, withLang(r, to), http.StatusSeeOther)
}

// upstreamReturn is the callback of an upstream identity provider
// (package upstream): the sign-in step it belongs to checks the answer,
// and the pending request it left for goes on.
func (h *Handler) upstreamReturn(w http.ResponseWriter, r *http.Request) {
	rs, err := h.signIn().Remote(r.Context(), "upstream:"+r.PathValue("id"))
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	if rs == nil { // no such upstream, or one disabled or deleted meanwhile
		h.pageError(w, r, http.StatusNotFound, "request.expired")
		return
	}
	req, lang := rs.Pending(r)
	if lang != "" { // the pages speak on in the language they spoke before the upstream
		r = r.WithContext(ui.WithLang(r.Context(), lang))
	}
	a := h.attempt(w, r, req)
	if a == nil {
		return
	}
	rec, err := h.signIn().Return(r.Context(), w, r, a, rs)
	switch {
	case err != nil:
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	case rec == nil: // the pipeline showed a page: a failure or the next step
		return
	}
	h.startSession(w, r, a, rec)
}

// signIn returns the sign-in pipeline: SignIn, or else the password alone
// built from the handler's throttles and parameters.
func (h *Handler) signIn() *signin.Pipeline {
	if h.SignIn != nil {
		return h.SignIn
	}
	return &signin.Pipeline{Now: h.Now, Steps: []signin.Step{&signin.Password{Store: h.Store, UI: h.UI,
		Audit: h.Audit, Params: h.Password, UserFailures: h.UserFailures, IPFailures: h.IPFailures}}}
}

func (h *Handler) consentPage(w http.ResponseWriter, r *http.Request) {
	req, client := h.pending(w, r, r.URL.Query().Get("req"))
	if req == nil {
		return
	}
	h.proceed(w, r, req, client, true)
}

type consentScope struct {
	Name, Description, Explanation string
	Sensitive, Required, Checked   bool
	// Essential: the app marked a claim of this scope essential (OpenID
	// Connect Core §5.5.1); the person may still uncheck it.
	Essential bool
}

type consentData struct {
	Req, ClientName, RedirectHost string
	// Who is asking, as the client registered it (RFC 7591 §2), and
	// whether the operator checked it.
	storage.ClientInfo
	ClientHost string
	Verified   bool
	Scopes     []consentScope
	// AnySensitive and AnyUnchecked choose the notes under the list.
	AnySensitive, AnyUnchecked bool
}

// preChecked says whether a requested scope starts checked. The person's
// earlier answer stands: what was granted stays granted, what was left
// unchecked stays unchecked. On a first consent only identity items that
// are not sensitive start checked; access to data and lasting access
// (files, offline_access) wait for the person to opt in. A required
// scope cannot be unchecked at all.
func preChecked(s scope.Scope, before []string, returning bool) bool {
	switch {
	case s.Required:
		return true
	case returning:
		return slices.Contains(before, s.Name)
	default:
		return s.Identity() && !s.Sensitive
	}
}

func (h *Handler) renderConsent(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, client *storage.Client, sess *storage.Session) {
	ctx := r.Context()
	user, err := h.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	var before []string
	c, err := h.Store.GetConsent(ctx, sess.UserID, client.ID)
	returning := err == nil
	if returning {
		before = c.Scopes
	} else if !errors.Is(err, storage.ErrNotFound) {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	lang := ui.Lang(nil, r) // Render remembers a ?lang= choice
	data := consentData{Req: req.ID, ClientName: client.Name, ClientInfo: client.ClientInfo, Verified: client.Verified}
	if u, err := url.Parse(req.RedirectURI); err == nil {
		data.RedirectHost = u.Host
	}
	if u, err := url.Parse(client.ClientURI); err == nil {
		data.ClientHost = u.Host
	}
	essential := essentialClaims(req.Claims)
	for _, name := range token.ConsentItems(h.Scopes, client, req.Scopes, req.Claims) {
		s, _ := h.Scopes.Get(name)
		if claim, ok := strings.CutPrefix(name, token.ClaimItemPrefix); ok {
			s = scope.Scope{Name: name, Claims: []string{claim}} // one claim asked for alone (Core §5.5)
		}
		cs := consentScope{Name: name, Description: h.describe(name, lang), Explanation: s.Explain(lang), Sensitive: s.Sensitive, Required: s.Required,
			Checked: preChecked(s, before, returning)}
		for _, c := range s.Claims {
			cs.Essential = cs.Essential || !s.Required && slices.Contains(essential, c)
		}
		data.Scopes = append(data.Scopes, cs)
		data.AnySensitive = data.AnySensitive || s.Sensitive
		data.AnyUnchecked = data.AnyUnchecked || !cs.Checked
	}
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, http.StatusOK, "consent", "consent.title", ui.Page{CSRF: csrf, User: user.Name, Data: data})
}

func (h *Handler) consent(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	req, client := h.pending(w, r, r.PostForm.Get("req"))
	if req == nil {
		return
	}
	sess := h.loggedIn(w, r, withLang(r, "/login?req="+url.QueryEscape(req.ID)))
	if sess == nil {
		return
	}
	deny := func(desc string) {
		if device.IsRequest(req) {
			h.devicePage().Decide(w, r, req, sess, false, nil)
			return
		}
		_ = h.Store.DeleteAuthRequest(ctx, req.ID)
		h.Audit.Record(ctx, audit.Event{Type: audit.ConsentDenied, UserID: sess.UserID, ClientID: client.ID, Detail: desc})
		h.fail(w, r, &redirectError{err: oautherr.New(oautherr.AccessDenied, desc), redirectURI: req.RedirectURI, state: req.State})
	}
	if r.PostForm.Get("action") != "allow" {
		deny("the user denied the request")
		return
	}
	if !h.signedIn(w, r, req, client, sess, true) { // to allow, the session must meet the request, whatever page was posted
		return
	}
	checked := r.PostForm["scope"]
	items := token.ConsentItems(h.Scopes, client, req.Scopes, req.Claims)
	var granted []string
	for _, name := range items {
		s, _ := h.Scopes.Get(name)
		if s.Required || slices.Contains(checked, name) {
			granted = append(granted, name)
		}
	}
	if len(granted) == 0 {
		deny("the user granted none of the requested scopes")
		return
	}
	now := h.Now()
	keep := []string{}
	if c, err := h.Store.GetConsent(ctx, sess.UserID, client.ID); err == nil {
		for _, s := range c.Scopes {
			if !slices.Contains(items, s) {
				keep = append(keep, s)
			}
		}
	}
	if err := h.Store.SaveConsent(ctx, storage.Consent{UserID: sess.UserID, ClientID: client.ID, Scopes: append(keep, granted...), GrantedAt: now, UpdatedAt: now}); err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.Consent, UserID: sess.UserID, ClientID: client.ID, Detail: "granted=" + scope.Join(granted)})
	h.finish(w, r, req, sess, granted)
}

type appView struct {
	ClientID, Name string
	// Granted is when access was first granted; Used when the app last
	// used it (ui.Ago), or empty if never.
	Granted, Used string
	Scopes        []consentScope
}

type accountData struct {
	Notice string
	Apps   []appView
}

func (h *Handler) account(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	sess := h.loggedIn(w, r, withLang(r, "/login"))
	if sess == nil {
		return
	}
	user, err := h.Store.GetUser(ctx, sess.UserID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	consents, err := h.Store.ListConsents(ctx, sess.UserID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	lang := ui.Lang(nil, r) // Render remembers a ?lang= choice
	var data accountData
	now := h.Now()
	for _, c := range consents {
		v := appView{ClientID: c.ClientID, Name: c.ClientName, Granted: ui.Date(lang, c.GrantedAt)}
		if !c.LastUsedAt.IsZero() {
			v.Used = ui.Ago(lang, c.LastUsedAt, now)
		}
		for _, name := range c.Scopes {
			s, _ := h.Scopes.Get(name)
			v.Scopes = append(v.Scopes, consentScope{Name: name, Description: h.describe(name, lang), Sensitive: s.Sensitive})
		}
		data.Apps = append(data.Apps, v)
	}
	if id := r.URL.Query().Get("revoked"); id != "" {
		name := id
		if c, err := h.Store.GetClient(ctx, id); err == nil {
			name = c.Name
		}
		data.Notice = ui.T(lang, "account.revoked", name)
	}
	csrf := h.Sessions.CSRFToken(w, r)
	h.UI.Render(w, r, http.StatusOK, "account", "account.title", ui.Page{CSRF: csrf, User: user.Name, Data: data})
}

func (h *Handler) revokeApp(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	sess := h.loggedIn(w, r, withLang(r, "/login"))
	if sess == nil {
		return
	}
	clientID := r.PostForm.Get("client_id")
	err := h.Store.RevokeConsent(ctx, sess.UserID, clientID, h.Now())
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.AppRevoked, UserID: sess.UserID, ClientID: oautherr.Clip(clientID)})
	http.Redirect(w, r, withLang(r, "/account?revoked="+url.QueryEscape(clientID)), http.StatusSeeOther)
}

// loggedIn returns the session of r. Without one it sends the browser to
// login (a 302 for a GET, a 303 after a POST) and returns nil; on a store
// error it shows the error page and returns nil.
func (h *Handler) loggedIn(w http.ResponseWriter, r *http.Request, login string) *storage.Session {
	sess, err := h.Sessions.Current(r.Context(), r)
	switch {
	case errors.Is(err, session.ErrNoSession):
		redirect(w, r, login)
		return nil
	case err != nil:
		h.errorPage(w, r, oautherr.Wrap(err))
		return nil
	}
	return sess
}

// describe says what a consent item shares, in lang: a scope's
// description, or for a claim asked for on its own (OpenID Connect Core
// §5.5) the claim's name and the scope that would release it.
func (h *Handler) describe(item, lang string) string {
	claim, ok := strings.CutPrefix(item, token.ClaimItemPrefix)
	if !ok {
		s, _ := h.Scopes.Get(item)
		return s.Describe(lang)
	}
	label := ui.T(lang, "claim."+claim)
	for _, name := range h.Scopes.Names() {
		if s, _ := h.Scopes.Get(name); slices.Contains(s.Claims, claim) {
			return ui.T(lang, "consent.claim", label, s.Describe(lang))
		}
	}
	return label
}
