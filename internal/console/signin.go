package console

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"errors"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"slices"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// inProcess sends the console's OAuth requests to the server's public
// handler without a network, from the loopback address.
type inProcess struct{ h http.Handler }

func (t inProcess) RoundTrip(r *http.Request) (*http.Response, error) {
	r = r.Clone(r.Context())
	r.RemoteAddr = "127.0.0.1:0"
	r.RequestURI = r.URL.RequestURI()
	w := httptest.NewRecorder()
	t.h.ServeHTTP(w, r)
	return w.Result(), nil
}

// redirectURI is the console's callback as the operator's browser reaches
// it: the loopback IP address and port of the listener that took r; ""
// for any other host or port. The registered redirect URIs match on any
// port (RFC 8252 §7.3), so another program on a loopback port can be
// brought a console code: named in Host, its address (another port, or the
// same port at the other loopback address) must not become the
// redirect_uri the console redeems that code with.
func redirectURI(r *http.Request) string {
	host, port, err := net.SplitHostPort(r.Host)
	if err != nil || (host != "127.0.0.1" && host != "::1") {
		return ""
	}
	local, ok := r.Context().Value(http.LocalAddrContextKey).(net.Addr)
	if !ok {
		return ""
	}
	lhost, lport, err := net.SplitHostPort(local.String())
	if err != nil || lport != port || !net.ParseIP(lhost).Equal(net.ParseIP(host)) {
		return ""
	}
	scheme := "http://"
	if r.TLS != nil {
		scheme = "https://"
	}
	return scheme + r.Host + callbackPath
}

func (c *Console) oauth(redirect string, p *oidc.Provider) oauth2.Config {
	ep := p.Endpoint()
	ep.AuthStyle = oauth2.AuthStyleInParams // client_secret_post
	return oauth2.Config{ClientID: ClientID, ClientSecret: c.clientSecret(), Endpoint: ep, RedirectURL: redirect,
		Scopes: []string{oidc.ScopeOpenID}}
}

// provider discovers the server's own issuer, in process.
func (c *Console) provider(ctx context.Context) (context.Context, *oidc.Provider, error) {
	hc := &http.Client{Transport: inProcess{c.Public}, Timeout: 10 * time.Second}
	ctx = context.WithValue(oidc.ClientContext(ctx, hc), oauth2.HTTPClient, hc)
	p, err := oidc.NewProvider(ctx, c.Issuer)
	return ctx, p, err
}

// login starts a sign-in: a random value in a short-lived cookie, from
// which state, nonce and the PKCE verifier derive; the browser goes to
// the server's authorization endpoint.
func (c *Console) login(w http.ResponseWriter, r *http.Request) {
	redirect := redirectURI(r)
	if redirect == "" {
		c.message(w, r, http.StatusBadRequest, "console.loopback")
		return
	}
	if err := c.register(r.Context()); err != nil {
		c.fail(w, r, err)
		return
	}
	_, p, err := c.provider(r.Context())
	if err != nil {
		c.fail(w, r, err)
		return
	}
	value := rand.Text() + rand.Text()
	c.setLoginCookie(w, value, 600)
	cfg := c.oauth(redirect, p)
	u := cfg.AuthCodeURL(c.derive("state", value), oidc.Nonce(c.derive("nonce", value)),
		oauth2.S256ChallengeOption(c.derive("pkce", value)), oauth2.SetAuthURLParam("ui_locales", c.lang(w, r)))
	http.Redirect(w, r, u, http.StatusSeeOther)
}

// setLoginCookie sets the cookie of the sign-in in progress: sent to the
// callback only, but over TLS, where the __Host- prefix needs Path=/.
func (c *Console) setLoginCookie(w http.ResponseWriter, value string, maxAge int) {
	path := callbackPath
	if c.TLS {
		path = "/"
	}
	http.SetCookie(w, &http.Cookie{Name: c.loginName, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: c.TLS,
		SameSite: http.SameSiteLaxMode})
}

// errSignIn is a callback that does not finish a sign-in of this browser.
var errSignIn = errors.New("console: the sign-in was not started in this browser, has expired, or was refused")

