package device

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// The user side of the device flow (RFC 8628 §3.3): the user enters the
// code shown on the device, logs in, and answers the same consent screen
// as in the code flow. The request travels as a stored AuthRequest whose
// redirect URI is redirectMarker and whose state is the user code; the
// consent page then calls Decide to record the answer on the device code
// instead of redirecting.
const redirectMarker = granttype.DeviceCode

// IsRequest reports whether req is the authorization request of a device
// code, answered by [Page.Decide] rather than by a redirect.
func IsRequest(req *storage.AuthRequest) bool { return req.RedirectURI == redirectMarker }

// Pages is what the device page shares with the other sign-in pages
// (package authorize): form checks, error pages, and the way on to login
// and consent.
type Pages interface {
	// ParseForm parses a posted form and checks its CSRF token; on
	// failure it has written the error page and returns false.
	ParseForm(w http.ResponseWriter, r *http.Request) bool
	// ErrorPage shows err without redirecting.
	ErrorPage(w http.ResponseWriter, r *http.Request, err error)
	// MessagePage shows the UI catalog message key with status.
	MessagePage(w http.ResponseWriter, r *http.Request, status int, key string)
	// Proceed sends the browser to login and consent for req.
	Proceed(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, client *storage.Client)
}

// Page serves /device, the verification_uri.
type Page struct {
	Store    storage.Storage
	UI       *ui.UI
	Sessions *session.Manager
	Audit    *audit.Log
	Pages    Pages
	// Guesses counts wrong user codes per client network: user codes are
	// short enough to be guessed without a limit (RFC 8628 §5.1).
	Guesses *ratelimit.Backoff
	// RequestTTL bounds the time to log in and consent (and the device
	// code's own expiry bounds it further).
	RequestTTL time.Duration
	Now        func() time.Time
}

// Register adds GET and POST /device to mux.
func (p *Page) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET "+Path, p.show)
	mux.HandleFunc("POST "+Path, p.submit)
}

type pageData struct {
	UserCode, Error, Done string
}

func (p *Page) show(w http.ResponseWriter, r *http.Request) {
	p.render(w, r, http.StatusOK, pageData{UserCode: r.URL.Query().Get("user_code")})
}

func (p *Page) render(w http.ResponseWriter, r *http.Request, status int, data pageData) {
	p.UI.Render(w, r, status, "device", "device.title", ui.Page{CSRF: p.Sessions.CSRFToken(w, r), Data: data})
}

// submit checks the typed code and sends the browser to login and
// consent. Wrong codes count as failures of the address (RFC 8628 §5.1).
func (p *Page) submit(w http.ResponseWriter, r *http.Request) {
	if !p.Pages.ParseForm(w, r) {
		return
	}
	ctx := r.Context()
	typed := r.PostForm.Get("user_code")
	// The guess is counted before the code is looked up (package
	// ratelimit), so that codes sent at once are held to the budget too.
	try, d, err := p.Guesses.Reserve(ctx, "device-ip:"+clientip.Network(clientip.Of(r)))
	if err != nil {
		p.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return
	} else if d > 0 {
		secs := ratelimit.RetrySeconds(d)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		p.render(w, r, http.StatusTooManyRequests, pageData{UserCode: typed, Error: ui.T(ui.Lang(nil, r), "device.throttled", secs)})
		return
	}
	// A right code does not clear the address's failures (an attacker may
	// hold one of its own), nor does a store error count: both release it.
	defer try.Release(ctx)
	dc, err := p.pendingCode(ctx, typed)
	if errors.Is(err, storage.ErrNotFound) {
		if _, err := try.Fail(ctx); err != nil {
			p.Pages.ErrorPage(w, r, oautherr.Wrap(err))
			return
		}
		p.render(w, r, http.StatusBadRequest, pageData{UserCode: typed, Error: ui.T(ui.Lang(nil, r), "device.unknown")})
		return
	} else if err != nil {
		p.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return
	}
	client, err := p.Store.GetClient(ctx, dc.ClientID)
	if err != nil {
		p.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return
	}
	p.Pages.Proceed(w, r, p.request(dc, client), client)
}

// pendingCode returns the pending, unexpired device code of the typed
// user code, or storage.ErrNotFound.
func (p *Page) pendingCode(ctx context.Context, typed string) (*storage.DeviceCode, error) {
	code := Normalize(typed)
	if !storage.ValidText(code) { // others match no code; a database may refuse them
		return nil, storage.ErrNotFound
	}
	dc, err := p.Store.GetDeviceCodeByUserCode(ctx, code)
	if err != nil {
		return nil, err
	}
	if dc.Status != storage.DevicePending || !p.Now().Before(dc.ExpiresAt) {
		return nil, storage.ErrNotFound
	}
	return dc, nil
}

// request is the authorization request of a device code. It always asks
// for consent: a device code may have been sent to the user by someone
// else (RFC 8628 §5.4), so remembered consent is not enough.
func (p *Page) request(dc *storage.DeviceCode, client *storage.Client) *storage.AuthRequest {
	now := p.Now()
	expires := now.Add(p.RequestTTL)
	if dc.ExpiresAt.Before(expires) {
		expires = dc.ExpiresAt
	}
	return &storage.AuthRequest{ID: ids.New(), ClientID: client.ID, RedirectURI: redirectMarker, Scopes: dc.Scopes,
		State: dc.UserCode, Prompt: "consent", MaxAge: -1, CreatedAt: now, ExpiresAt: expires}
}

// Decide records the user's answer to a device request (IsRequest) on
// the device code and tells the user to go back to the device.
func (p *Page) Decide(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, sess *storage.Session, approved bool, granted []string) {
	ctx := r.Context()
	_ = p.Store.DeleteAuthRequest(ctx, req.ID)
	err := p.Store.DecideDeviceCode(ctx, req.State, approved, sess.UserID, granted, sess.AMR, sess.AuthTime, p.Now())
	if errors.Is(err, storage.ErrNotFound) {
		p.Pages.MessagePage(w, r, http.StatusBadRequest, "device.unknown")
		return
	} else if err != nil {
		p.Pages.ErrorPage(w, r, oautherr.Wrap(err))
		return
	}
	done := "device.approved" // the consent handler recorded the approval
	if !approved {
		done = "device.denied"
		p.Audit.Record(ctx, audit.Event{Type: audit.ConsentDenied, UserID: sess.UserID, ClientID: req.ClientID, Detail: "device"})
	}
	p.render(w, r, http.StatusOK, pageData{Done: ui.T(ui.Lang(nil, r), done)})
}
