package upstream

import (
	"context"
	"crypto/rand"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"html/template"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"time"

	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// Cookies of the flow: the states of authorizations sent to upstreams,
// one per sign-in started, named by a hash of its state so that sign-ins
// in two tabs do not overwrite each other's (path /upstream/{id}/); the
// list of those states, for keeping them few (path /); and a link waiting
// for the person to prove control of a local account (path /).
const (
	StatePrefix = "bawwab_upstream_state_"
	StatesIndex = "bawwab_upstream_states"
	LinkCookie  = "bawwab_upstream_link"
	// ConfirmCookie holds a link waiting for the person's confirmation
	// on ConfirmPath, after the local sign-in.
	ConfirmCookie = "bawwab_upstream_confirm"
	ConfirmPath   = "/account/security/upstream/link"
)

// Flow signs people in through the configured upstreams: one sign-in step
// per enabled upstream (Steps), and the links made after a local sign-in
// (Finished).
type Flow struct {
	// Registry is the current set of upstreams.
	Registry *Registry
	Store    storage.Storage
	// Sealer encrypts the cookies that carry the flow's state between
	// the two redirects (clientauth.NewSealer, key material of its own).
	Sealer *clientauth.Sealer
	UI     *ui.UI
	Audit  *audit.Log
	// Logouts tells a user's clients when an upstream's back-channel
	// logout ends the user's sessions.
	Logouts *backchannel.Notifier
	Log     *slog.Logger
	Now     func() time.Time
	// Secure marks the cookies Secure (an https issuer); TTL bounds the
	// time at the upstream and a link's wait for the local proof.
	Secure bool
	TTL    time.Duration
}

// Steps returns one first-factor step per enabled upstream, named
// "upstream:" and its id (signin.Pipeline.More): an upstream disabled
// or deleted has no step, so its button and its callback are gone.
func (f *Flow) Steps(ctx context.Context) ([]signin.Step, error) {
	list, err := f.Registry.Providers(ctx)
	if err != nil {
		return nil, err
	}
	var steps []signin.Step
	for _, p := range list {
		if p.On() {
			steps = append(steps, &Step{f: f, p: p})
		}
	}
	return steps, nil
}

// StepName is the sign-in step of the upstream id.
func StepName(id string) string { return "upstream:" + id }

// Step signs in through one upstream (signin.Remote).
type Step struct {
	f *Flow
	p *Provider
}

var _ signin.Remote = (*Step)(nil)

// Name is "upstream:" and the upstream's id.
func (s *Step) Name() string { return StepName(s.p.ID) }

// Kind is FirstFactor: the upstream identifies the person.
func (s *Step) Kind() signin.Kind { return signin.FirstFactor }

// Proves "fed" (RFC 8176 §2).
func (s *Step) Proves() []string { return []string{signin.AMRFed} }

// Offered to everyone: the upstream is enabled.
func (s *Step) Offered(context.Context, *signin.Attempt) (bool, error) { return true, nil }

// Label is the upstream's name in lang.
func (s *Step) Label(lang string) string { return s.p.Label(lang) }

// Icon is the button's image, if the upstream has one (signin.Iconed).
func (s *Step) Icon() template.URL { return s.p.IconURL() }

type pageData struct {
	Message, Error, Link, LinkText string
}

// Show writes the outcome of a return that proved nothing: why, and the
// way back to the login page.
func (s *Step) Show(w http.ResponseWriter, r *http.Request, a *signin.Attempt) {
	d := pageData{Link: "/login?lang=" + url.QueryEscape(a.Lang), LinkText: ui.T(a.Lang, "upstream.back")}
	if a.Request != nil {
		d.Link += "&req=" + url.QueryEscape(a.Request.ID)
	}
	args := append([]any{s.p.Label(a.Lang)}, a.MessageArgs...)
	if a.Message == "upstream.link" {
		d.Message, d.LinkText = ui.T(a.Lang, a.Message, args...), ui.T(a.Lang, "upstream.link.go")
	} else {
		d.Error = ui.T(a.Lang, a.Message, args...)
	}
	s.f.UI.Render(w, r, a.Status, "notice", "upstream.title", ui.Page{Data: d})
}

// Verify: the step proves nothing through a posted form; the pipeline
// calls Leave for a choice of it.
func (s *Step) Verify(context.Context, *http.Request, *signin.Attempt) (signin.Outcome, error) {
	return signin.Outcome{Result: signin.Failed, Message: "upstream.failed"}, nil
}

// state is what the browser carries, sealed, to the upstream and back.
type state struct {
	State, Nonce, Verifier, Req, Lang string
	Exp                               int64
}

// Leave sends the browser to the upstream with a new state, nonce and
// PKCE verifier, kept in a sealed cookie for the return.
func (s *Step) Leave(ctx context.Context, w http.ResponseWriter, r *http.Request, a *signin.Attempt) error {
	st := state{State: rand.Text(), Nonce: rand.Text(), Verifier: oauth2.GenerateVerifier(), Lang: a.Lang, Exp: s.f.Now().Add(s.f.TTL).Unix()}
	if a.Request != nil {
		st.Req = a.Request.ID
	}
	to, err := s.p.AuthCodeURL(ctx, st.State, st.Nonce, st.Verifier)
	if err != nil {
		s.f.Log.WarnContext(ctx, "upstream unavailable", "upstream", s.p.ID, "err", err)
		a.Status, a.Message = http.StatusBadGateway, "upstream.unavailable"
		s.Show(w, r, a)
		return nil
	}
	s.f.keepState(w, r, s.p.ID, st)
	http.Redirect(w, r, to, http.StatusSeeOther)
	return nil
}

// Pending returns the request the browser's state cookie names, and its
// language.
func (s *Step) Pending(r *http.Request) (req, lang string) {
	var st state
	if _, ok := s.f.openAt(r, StateCookieName(r.URL.Query().Get("state")), "state", s.p.ID, &st); !ok {
		return "", ""
	}
	return st.Req, st.Lang
}

// Return checks the upstream's authorization response: the state (the
// browser's own, unexpired, for this request, used once), an error the
// upstream sent, then the code, iss and ID token (Provider.Exchange), and
// finds or makes the local account.
func (s *Step) Return(ctx context.Context, w http.ResponseWriter, r *http.Request, a *signin.Attempt) (signin.Outcome, error) {
	q := r.URL.Query()
	var st state
	name := StateCookieName(q.Get("state"))
	exp, ok := s.f.openAt(r, name, "state", s.p.ID, &st)
	if !ok || st.Req != reqID(a) || subtle.ConstantTimeCompare([]byte(q.Get("state")), []byte(st.State)) != 1 {
		return s.refuse(ctx, "state: not this browser's", "upstream.state"), nil
	}
	if !s.f.Now().Before(exp) { // the person's own sign-in, too slow: no attack
		s.f.forgetState(w, r, s.p.ID, name)
		return s.refuseAs(ctx, "", "state: expired", "upstream.expired", audit.UpstreamDenied), nil
	}
	switch err := s.f.Store.UseOnce(ctx, "upstream-state:"+storage.Hash(st.State), time.Unix(st.Exp, 0)); {
	case errors.Is(err, storage.ErrAlreadyUsed):
		return s.refuse(ctx, "state: used before (a replay)", "upstream.state"), nil
	case err != nil:
		return signin.Outcome{}, err
	}
	s.f.forgetState(w, r, s.p.ID, name)
	if e := q.Get("error"); e != "" {
		s.f.Audit.Record(ctx, audit.Event{Type: audit.UpstreamDenied, Detail: "upstream=" + s.p.ID + "; error=" + errorCode(e)})
		if e == "access_denied" {
			return signin.Outcome{Result: signin.Failed, Message: "upstream.denied"}, nil
		}
		return signin.Outcome{Result: signin.Failed, Message: "upstream.failed"}, nil
	}
	id, err := s.p.Exchange(ctx, q, st.Verifier, st.Nonce)
	if err != nil {
		s.f.Log.WarnContext(ctx, "upstream sign-in refused", "upstream", s.p.ID, "err", err)
		return s.refuse(ctx, reason(err), "upstream.failed"), nil
	}
	out, err := s.f.account(ctx, w, a, s, id)
	if out.Result == signin.Proved && s.p.OIDC() {
		out.Upstream = &storage.UpstreamSession{Upstream: s.p.ID, Subject: id.Subject, SID: id.SID}
	}
	return out, err
}

// errorCode is an authorization response's error as the audit log keeps
// it: a code of letters, digits, '_', '-' and '.' (RFC 6749 §4.1.2.1's
// codes and the usual extensions), else "(not an error code)". The
// browser chooses the parameter: it must not plant another upstream's id,
// a line or markup in the log.
func errorCode(e string) string {
	ok := len(e) <= 40
	for _, r := range e {
		ok = ok && (r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '_' || r == '-' || r == '.')
	}
	if !ok {
		return "(not an error code)"
	}
	return e
}

// reason is the short audit detail of a refused exchange; the log has
// the whole error.
func reason(err error) string {
	switch {
	case errors.Is(err, ErrIssuer):
		return "iss: not the upstream's (RFC 9207)"
	case errors.Is(err, ErrNonce):
		return "nonce: not the one sent"
	case errors.Is(err, ErrIDToken):
		return "ID token: invalid"
	case errors.Is(err, ErrToken):
		return "token request: refused"
	}
	return "upstream answer: unusable"
}

// refuse records a refused return, an attack or a broken upstream, and
// says why on the page.
func (s *Step) refuse(ctx context.Context, why, msg string) signin.Outcome {
	return s.refuseAs(ctx, "", why, msg, audit.UpstreamRefused)
}

// refuseAs records a refused sign-in as typ.
func (s *Step) refuseAs(ctx context.Context, userID, why, msg, typ string) signin.Outcome {
	s.f.Audit.Record(ctx, audit.Event{Type: typ, UserID: userID, Detail: "upstream=" + s.p.ID + "; " + why})
	return signin.Outcome{Result: signin.Failed, Message: msg}
}

func reqID(a *signin.Attempt) string {
	if a.Request == nil {
		return ""
	}
	return a.Request.ID
}

// seal encrypts v for the cookie of kind and upstream.
func (f *Flow) seal(kind, upstream string, v any) string {
	raw, _ := json.Marshal(v)
	return f.Sealer.Seal(kind + "\x00" + upstream + "\x00" + string(raw))
}

// open reads the sealed cookie name of kind and upstream into v; a forged,
// foreign or expired cookie reads as none.
func (f *Flow) open(r *http.Request, name, kind, upstream string, v any) bool {
	exp, ok := f.openAt(r, name, kind, upstream, v)
	return ok && f.Now().Before(exp)
}

// openAt reads the sealed cookie name of kind and upstream into v and
// returns its expiry; a forged or foreign cookie reads as none.
func (f *Flow) openAt(r *http.Request, name, kind, upstream string, v any) (time.Time, bool) {
	ck, err := r.Cookie(name)
	if err != nil || ck.Value == "" {
		return time.Time{}, false
	}
	plain, err := f.Sealer.Open(ck.Value)
	if err != nil {
		return time.Time{}, false
	}
	raw, ok := strings.CutPrefix(plain, kind+"\x00"+upstream+"\x00")
	var exp struct{ Exp int64 }
	if !ok || json.Unmarshal([]byte(raw), v) != nil || json.Unmarshal([]byte(raw), &exp) != nil {
		return time.Time{}, false
	}
	return time.Unix(exp.Exp, 0), true
}

func (f *Flow) setCookie(w http.ResponseWriter, name, path, value string, maxAge int) {
	http.SetCookie(w, &http.Cookie{Name: name, Value: value, Path: path, MaxAge: maxAge, HttpOnly: true, Secure: f.Secure,
		SameSite: http.SameSiteLaxMode})
}

// newUserID is the id of a user made just in time.
func newUserID() string { return ids.New() }
