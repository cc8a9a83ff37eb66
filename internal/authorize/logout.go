package authorize

import (
	"errors"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/ui"
)

// OpenID Connect RP-Initiated Logout 1.0: a client sends the browser to
// /end_session (with id_token_hint, client_id, post_logout_redirect_uri,
// state); the user confirms, is signed out, and goes back to the client.
// A post_logout_redirect_uri must equal one of the client's registered
// redirect URIs. The user can also sign out on every device at once.

type logoutData struct {
	ClientID, ClientName, RedirectURI, State string
	Done                                     bool
}

// logoutRequest checks the parameters of a logout request; the error is
// for the error page (nothing is trusted before it is checked).
func (h *Handler) logoutRequest(r *http.Request, v url.Values) (logoutData, error) {
	d := logoutData{ClientID: v.Get("client_id"), RedirectURI: v.Get("post_logout_redirect_uri"), State: v.Get("state")}
	if hint := v.Get("id_token_hint"); hint != "" {
		c, err := h.IDTokens.IDTokenHint(r.Context(), hint)
		if err != nil {
			return d, oautherr.New(oautherr.InvalidRequest, "id_token_hint is not an ID token of this server")
		}
		if d.ClientID == "" && len(c.Audience) == 1 {
			d.ClientID = c.Audience[0]
		}
		if d.ClientID != "" && !slices.Contains([]string(c.Audience), d.ClientID) {
			return d, oautherr.New(oautherr.InvalidRequest, "id_token_hint was issued to another client")
		}
	}
	if d.ClientID != "" {
		client, err := h.Store.GetClient(r.Context(), d.ClientID)
		if err != nil {
			return d, oautherr.New(oautherr.InvalidRequest, "no client is registered with this client_id")
		}
		d.ClientName = client.Name
		if d.RedirectURI != "" && (!slices.Contains(client.RedirectURIs, d.RedirectURI) || strings.Contains(d.RedirectURI, "#")) {
			return d, oautherr.New(oautherr.InvalidRequest, "post_logout_redirect_uri is not a redirect URI registered for this client")
		}
	} else if d.RedirectURI != "" {
		return d, oautherr.New(oautherr.InvalidRequest, "post_logout_redirect_uri needs client_id or id_token_hint")
	}
	return d, nil
}

func (h *Handler) endSessionPage(w http.ResponseWriter, r *http.Request) {
	d, err := h.logoutRequest(r, r.URL.Query())
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	h.UI.Render(w, r, http.StatusOK, "logout", "logout.heading", ui.Page{CSRF: h.Sessions.CSRFToken(w, r), Data: d})
}

func (h *Handler) endSession(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	d, err := h.logoutRequest(r, r.PostForm)
	if err != nil {
		h.errorPage(w, r, err)
		return
	}
	if r.PostForm.Get("action") == "logout" {
		sess, err := h.Sessions.Current(r.Context(), r)
		if err != nil && !errors.Is(err, session.ErrNoSession) {
			h.errorPage(w, r, oautherr.Wrap(err))
			return
		}
		if err := h.Sessions.Logout(r.Context(), w, r); err != nil {
			h.errorPage(w, r, oautherr.Wrap(err))
			return
		}
		if sess != nil {
			h.Audit.Record(r.Context(), audit.Event{Type: audit.Logout, UserID: sess.UserID, ClientID: d.ClientID})
			h.Logouts.LoggedOut(r.Context(), sess.UserID)
		}
	}
	if d.RedirectURI != "" {
		q := url.Values{}
		if d.State != "" {
			q.Set("state", d.State)
		}
		redirect(w, r, withQuery(d.RedirectURI, q))
		return
	}
	if r.PostForm.Get("action") != "logout" {
		http.Redirect(w, r, withLang(r, "/account"), http.StatusSeeOther)
		return
	}
	h.UI.Render(w, r, http.StatusOK, "logout", "logout.done", ui.Page{Data: logoutData{Done: true}})
}

// logoutAll ends every session of the user, on every device.
func (h *Handler) logoutAll(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	sess := h.loggedIn(w, r, withLang(r, "/login"))
	if sess == nil {
		return
	}
	n, err := h.Store.DeleteUserSessions(r.Context(), sess.UserID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	h.Audit.Record(r.Context(), audit.Event{Type: audit.Logout, UserID: sess.UserID, Detail: "everywhere: " + strconv.FormatInt(n, 10) + " sessions"})
	h.Logouts.LoggedOut(r.Context(), sess.UserID)
	if err := h.Sessions.Logout(r.Context(), w, r); err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	http.Redirect(w, r, withLang(r, "/login"), http.StatusSeeOther)
}
