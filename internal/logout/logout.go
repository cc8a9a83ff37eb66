// Package logout implements OpenID Connect RP-Initiated Logout 1.0: a
// client sends the browser to /end_session (with id_token_hint,
// client_id, post_logout_redirect_uri, state); the user confirms, is
// signed out, and goes back to the client. A post_logout_redirect_uri must
// equal one of the client's registered redirect URIs. Signing out tells
// the user's clients through back-channel logout (package backchannel).
//
// The package also serves the plain sign-out of the account pages
// (/logout) and "sign out everywhere" (/account/logout-all).
package logout

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/redirecturi"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// Pages is what sign-out shares with the other sign-in pages (package
// authorize).
type Pages interface {
	// ParseForm parses a posted form and checks its CSRF token; on
	// failure it has written the error page and returns false.
	ParseForm(w http.ResponseWriter, r *http.Request) bool
	// ErrorPage shows err without redirecting.
	ErrorPage(w http.ResponseWriter, r *http.Request, err error)
	// LoggedIn returns the session of r, or sends the browser to login
	// (or shows a store error) and returns nil.
	LoggedIn(w http.ResponseWriter, r *http.Request, login string) *storage.Session
	// Redirect sends the browser to a URL: 302 after a GET, 303 after a
	// POST. WithLang adds the language of r to a path on bawwab.
	Redirect(w http.ResponseWriter, r *http.Request, to string)
	WithLang(r *http.Request, path string) string
}

// Handler serves sign-out.
type Handler struct {
	Store    storage.Storage
	Sessions *session.Manager
	UI       *ui.UI
	Audit    *audit.Log
	// IDTokens reads id_token_hint.
	IDTokens *token.Issuer
	// Logouts tells the user's clients when the user signs out.
	Logouts *backchannel.Notifier
	Pages   Pages
}

// Register adds the sign-out endpoints to mux.
func (h *Handler) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /logout", h.logout)
	mux.HandleFunc("GET /end_session", h.endSessionPage)
	mux.HandleFunc("POST /end_session", h.endSession)
	mux.HandleFunc("POST /account/logout-all", h.logoutAll)
}

type logoutData struct {
	ClientID, ClientName, RedirectURI, State string
	Done                                     bool
}

// request checks the parameters of a logout request; the error is for
// the error page (nothing is trusted before it is checked).
func (h *Handler) request(r *http.Request, v url.Values) (logoutData, error) {
	d := logoutData{ClientID: v.Get("client_id"), RedirectURI: v.Get("post_logout_redirect_uri"), State: v.Get("state")}
	if err := h.hint(r, v.Get("id_token_hint"), &d); err != nil {
		return d, err
	}
	if d.ClientID == "" {
		if d.RedirectURI != "" {
			return d, oautherr.New(oautherr.InvalidRequest, "post_logout_redirect_uri needs client_id or id_token_hint")
		}
		return d, nil
	}
	client, err := h.Store.GetClient(r.Context(), d.ClientID)
	if errors.Is(err, storage.ErrNotFound) {
		return d, oautherr.New(oautherr.InvalidRequest, "no client is registered with this client_id")
	} else if err != nil {
		return d, oautherr.Wrap(err) // an outage is 503, not an unknown client
	}
	d.ClientName = client.Name
	if d.RedirectURI != "" && (!slices.Contains(client.RedirectURIs, d.RedirectURI) || strings.Contains(d.RedirectURI, "#")) {
		return d, oautherr.New(oautherr.InvalidRequest, "post_logout_redirect_uri is not a redirect URI registered for this client")
	}
	return d, nil
}