// callback finishes a sign-in: the state must be this browser's, the code
// is exchanged with the PKCE verifier, and the ID token must be the
// server's, for the console, with this sign-in's nonce.
func (c *Console) callback(w http.ResponseWriter, r *http.Request) {
	ck, err := r.Cookie(c.loginName)
	c.setLoginCookie(w, "", -1)
	q := r.URL.Query()
	if err != nil || len(ck.Value) < 20 || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(c.derive("state", ck.Value))) != 1 {
		c.message(w, r, http.StatusBadRequest, "console.signin_state")
		return
	}
	if q.Get("error") != "" {
		c.message(w, r, http.StatusForbidden, "console.signin_denied")
		return
	}
	tok, err := c.exchange(r, ck.Value, q.Get("code"))
	if err != nil {
		c.Log.InfoContext(r.Context(), "console sign-in failed", "err", err)
		c.message(w, r, http.StatusBadRequest, "console.signin_failed")
		return
	}
	c.admit(w, r, tok)
}

// exchange redeems code and verifies the ID token.
func (c *Console) exchange(r *http.Request, login, code string) (*oidc.IDToken, error) {
	redirect := redirectURI(r)
	if redirect == "" || code == "" {
		return nil, errSignIn
	}
	ctx, p, err := c.provider(r.Context())
	if err != nil {
		return nil, err
	}
	cfg := c.oauth(redirect, p)
	t, err := cfg.Exchange(ctx, code, oauth2.VerifierOption(c.derive("pkce", login)))
	if err != nil {
		return nil, err
	}
	raw, _ := t.Extra("id_token").(string)
	idt, err := p.VerifierContext(ctx, &oidc.Config{ClientID: ClientID, Now: c.Now}).Verify(ctx, raw)
	if err != nil {
		return nil, err
	}
	if subtle.ConstantTimeCompare([]byte(idt.Nonce), []byte(c.derive("nonce", login))) != 1 {
		return nil, errSignIn
	}
	return idt, nil
}

// admit gives the user of the ID token a console session when they hold
// the admin role and are not disabled; anyone else gets a 403 page, and
// the refusal is audited.
func (c *Console) admit(w http.ResponseWriter, r *http.Request, idt *oidc.IDToken) {
	u, err := c.Store.GetUser(r.Context(), idt.Subject)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		c.fail(w, r, err)
		return
	}
	if u == nil || !u.Admin || u.Disabled {
		c.Audit.Record(r.Context(), audit.Event{Type: audit.ConsoleRefused, UserID: idt.Subject, ClientID: ClientID, Detail: "not an admin"})
		c.message(w, r, http.StatusForbidden, "console.not_admin")
		return
	}
	var claims struct {
		AMR []string `json:"amr"`
		ACR string   `json:"acr"`
	}
	_ = idt.Claims(&claims)
	switch err := c.checkSecondFactor(r.Context(), u.ID, claims.AMR, claims.ACR); {
	case errors.Is(err, errNoSecondFactor):
		c.Audit.Record(r.Context(), audit.Event{Type: audit.ConsoleRefused, UserID: u.ID, ClientID: ClientID, Detail: "no second factor"})
		lang := c.lang(w, r)
		c.render(w, r, http.StatusForbidden, "message", "console.title", nil, ui.T(lang, "console.second_factor", c.Issuer+"/account/security"))
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	switch _, err := c.sessions.LoginWith(r.Context(), w, r, u.ID, claims.AMR); {
	case errors.Is(err, errNotAdmin) || errors.Is(err, session.ErrDisabled):
		// The role was taken, or the user disabled, while signing in.
		c.Audit.Record(r.Context(), audit.Event{Type: audit.ConsoleRefused, UserID: u.ID, ClientID: ClientID, Detail: "not an admin"})
		c.message(w, r, http.StatusForbidden, "console.not_admin")
		return
	case err != nil:
		c.fail(w, r, err)
		return
	}
	c.Audit.Record(r.Context(), audit.Event{Type: audit.ConsoleSignIn, UserID: u.ID, ClientID: ClientID})
	// The session cookie is SameSite=Strict and this response ends a
	// redirect that may have crossed sites: the browser goes on from a
	// page of the console's own, so that the cookie is sent.
	c.render(w, r, http.StatusOK, "signedin", "console.signedin", nil, nil)
}

// errNoSecondFactor is a sign-in that passed no second factor, which the
// console needs of this admin.
var errNoSecondFactor = errors.New("console: the sign-in passed no second factor")

