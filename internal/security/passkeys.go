package security

import (
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// ceremonyCookie carries the sealed state of a passkey ceremony from its
// options to its response.
const ceremonyCookie = "bawwab_webauthn"

// maxCredentialJSON bounds a posted WebAuthn response.
const maxCredentialJSON = 64 << 10

// registerPasskeys adds the passkey routes: registration and management
// on the Security page, and passwordless sign-in beside the login form.
// Each is a form POST with the CSRF token; the page's script
// (static/passkey.js) calls the browser's WebAuthn API in between.
func (h *Handler) registerPasskeys(mux *http.ServeMux) {
	mux.HandleFunc("POST /account/security/passkeys/begin", h.passkeyBegin)
	mux.HandleFunc("POST /account/security/passkeys/finish", h.passkeyFinish)
	mux.HandleFunc("POST /account/security/passkeys/rename", h.passkeyRename)
	mux.HandleFunc("POST /account/security/passkeys/delete", h.passkeyDelete)
	mux.HandleFunc("POST /login/passkey/begin", h.loginBegin)
	mux.HandleFunc("POST /login/passkey/finish", h.loginFinish)
}

// passkeys fills in the user's passkeys when they are offered.
func (h *Handler) passkeys(r *http.Request, u *storage.User, d *pageData) error {
	if h.Passkeys == nil {
		return nil
	}
	d.PasskeysOn = true
	keys, err := h.Store.ListPasskeys(r.Context(), u.ID)
	if err != nil {
		return err
	}
	for _, k := range keys {
		v := passkeyView{ID: k.ID, Name: k.Name, Created: date(k.CreatedAt)}
		if !k.LastUsedAt.IsZero() {
			v.LastUsed = date(k.LastUsedAt)
		}
		d.Passkeys = append(d.Passkeys, v)
	}
	return nil
}

func (h *Handler) setCeremony(w http.ResponseWriter, r *http.Request, state string) {
	setCeremony(w, r, h.Issuer, state)
}

// setCeremony gives the browser the sealed state of a ceremony.
func setCeremony(w http.ResponseWriter, r *http.Request, issuer, state string) {
	http.SetCookie(w, &http.Cookie{Name: ceremonyCookie, Value: state, Path: "/", MaxAge: 300, HttpOnly: true,
		Secure: r.TLS != nil || strings.HasPrefix(issuer, "https://"), SameSite: http.SameSiteStrictMode})
}

func (h *Handler) ceremony(w http.ResponseWriter, r *http.Request) string { return ceremony(w, r) }

// ceremony returns the ceremony state of r and clears the cookie.
func ceremony(w http.ResponseWriter, r *http.Request) string {
	c, err := r.Cookie(ceremonyCookie)
	http.SetCookie(w, &http.Cookie{Name: ceremonyCookie, Value: "", Path: "/", MaxAge: -1, HttpOnly: true, SameSite: http.SameSiteStrictMode})
	if err != nil || len(c.Value) > 8<<10 {
		return ""
	}
	return c.Value
}

// jsonAnswer is what the page's script reads: where to go next, or a
// message to show in the page's language.
type jsonAnswer struct {
	Next    string `json:"next,omitempty"`
	Message string `json:"message,omitempty"`
}

func writeJSON(w http.ResponseWriter, status int, v any) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_ = json.NewEncoder(w).Encode(v)
}

// jsonForm parses a form posted by the script and checks its CSRF token;
// on failure it answers with JSON and returns false.
func (h *Handler) jsonForm(w http.ResponseWriter, r *http.Request) bool {
	r.Body = http.MaxBytesReader(w, r.Body, maxCredentialJSON+4<<10)
	if err := r.ParseForm(); err != nil {
		writeJSON(w, http.StatusBadRequest, jsonAnswer{Message: ui.T(ui.Lang(nil, r), "passkey.failed")})
		return false
	}
	if !h.Sessions.CheckCSRF(r) {
		h.Audit.Record(r.Context(), audit.Event{Type: audit.CSRFRejected, Detail: "path=" + r.URL.Path})
		writeJSON(w, http.StatusForbidden, jsonAnswer{Message: ui.T(ui.Lang(nil, r), "csrf.failed")})
		return false
	}
	return true
}

