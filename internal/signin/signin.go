// Package signin is sign-in as a pipeline of steps: each step shows a page,
// verifies what the person sends back, and proves something about them,
// named as RFC 8176 authentication method references (amr). A [Policy]
// decides which kinds of step a request still needs (a first factor
// always; a second factor when the operator, the client, a sensitive
// scope, acr_values, an essential acr claim or max_age demands it), and a
// [Pipeline] picks the next step, drives it, and returns a [Record] of what
// was proved and when (amr, acr, auth_time) once nothing more is needed.
//
// The login handler knows no step by name: it builds an [Attempt] for the
// pending authorization request, asks the pipeline to show the next step
// (GET /login) or to verify the one posted (POST /login), and starts a
// session when the pipeline returns a Record. Password sign-in
// ([Password]) is the first member; one-time codes, recovery codes,
// passkeys, upstream identity providers and step-up join as further steps.
//
// # Adding a step
//
// A step implements [Step]. A one-time code second factor, for example:
//
//	type TOTP struct{ Store storage.Storage; UI *ui.UI }
//
//	func (TOTP) Name() string      { return "totp" }
//	func (TOTP) Kind() signin.Kind { return signin.SecondFactor }
//	func (TOTP) Proves() []string  { return []string{signin.AMROTP} }
//
//	// Offered: only to people who enrolled an authenticator.
//	func (s TOTP) Offered(ctx context.Context, a *signin.Attempt) (bool, error) {
//		return s.Store.HasTOTP(ctx, a.User.ID)
//	}
//	func (s TOTP) Show(w http.ResponseWriter, r *http.Request, a *signin.Attempt) {
//		s.UI.Render(w, r, a.Status, "totp", "totp.title", ui.Page{CSRF: a.CSRF, Data: a})
//	}
//	func (s TOTP) Verify(ctx context.Context, r *http.Request, a *signin.Attempt) (signin.Outcome, error) {
//		if !s.check(ctx, a.User.ID, r.PostForm.Get("code")) {
//			return signin.Outcome{Result: signin.Failed, Message: "totp.failed"}, nil
//		}
//		return signin.Outcome{Result: signin.Proved}, nil
//	}
//
// and is registered beside the password, with somewhere to keep what the
// first step proved until the second is passed ([CookieProgress]):
//
//	&signin.Pipeline{Policy: policy, Steps: []signin.Step{password, totp},
//		Progress: &signin.CookieProgress{Key: key, TTL: 10 * time.Minute, Now: now, Users: store}, Now: now}
//
// The login handler does not change.
//
// # Step-up
//
// A session keeps the Record's amr and auth_time. [SessionProofs] turns
// them back into proofs, and [Pipeline.Check] tells whether they meet a
// request (nil), which step is missing, or that the person has no second
// factor to pass ([ErrNoStep]). The login handler starts an Attempt from
// the session (Attempt.SessionUser), so that a session short of a second
// factor is asked only for it, and one too old for max_age or prompt=login
// for its first factor again.
//
// What this package does not do: it does not read or write the browser
// session (the caller starts one from the Record), and it does not render
// consent.
package signin