// checkSecondFactor checks, on the ID token's amr and acr (RFC 8176, OpenID
// Connect Core §2), the second factor that the server's sign-in policy
// asks of the console (package signin): of every admin under
// SecondFactorRequired, and otherwise of an admin who set one up. The
// request asked for it; the token must show it was passed, so that a
// policy changed or bypassed on the way does not let a password alone in.
func (c *Console) checkSecondFactor(ctx context.Context, userID string, amr []string, acr string) error {
	if slices.Contains(amr, signin.AMRMFA) && acr == signin.ACRMFA {
		return nil
	}
	if c.SecondFactor == SecondFactorRequired {
		return errNoSecondFactor
	}
	switch has, err := c.enrolled(ctx, userID); {
	case err != nil:
		return err
	case has:
		return errNoSecondFactor
	}
	return nil
}

// enrolled reports whether the user set up a second factor that sign-in
// offers: a confirmed authenticator app, or a passkey when the server
// offers passkeys. One read (storage.Factors.Enrolment), as sign-in's own.
func (c *Console) enrolled(ctx context.Context, userID string) (bool, error) {
	e, err := c.Store.Enrolment(ctx, userID)
	return e.TOTP || e.Passkeys && !c.NoPasskeys, err
}

func (c *Console) logout(w http.ResponseWriter, r *http.Request, _ *storage.User) {
	if err := c.sessions.Logout(r.Context(), w, r); err != nil {
		c.fail(w, r, err)
		return
	}
	c.message(w, r, http.StatusOK, "console.signedout")
}

// operator returns the signed-in admin of r, or nil: no session, the
// user lost the role or was disabled since, or a second factor is now
// needed that the session did not pass.
func (c *Console) operator(r *http.Request) (*storage.User, error) {
	s, err := c.sessions.Current(r.Context(), r)
	if errors.Is(err, session.ErrNoSession) {
		return nil, nil
	}
	if err != nil {
		return nil, err
	}
	u, err := c.Store.GetUser(r.Context(), s.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil
	}
	if err != nil || !u.Admin || u.Disabled {
		return nil, err
	}
	// A session that passed no second factor lasts only while none is
	// needed: once the admin sets one up (or the rule says every admin
	// needs one), they sign in again with it.
	if !slices.Contains(s.AMR, signin.AMRMFA) {
		switch err := c.checkSecondFactor(r.Context(), u.ID, s.AMR, ""); {
		case errors.Is(err, errNoSecondFactor):
			return nil, nil
		case err != nil:
			return nil, err
		}
	}
	return u, nil
}

// handler is a console page or action of a signed-in admin.
type handler func(http.ResponseWriter, *http.Request, *storage.User)

// page serves h to a signed-in admin; anyone else is sent to sign in.
func (c *Console) page(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := c.operator(r)
		switch {
		case err != nil:
			c.fail(w, r, err)
		case u == nil:
			to := "/console/login"
			if l := r.URL.Query().Get("lang"); l != "" {
				to += "?lang=" + url.QueryEscape(l)
			}
			http.Redirect(w, r, to, http.StatusSeeOther)
		default:
			h(w, r, u)
		}
	}
}

// form serves h to a signed-in admin whose form carries this session's
// CSRF token; anything else is refused with 403.
func (c *Console) form(h handler) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		u, err := c.operator(r)
		if err != nil {
			c.fail(w, r, err)
			return
		}
		if u == nil {
			c.message(w, r, http.StatusForbidden, "console.signin_again")
			return
		}
		if err := c.sessions.ReadForm(w, r); err != nil {
			if errors.Is(err, session.ErrCSRF) {
				c.Audit.Record(r.Context(), audit.Event{Type: audit.CSRFRejected, UserID: u.ID, ClientID: ClientID, Detail: "console " + oautherr.Clip(r.URL.Path)})
			}
			c.message(w, r, http.StatusForbidden, "console.csrf")
			return
		}
		h(w, r, u)
	}
}

// remote calls the admin API in process as the operator u.
func (c *Console) remote(u *storage.User) *adminapi.Remote {
	rm := adminapi.InProcess(c.API, c.Token)
	rm.Operator = u.Username + " (console)"
	return rm
}

// back redirects to the console page path after an action, with the
// notice (a message key) to show.
func back(w http.ResponseWriter, r *http.Request, path string, notice string) {
	http.Redirect(w, r, path+"?notice="+url.QueryEscape(notice), http.StatusSeeOther)
}

// errNotAdmin refuses a console session to a user without the admin role.
var errNotAdmin = errors.New("console: not an admin")

// isAdmin is what a user must be to hold a console session, asked at
// sign-in before the session is stored and again after (RequireUser).
func isAdmin(u *storage.User) error {
	if !u.Admin {
		return errNotAdmin
	}
	return nil
}