// jsonFail answers a failed ceremony: the person's (400, or 409 for a
// passkey that seems cloned) or the server's (503 while the store is out
// of reach, 500 otherwise).
func (h *Handler) jsonFail(w http.ResponseWriter, r *http.Request, userID string, err error) {
	lang := ui.Lang(nil, r)
	switch {
	case errors.Is(err, factors.ErrCloned):
		h.Audit.Record(r.Context(), audit.Event{Type: audit.PasskeyCounterBack, UserID: userID, Detail: "signature counter did not grow"})
		writeJSON(w, http.StatusConflict, jsonAnswer{Message: ui.T(lang, "passkey.failed")})
	case errors.Is(err, factors.ErrReplayed):
		h.Audit.Record(r.Context(), audit.Event{Type: audit.FactorReplay, UserID: userID, Detail: "passkey response replayed"})
		writeJSON(w, http.StatusBadRequest, jsonAnswer{Message: ui.T(lang, "passkey.failed")})
	case errors.Is(err, session.ErrDisabled):
		h.Audit.Record(r.Context(), audit.Event{Type: audit.LoginFailed, UserID: userID, Detail: "method=passkey; account disabled"})
		writeJSON(w, http.StatusForbidden, jsonAnswer{Message: ui.T(lang, "login.disabled")})
	case errors.Is(err, factors.ErrCeremony), errors.Is(err, factors.ErrNotEnrolled):
		h.Log.InfoContext(r.Context(), "passkey ceremony failed", "user_id", userID, "err", err)
		writeJSON(w, http.StatusBadRequest, jsonAnswer{Message: ui.T(lang, "passkey.failed")})
	default:
		e := oautherr.From(oautherr.Wrap(err))
		if e.Code == oautherr.TemporarilyUnavailable {
			writeJSON(w, http.StatusServiceUnavailable, jsonAnswer{Message: ui.T(lang, "unavailable.message")})
			return
		}
		h.Log.ErrorContext(r.Context(), "passkey ceremony failed", "err", err)
		writeJSON(w, http.StatusInternalServerError, jsonAnswer{Message: ui.T(lang, "passkey.failed")})
	}
}

// signedIn returns the user of r's session for a script's request, when
// the session may manage its factors (mayManage), or answers 401 or 403.
func (h *Handler) signedIn(w http.ResponseWriter, r *http.Request) *storage.User {
	sess, err := h.Sessions.Current(r.Context(), r)
	if err != nil {
		if errors.Is(err, storage.ErrUnavailable) {
			h.jsonFail(w, r, "", err)
			return nil
		}
		writeJSON(w, http.StatusUnauthorized, jsonAnswer{Next: "/login"})
		return nil
	}
	u, err := h.Store.GetUser(r.Context(), sess.UserID)
	if err != nil {
		h.jsonFail(w, r, sess.UserID, err)
		return nil
	}
	if !h.managesJSON(w, r, sess, u) {
		return nil
	}
	return u
}

func (h *Handler) passkeyBegin(w http.ResponseWriter, r *http.Request) {
	if !h.jsonForm(w, r) {
		return
	}
	u := h.signedIn(w, r)
	if u == nil {
		return
	}
	options, state, err := h.Passkeys.BeginRegistration(r.Context(), u)
	if err != nil {
		h.jsonFail(w, r, u.ID, err)
		return
	}
	h.setCeremony(w, r, state)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(options)
}

// passkeyName is the person's label for a passkey: trimmed, at most 64
// characters, valid text.
func passkeyName(s string) string {
	s = strings.TrimSpace(s)
	if !storage.ValidText(s) {
		return ""
	}
	if utf8.RuneCountInString(s) > 64 {
		s = string([]rune(s)[:64])
	}
	return s
}

