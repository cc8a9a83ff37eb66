package upstream

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// Back-channel logout from an upstream (OpenID Connect Back-Channel Logout
// 1.0, the relying party's side): an OpenID Connect upstream that signs a
// person out posts a logout token to /upstream/{id}/backchannel-logout
// (the client's backchannel_logout_uri at the upstream). bawwab validates
// it (§2.6) and ends the local sessions that came from that upstream
// session, which tells bawwab's own clients (package backchannel).

// LogoutEvent is the member of a logout token's events claim (§2.4).
const LogoutEvent = "http://schemas.openid.net/event/backchannel-logout"

// Bounds of a logout token's iat: older ones are refused (§2.6 lets the
// relying party refuse tokens issued too far from now), and a little
// clock skew is allowed.
const (
	logoutMaxAge = 5 * time.Minute
	logoutSkew   = time.Minute
)

// ErrLogoutToken wraps every reason to refuse a logout token.
var ErrLogoutToken = errors.New("upstream: invalid logout token")

// logoutAlgs are the signature algorithms a logout token's header may
// name; go-oidc then holds it to those the upstream's metadata lists.
var logoutAlgs = []jose.SignatureAlgorithm{jose.RS256, jose.RS384, jose.RS512, jose.PS256, jose.PS384, jose.PS512,
	jose.ES256, jose.ES384, jose.ES512, jose.EdDSA}

// LogoutToken is what a valid logout token says.
type LogoutToken struct {
	Session storage.UpstreamSession
	JTI     string
	Expiry  time.Time
}

// logoutClaims are the claims §2.6 checks beyond those of an ID token.
type logoutClaims struct {
	Events map[string]json.RawMessage `json:"events"`
	Nonce  *json.RawMessage           `json:"nonce"`
	SID    string                     `json:"sid"`
	JTI    string                     `json:"jti"`
}

// logoutError is a refused logout token: a short public reason, and the
// cause for the log.
type logoutError struct {
	reason string
	cause  error
}

func (e *logoutError) Error() string {
	if e.cause != nil {
		return e.reason + ": " + e.cause.Error()
	}
	return e.reason
}

func (e *logoutError) Is(target error) bool { return target == ErrLogoutToken }

func (e *logoutError) Unwrap() error { return e.cause }

func logoutRefused(reason string) error { return &logoutError{reason: reason} }

// verifyRefused names what go-oidc's ID token checks refused, without
// echoing what the token says.
func verifyRefused(err error) error {
	var expired *oidc.TokenExpiredError
	reason := "not signed by the upstream's keys"
	switch msg := err.Error(); {
	case errors.As(err, &expired):
		reason = "expired (exp)"
	case strings.Contains(msg, "different provider"):
		reason = "iss is not the upstream's"
	case strings.Contains(msg, "audience"):
		reason = "aud is not bawwab's client id"
	case strings.Contains(msg, "malformed") || strings.Contains(msg, "parse"):
		reason = "not a JWT"
	}
	return &logoutError{reason: reason, cause: err}
}

// VerifyLogoutToken validates a logout token from this upstream (§2.6):
// its type, when its header names one, is logout+jwt (or the generic JWT
// of older providers); its signature is by the upstream's keys, iss is
// the upstream's, aud is bawwab's client id, exp has not passed (as for an
// ID token), iat is recent; events has the back-channel logout member
// (an object); there is no nonce (an ID token posted as a logout token
// fails here); it names sub, sid or both, and has a jti.
func (p *Provider) VerifyLogoutToken(ctx context.Context, raw string) (LogoutToken, error) {
	if !p.OIDC() {
		return LogoutToken{}, logoutRefused("not an OpenID Connect upstream")
	}
	sig, err := jose.ParseSignedCompact(raw, logoutAlgs)
	if err != nil || len(sig.Signatures) != 1 {
		return LogoutToken{}, logoutRefused("not a signed JWT")
	}
	if typ, _ := sig.Signatures[0].Protected.ExtraHeaders[jose.HeaderType].(string); !logoutType(typ) {
		return LogoutToken{}, logoutRefused("its typ is not logout+jwt")
	}
	d, err := p.discover(ctx)
	if err != nil {
		return LogoutToken{}, err
	}
	idt, err := d.verifier.Verify(p.ctx(ctx), raw)
	if err != nil {
		return LogoutToken{}, verifyRefused(err)
	}
	var c logoutClaims
	if err := idt.Claims(&c); err != nil {
		return LogoutToken{}, &logoutError{reason: "claims of the wrong types", cause: err}
	}
	if err := p.checkLogoutClaims(idt.IssuedAt, idt.Subject, c); err != nil {
		return LogoutToken{}, err
	}
	return LogoutToken{Session: storage.UpstreamSession{Upstream: p.ID, Subject: idt.Subject, SID: c.SID}, JTI: c.JTI, Expiry: idt.Expiry}, nil
}

// logoutType reports whether a JWT header's typ (RFC 7515 §4.1.9, with
// or without "application/") may be a logout token's.
func logoutType(typ string) bool {
	return slices.Contains([]string{"", "JWT", "logout+jwt", "application/logout+jwt"}, typ)
}