// hint reads id_token_hint, when sent: an ID token of this server, whose
// audience names the client (or is the client, when none is named).
func (h *Handler) hint(r *http.Request, hint string, d *logoutData) error {
	if hint == "" {
		return nil
	}
	c, err := h.IDTokens.IDTokenHint(r.Context(), hint)
	if errors.Is(err, storage.ErrUnavailable) {
		return oautherr.Wrap(err) // its key could not be looked up
	} else if err != nil {
		return oautherr.New(oautherr.InvalidRequest, "id_token_hint is not an ID token of this server")
	}
	if d.ClientID == "" && len(c.Audience) == 1 {
		d.ClientID = c.Audience[0]
	}
	if d.ClientID != "" && !slices.Contains([]string(c.Audience), d.ClientID) {
		return oautherr.New(oautherr.InvalidRequest, "id_token_hint was issued to another client")
	}
	return nil
}

func (h *Handler) endSessionPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.request(r, r.URL.Query())
	if err != nil {
		h.Pages.ErrorPage(w, r, err)
		return
	}
	h.UI.Render(w, r, http.StatusOK, "logout", "logout.heading", ui.Page{CSRF: h.Sessions.CSRFToken(w, r), Data: d})
}

func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	if !h.Pages.ParseForm(w, r) {
		return
	}
	d, err := h.request(r, r.PostForm)
	if err != nil {
		h.Pages.ErrorPage(w, r, err)
		return
	}
	logout := r.PostForm.Get("action") == "logout"
	if logout && !h.signOut(w, r, d.ClientID) {
		return
	}
	switch {
	case d.RedirectURI != "":
		q := url.Values{}
		if d.State != "" {
			q.Set("state", d.State)
		}
		h.Pages.Redirect(w, r, redirecturi.WithQuery(d.RedirectURI, q))
	case !logout:
		http.Redirect(w, r, h.Pages.WithLang(r, "/account"), http.StatusSeeOther)
	default:
		h.UI.Render(w, r, http.StatusOK, "logout", "logout.done", ui.Page{Data: logoutData{Done: true}})
	}
}

// signOut ends the session of r and tells the user's clients. On a store
// error it shows the error page and returns false.
func (h *Handler) signOut(w http.ResponseWriter, r *http.Request, clientID string) bool {
	sess, err := h.Sessions.Current(r.Context(), r)
	if err != nil && !errors.Is(err, session.ErrNoSession) {
		h.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return false
	}
	if err := h.Sessions.Logout(r.Context(), w, r); err != nil {
		h.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return false
	}
	if sess != nil {
		h.Audit.Record(r.Context(), audit.Event{Type: audit.Logout, UserID: sess.UserID, ClientID: clientID})
		h.Logouts.LoggedOut(r.Context(), sess.UserID)
	}
	return true
}

// logout signs out from the account pages, or from the consent page
// ("Not you? Switch account"), and goes to login.
func (h *Handler) logout(w http.ResponseWriter, r *http.Request) {
	if !h.Pages.ParseForm(w, r) || !h.signOut(w, r, "") {
		return
	}
	next := "/login"
	if req := r.PostForm.Get("req"); req != "" {
		next += "?req=" + url.QueryEscape(req)
	}
	http.Redirect(w, r, h.Pages.WithLang(r, next), http.StatusSeeOther)
}

// logoutAll ends every session of the user, on every device.
func (h *Handler) logoutAll(w http.ResponseWriter, r *http.Request) {
	if !h.Pages.ParseForm(w, r) {
		return
	}
	sess := h.Pages.LoggedIn(w, r, h.Pages.WithLang(r, "/login"))
	if sess == nil {
		return
	}
	n, err := h.Store.DeleteUserSessions(r.Context(), sess.UserID)
	if err != nil {
		h.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return
	}
	h.Audit.Record(r.Context(), audit.Event{Type: audit.Logout, UserID: sess.UserID, Detail: "everywhere: " + strconv.FormatInt(n, 10) + " sessions"})
	h.Logouts.LoggedOut(r.Context(), sess.UserID)
	if err := h.Sessions.Logout(r.Context(), w, r); err != nil {
		h.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return
	}
	http.Redirect(w, r, h.Pages.WithLang(r, "/login"), http.StatusSeeOther)
}
