package authorize

import (
	"errors"
	"net/http"
	"strconv"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// The user side of the device flow (RFC 8628 §3.3): the user enters the
// code shown on the device, logs in, and answers the same consent screen
// as in the code flow. The request travels as a stored AuthRequest whose
// redirect URI is deviceRedirect and whose state is the user code; finish
// and deny then record the answer on the device code instead of
// redirecting.
const deviceRedirect = token.DeviceCodeGrantType

func isDevice(req *storage.AuthRequest) bool { return req.RedirectURI == deviceRedirect }

type deviceData struct {
	UserCode, Error, Done string
}

func (h *Handler) devicePage(w http.ResponseWriter, r *http.Request) {
	h.renderDevice(w, r, http.StatusOK, deviceData{UserCode: r.URL.Query().Get("user_code")})
}

func (h *Handler) renderDevice(w http.ResponseWriter, r *http.Request, status int, data deviceData) {
	h.UI.Render(w, r, status, "device", "device.title", ui.Page{CSRF: h.Sessions.CSRFToken(w, r), Data: data})
}

// deviceSubmit checks the typed code and sends the browser to login and
// consent. Wrong codes count as failures of the address: user codes are
// short enough to be guessed without a limit (RFC 8628 §5.1).
func (h *Handler) deviceSubmit(w http.ResponseWriter, r *http.Request) {
	if !h.parseForm(w, r) {
		return
	}
	ctx := r.Context()
	lang := ui.Lang(nil, r)
	typed := r.PostForm.Get("user_code")
	// The guess is counted before the code is looked up (package
	// ratelimit), so that codes sent at once are held to the budget too.
	try, d, err := h.IPFailures.Reserve(ctx, "device-ip:"+clientip.Network(clientip.Of(r)))
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	} else if d > 0 {
		secs := ratelimit.RetrySeconds(d)
		w.Header().Set("Retry-After", strconv.Itoa(secs))
		h.renderDevice(w, r, http.StatusTooManyRequests, deviceData{UserCode: typed, Error: ui.T(lang, "device.throttled", secs)})
		return
	}
	// A right code does not clear the address's failures (an attacker may
	// hold one of its own), nor does a store error count: both release it.
	defer try.Release(ctx)
	now := h.Now()
	dc, err := (*storage.DeviceCode)(nil), storage.ErrNotFound
	if code := device.Normalize(typed); storage.ValidText(code) { // others match no code; a database may refuse them
		dc, err = h.Store.GetDeviceCodeByUserCode(ctx, code)
	}
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	if err != nil || dc.Status != storage.DevicePending || !now.Before(dc.ExpiresAt) {
		if _, err := try.Fail(ctx); err != nil {
			h.errorPage(w, r, oautherr.Wrap(err))
			return
		}
		h.renderDevice(w, r, http.StatusBadRequest, deviceData{UserCode: typed, Error: ui.T(lang, "device.unknown")})
		return
	}
	client, err := h.Store.GetClient(ctx, dc.ClientID)
	if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	// Always ask: a device code may have been sent to the user by someone
	// else (RFC 8628 §5.4), so remembered consent is not enough.
	expires := now.Add(h.RequestTTL)
	if dc.ExpiresAt.Before(expires) {
		expires = dc.ExpiresAt
	}
	req := &storage.AuthRequest{ID: token.NewID(), ClientID: client.ID, RedirectURI: deviceRedirect, Scopes: dc.Scopes,
		State: dc.UserCode, Prompt: "consent", MaxAge: -1, CreatedAt: now, ExpiresAt: expires}
	h.proceed(w, r, req, client, false)
}

// decideDevice records the user's answer on the device code and tells the
// user to go back to the device.
func (h *Handler) decideDevice(w http.ResponseWriter, r *http.Request, req *storage.AuthRequest, sess *storage.Session, approved bool, granted []string) {
	ctx := r.Context()
	_ = h.Store.DeleteAuthRequest(ctx, req.ID)
	err := h.Store.DecideDeviceCode(ctx, req.State, approved, sess.UserID, granted, sess.AuthTime, h.Now())
	if errors.Is(err, storage.ErrNotFound) {
		h.pageError(w, r, http.StatusBadRequest, "device.unknown")
		return
	} else if err != nil {
		h.errorPage(w, r, oautherr.Wrap(err))
		return
	}
	done := "device.approved" // the consent handler recorded the approval
	if !approved {
		done = "device.denied"
		h.Audit.Record(ctx, audit.Event{Type: audit.ConsentDenied, UserID: sess.UserID, ClientID: req.ClientID, Detail: "device"})
	}
	h.renderDevice(w, r, http.StatusOK, deviceData{Done: ui.T(ui.Lang(nil, r), done)})
}
