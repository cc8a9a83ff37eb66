package console

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// Page is what every console template receives.
type Page struct {
	Lang, Dir, Title string
	// Path is the current path with its query, for language links.
	Path string
	CSRF string
	// Operator is the signed-in admin; nil on the pages before sign-in.
	Operator *storage.User
	// Nav is the section of the page, marked in the navigation.
	Nav    string
	Notice string
	Data   any
}

// LangURL is the current page in another language.
func (p Page) LangURL(lang string) string { return ui.Page{Path: p.Path}.LangURL(lang) }

func (c *Console) lang(w http.ResponseWriter, r *http.Request) string {
	return ui.LangWithCookie(w, r, langCookie)
}

// notices are the message keys an action may name in ?notice=.
var notices = map[string]bool{"console.client_deleted": true, "console.user_disabled": true, "console.user_enabled": true,
	"console.keys_rotated": true, "console.grant_revoked": true, "console.scope_saved": true, "console.role_saved": true,
	"console.password_set": true, "console.signed_out_user": true, "console.factors_reset": true, "console.verification_sent": true,
	"console.unlocked": true, "console.client_saved": true,
	"console.upstream_added": true, "console.upstream_saved": true, "console.token_revoked": true}

// render writes the page name with data; u is the operator (nil before
// sign-in).
func (c *Console) render(w http.ResponseWriter, r *http.Request, status int, name, titleKey string, u *storage.User, data any) {
	lang := c.lang(w, r)
	p := Page{Lang: lang, Dir: "ltr", Title: ui.T(lang, titleKey), Path: r.URL.RequestURI(), Operator: u, Nav: name, Data: data}
	if lang == "ar" {
		p.Dir = "rtl"
	}
	if r.URL.Path == callbackPath {
		p.Path = "/console/" // the callback's language links must not replay it
	}
	if u != nil {
		p.CSRF = c.sessions.CSRFToken(w, r)
	}
	if n := r.URL.Query().Get("notice"); notices[n] {
		p.Notice = ui.T(lang, n)
	}
	ui.Execute(w, r, c.Log, c.pages[name], lang, status, p)
}

// message shows the message key on a page of its own.
func (c *Console) message(w http.ResponseWriter, r *http.Request, status int, key string) {
	c.render(w, r, status, "message", "console.title", nil, ui.T(c.lang(w, r), key))
}

// fail shows err: an error of the admin API with its status and
// description, an unavailable store as 503, anything else as a server
// error whose cause goes to the log only.
func (c *Console) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *adminapi.Error
	switch {
	case errors.As(err, &ae) && ae.Code == "last_admin":
		c.message(w, r, ae.Status, "console.last_admin")
	case errors.As(err, &ae):
		if ae.Status == http.StatusServiceUnavailable {
			w.Header().Set("Retry-After", strconv.Itoa(oautherr.RetryAfterUnavailable))
		}
		c.render(w, r, ae.Status, "message", "console.title", nil, ae.Description)
	case errors.Is(err, storage.ErrUnavailable):
		w.Header().Set("Retry-After", strconv.Itoa(oautherr.RetryAfterUnavailable))
		c.message(w, r, http.StatusServiceUnavailable, "unavailable.message")
	default:
		c.Log.ErrorContext(r.Context(), "console failed", "path", r.URL.Path, "err", err)
		c.message(w, r, http.StatusInternalServerError, "console.server_error")
	}
}

func asAPIError(err error, target **adminapi.Error) bool { return errors.As(err, target) }