// checkLogoutClaims checks what §2.6 asks of a logout token beyond an ID
// token's checks.
func (p *Provider) checkLogoutClaims(iat time.Time, sub string, c logoutClaims) error {
	now := p.Now()
	switch ev, ok := c.Events[LogoutEvent]; {
	case !ok:
		return logoutRefused("events has no logout event")
	case len(ev) == 0 || ev[0] != '{':
		return logoutRefused("its logout event is no object")
	case c.Nonce != nil:
		return logoutRefused("it has a nonce")
	case sub == "" && c.SID == "":
		return logoutRefused("it names neither sub nor sid")
	case c.JTI == "":
		return logoutRefused("it has no jti")
	case iat.IsZero() || iat.Before(now.Add(-logoutMaxAge)) || iat.After(now.Add(logoutSkew)):
		return logoutRefused("iat is not recent")
	}
	return nil
}

// Register adds the upstreams' back-channel logout endpoint to mux.
func (f *Flow) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /upstream/{id}/backchannel-logout", f.backchannelLogout)
}

// provider returns the enabled OpenID Connect upstream id, or nil.
func (f *Flow) provider(ctx context.Context, id string) (*Provider, error) {
	p, err := f.Registry.Lookup(ctx, id)
	if p == nil || !p.On() || !p.OIDC() {
		return nil, err
	}
	return p, nil
}

// backchannelLogout answers an upstream's logout token (§2.7, §2.8): 200
// once the sessions of its upstream session are ended, 400 with an error
// for a token that is not valid, or used before.
func (f *Flow) backchannelLogout(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	p, err := f.provider(ctx, r.PathValue("id"))
	if err != nil {
		oautherr.Write(w, oautherr.Wrap(err), "")
		return
	}
	if p == nil {
		oautherr.Write(w, oautherr.New(oautherr.InvalidRequest, "no OpenID Connect upstream is enabled under this id"), "")
		return
	}
	r.Body = http.MaxBytesReader(w, r.Body, 64<<10)
	if err := r.ParseForm(); err != nil || r.PostForm.Get("logout_token") == "" {
		oautherr.Write(w, oautherr.New(oautherr.InvalidRequest, "the request must post a logout_token form parameter"), "")
		return
	}
	_, err = f.logout(ctx, p, r.PostForm.Get("logout_token"))
	switch {
	case errors.Is(err, ErrLogoutToken), errors.Is(err, storage.ErrAlreadyUsed):
		f.Log.WarnContext(ctx, "upstream logout token refused", "upstream", p.ID, "err", err.Error())
		f.Audit.Record(ctx, audit.Event{Type: audit.UpstreamRefused, Detail: "upstream=" + p.ID + "; back-channel logout: " + logoutReason(err)})
		oautherr.Write(w, oautherr.New(oautherr.InvalidRequest, "the logout token is not valid: "+logoutReason(err)), "")
		return
	case err != nil:
		oautherr.WriteLogged(ctx, f.Log, w, "upstream back-channel logout", oautherr.Wrap(err))
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

// logoutReason is the short, public reason of a refused logout token.
func logoutReason(err error) string {
	var le *logoutError
	switch {
	case errors.Is(err, storage.ErrAlreadyUsed):
		return "its jti was used before (a replay)"
	case errors.As(err, &le):
		return le.reason
	}
	return "invalid"
}

// logout validates raw, spends its jti and ends the sessions of its
// upstream session, telling their users' clients; it returns how many
// sessions ended.
func (f *Flow) logout(ctx context.Context, p *Provider, raw string) (int, error) {
	lt, err := p.VerifyLogoutToken(ctx, raw)
	if err != nil {
		if !errors.Is(err, ErrLogoutToken) { // the upstream's metadata could not be read
			return 0, &logoutError{reason: "the upstream's keys are unavailable", cause: err}
		}
		return 0, err
	}
	until := lt.Expiry
	if least := f.Now().Add(logoutMaxAge + logoutSkew); until.Before(least) {
		until = least // as long as its iat is accepted
	}
	if err := f.Store.UseOnce(ctx, "upstream-logout:"+storage.Hash(p.ID+"\x00"+lt.JTI), until); err != nil {
		return 0, err
	}
	if lt.Session.SID != "" { // before ending sessions: see session.ErrUpstreamEnded
		if err := f.Store.RevokeToken(ctx, lt.Session.Ended(), f.Now().Add(f.TTL+time.Minute)); err != nil {
			return 0, err
		}
	}
	ended, err := f.Store.DeleteUpstreamSessions(ctx, lt.Session)
	if err != nil {
		return 0, err
	}
	users := map[string]int{}
	for _, s := range ended {
		users[s.UserID]++
	}
	for u, n := range users {
		f.Audit.Record(ctx, audit.Event{Type: audit.UpstreamLogout, UserID: u, Detail: "upstream=" + p.ID + "; sessions=" + strconv.Itoa(n)})
		f.Logouts.LoggedOut(ctx, u)
	}
	return len(ended), nil
}