import (
	"context"
	"html/template"
	"net/http"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Authentication method references (RFC 8176 §2) that steps prove.
const (
	AMRPassword = "pwd" // a password
	AMROTP      = "otp" // a one-time password (TOTP, recovery code)
	AMRHardware = "hwk" // proof of possession of a hardware key (a passkey on a security key)
	AMRSoftware = "swk" // proof of possession of a software key (a synced passkey)
	AMRFed      = "fed" // federated: an upstream identity provider vouched for the person
	AMRMFA      = "mfa" // more than one factor (RFC 8176 §2: added when two kinds were proved)
)

// Authentication context classes (OpenID Connect Core §2, acr) that bawwab
// reaches: a single factor, or more than one.
const (
	ACRPassword = "urn:bawwab:acr:password"
	ACRMFA      = "urn:bawwab:acr:mfa"
)

// Kind is the place of a step in sign-in.
type Kind int

const (
	// FirstFactor identifies the person: a password, a passkey, an
	// upstream identity provider. It sets [Attempt.User].
	FirstFactor Kind = iota + 1
	// SecondFactor proves more about a person already identified: a
	// one-time code, a recovery code, a passkey used as second factor.
	SecondFactor
)

// String returns "first" or "second".
func (k Kind) String() string {
	switch k {
	case FirstFactor:
		return "first"
	case SecondFactor:
		return "second"
	}
	return "unknown"
}

// Step is one way to prove something at sign-in.
type Step interface {
	// Name identifies the step in forms, logs and the audit trail
	// ("password", "totp").
	Name() string
	// Kind says whether the step identifies the person or proves more
	// about one already identified.
	Kind() Kind
	// Proves lists the RFC 8176 amr values a success proves.
	Proves() []string
	// Offered reports whether the step can be used for a: a second
	// factor the person never enrolled is not offered.
	Offered(ctx context.Context, a *Attempt) (bool, error)
	// Show writes the step's page (its form) with status a.Status and,
	// when set, the message a.Message.
	Show(w http.ResponseWriter, r *http.Request, a *Attempt)
	// Verify checks what the person posted (r.PostForm is parsed and its
	// CSRF token checked). A first factor that proves sets Outcome.User.
	// An error is a failure of the server (a store), not of the person.
	Verify(ctx context.Context, r *http.Request, a *Attempt) (Outcome, error)
}

// Remote is a first factor proved elsewhere: at an upstream identity
// provider (package upstream). Posting its choice on the login form makes
// the pipeline call Leave, which sends the browser away; the browser's
// return goes to [Pipeline.Return], which calls Return instead of Verify.
type Remote interface {
	Step
	// Label is the step's name on the login page's button, in lang.
	Label(lang string) string
	// Leave writes the response that sends the browser to prove itself.
	Leave(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt) error
	// Pending returns the id of the authorization request a browser
	// returning with r left for ("" for a sign-in to the account pages,
	// or when r carries nothing valid: Return then refuses it), and the
	// language its pages spoke.
	Pending(r *http.Request) (req, lang string)
	// Return checks the proof the browser brought back.
	Return(ctx context.Context, w http.ResponseWriter, r *http.Request, a *Attempt) (Outcome, error)
}

// Option is another way to prove the factor a page asks for: a [Remote]
// step, shown as a button.
type Option struct {
	Step, Label string
	// Icon is the button's image, when the step has one ([Iconed]).
	Icon template.URL
}

// Iconed is a [Remote] whose button shows an image: a path on this
// server, an https URL or a data: URI, checked by whoever configured it.
type Iconed interface {
	Icon() template.URL
}

// Result is how a step's verification ended.
type Result int

const (
	// Proved: the step's amr values hold for the person.
	Proved Result = iota + 1
	// Failed: the person sent something wrong; the step is shown again
	// with Outcome.Message.
	Failed
	// Throttled: too many failures; the person must wait Outcome.Retry.
	Throttled
)

// Outcome is the result of [Step.Verify].
type Outcome struct {
	Result Result
	// User is the person a first factor identified.
	User *storage.User
	// Message is the UI catalog key shown with a failure; Args fill it in.
	Message string
	Args    []any
	// Retry is how long a throttled person must wait.
	Retry time.Duration
	// Upstream is the session at an upstream identity provider that a
	// remote first factor proved, for the local session to keep.
	Upstream *storage.UpstreamSession
}

// Proof records that a step proved its amr values at a time.
type Proof struct {
	Step string
	Kind Kind
	AMR  []string
	At   time.Time
	// Upstream is the upstream session the step proved through, if any.
	Upstream *storage.UpstreamSession `json:",omitempty"`
}

// Attempt is one person's way through sign-in for one request.
type Attempt struct {
	// Request is the pending authorization request, or nil for a
	// sign-in to the account pages; Client is its client.
	Request *storage.AuthRequest
	Client  *storage.Client
	// User is the person identified by a first factor, nil before.
	User *storage.User
	// SessionUser is the user of the browser's session when the attempt
	// started from it (SessionProofs): proofs carried over from a session
	// count only while that session is the same person's.
	SessionUser string
	// Proved lists what was proved so far, in order.
	Proved []Proof
	// Choice names the step the person picked among those offered for
	// the kind needed (the form's "step" field); empty takes the first.
	Choice string
	// Lang is the language the pages speak.
	Lang string
	// CSRF is the form token for the page a step shows (package session),
	// set by the caller before any page is written.
	CSRF string
	// Status and Message are what the shown page says: 200 and nothing
	// at first, 401 and a failure, 429 and a wait.
	Status  int
	Message string
	// MessageArgs fill in Message (the seconds to wait).
	MessageArgs []any
	// Elsewhere lists the remote steps offered beside the one shown
	// ("Continue with …" buttons), set by the pipeline.
	Elsewhere []Option
}

// Record is what a finished sign-in proved: what the session keeps and
// ID tokens carry (OpenID Connect Core §2: amr, acr, auth_time).
type Record struct {
	UserID string
	// Steps names the steps passed, in order ("password").
	Steps []string
	// AMR are the RFC 8176 values proved, with "mfa" when more than one
	// kind of factor was.
	AMR []string
	// ACR is the authentication context class reached.
	ACR string
	// AuthTime is when the person last proved a first factor.
	AuthTime time.Time
	// Upstream is the upstream session a first factor proved through,
	// if any: the local session keeps it (its back-channel logout ends it).
	Upstream storage.UpstreamSession
	// Request is the id of the downstream request signed in for, if any.
	Request string
	// Then, when set by Pipeline.Finished, is the page the browser goes
	// to before the request (package upstream's link confirmation).
	Then string
}