func (h *Handler) passkeyFinish(w http.ResponseWriter, r *http.Request) {
	if !h.jsonForm(w, r) {
		return
	}
	u := h.signedIn(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	pk, err := h.Passkeys.FinishRegistration(ctx, u, h.ceremony(w, r), r.PostForm.Get("credential"), passkeyName(r.PostForm.Get("name")))
	if err != nil {
		h.jsonFail(w, r, u.ID, err)
		return
	}
	h.event(ctx, u.ID, audit.PasskeyAdded, "name="+oautherr.Clip(pk.Name))
	writeJSON(w, http.StatusOK, jsonAnswer{Next: "/account/security?done=security.passkey.added&" + ui.LocalesParam + "=" + ui.Lang(nil, r)})
}

func (h *Handler) passkeyRename(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	name := passkeyName(r.PostForm.Get("name"))
	if name == "" {
		h.render(w, r, http.StatusBadRequest, sess, u, pageData{Error: "passkey.name.empty"})
		return
	}
	err := h.Store.RenamePasskey(r.Context(), u.ID, r.PostForm.Get("id"), name)
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if err == nil {
		h.Audit.Record(r.Context(), audit.Event{Type: audit.PasskeyRenamed, UserID: u.ID, Detail: "name=" + oautherr.Clip(name)})
	}
	done(w, r, "security.passkey.renamed")
}

func (h *Handler) passkeyDelete(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil || !h.manages(w, r, sess, u) {
		return
	}
	// Another user's passkey is as unknown as one that does not exist.
	// The only way in left stays (the store checks, in the same step as
	// the delete, for a password, another passkey or an upstream link).
	err := h.Store.RemovePasskey(r.Context(), u.ID, r.PostForm.Get("id"))
	switch {
	case errors.Is(err, storage.ErrLastWayIn):
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.passkey.last"})
		return
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	if err == nil {
		h.event(r.Context(), u.ID, audit.PasskeyRemoved, "")
	}
	done(w, r, "security.passkey.removed")
}

// loginBegin starts a passwordless sign-in: any passkey of this server
// may answer (discoverable credentials), offered in the user name field
// where the browser supports conditional mediation.
func (h *Handler) loginBegin(w http.ResponseWriter, r *http.Request) {
	if !h.jsonForm(w, r) {
		return
	}
	options, state, err := h.Passkeys.BeginLogin(r.Context(), nil)
	if err != nil {
		h.jsonFail(w, r, "", err)
		return
	}
	h.setCeremony(w, r, state)
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "no-store")
	_, _ = w.Write(options)
}

// loginFinish verifies a passwordless sign-in and starts the session. The
// passkey verified the user (a PIN or biometric): possession and a second
// factor at once.
func (h *Handler) loginFinish(w http.ResponseWriter, r *http.Request) {
	if !h.jsonForm(w, r) {
		return
	}
	ctx := r.Context()
	req := r.PostForm.Get("req")
	if req != "" {
		if _, err := h.Store.GetAuthRequest(ctx, req); err != nil {
			if errors.Is(err, storage.ErrNotFound) {
				writeJSON(w, http.StatusBadRequest, jsonAnswer{Message: ui.T(ui.Lang(nil, r), "request.expired")})
				return
			}
			h.jsonFail(w, r, "", err)
			return
		}
	}
	u, pk, err := h.Passkeys.FinishLogin(ctx, nil, h.ceremony(w, r), r.PostForm.Get("credential"))
	if err != nil {
		h.jsonFail(w, r, "", err)
		return
	}
	if _, err := h.Sessions.LoginWith(ctx, w, r, u.ID, factors.AMR(pk)); err != nil {
		h.jsonFail(w, r, u.ID, err)
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.Login, UserID: u.ID, Detail: "method=passkey; passkey=" + oautherr.Clip(pk.Name)})
	next := "/account"
	if req != "" {
		next = "/consent?req=" + url.QueryEscape(req)
	}
	writeJSON(w, http.StatusOK, jsonAnswer{Next: next + sep(next) + ui.LocalesParam + "=" + ui.Lang(nil, r)})
}

func sep(u string) string {
	if strings.Contains(u, "?") {
		return "&"
	}
	return "?"
}
