package authorize

import (
	"net/http"

	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/logout"
	"github.com/bawwab/bawwab/internal/storage"
)

// devicePage is the user side of the device flow (RFC 8628 §3.3, package
// device): wrong user codes count against the client's network as failed
// logins do.
func (h *Handler) devicePage() *device.Page {
	return &device.Page{Store: h.Store, UI: h.UI, Sessions: h.Sessions, Audit: h.Audit, Pages: pages{h},
		Guesses: h.IPFailures, RequestTTL: h.RequestTTL, Now: h.Now}
}

// signOut is sign-out and RP-initiated logout (package logout).
func (h *Handler) signOut() *logout.Handler {
	return &logout.Handler{Store: h.Store, Sessions: h.Sessions, UI: h.UI, Audit: h.Audit, IDTokens: h.IDTokens,
		Logouts: h.Logouts, Pages: pages{h}}
}

// pages lends the helpers of the sign-in pages to the device and
// sign-out pages: one error page, one form check, one way on to login
// and consent.
type pages struct{ h *Handler }

var (
	_ device.Pages = pages{}
	_ logout.Pages = pages{}
)

func (p pages) ParseForm(w http.ResponseWriter, r *http.Request) bool { return p.h.parseForm(w, r) }
func (p pages) ErrorPage(w http.ResponseWriter, r *http.Request, err error) {
	p.h.errorPage(w, r, err)
}
func (p pages) MessagePage(w http.ResponseWriter, r *http.Request, status int, key string) {
	p.h.pageError(w, r, status, key)
}
func (p pages) Proceed(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, client *storage.Client) {
	p.h.proceed(w, r, req, client, false)
}
func (p pages) LoggedIn(w http.ResponseWriter, r *http.Request, login string) *storage.Session {
	return p.h.loggedIn(w, r, login)
}
func (p pages) Redirect(w http.ResponseWriter, r *http.Request, to string) { redirect(w, r, to) }
func (p pages) WithLang(r *http.Request, path string) string               { return withLang(r, path) }
