// Package oautherr defines the single OAuth 2.0 error type used by every
// bawwab endpoint, and the one function that writes it.
//
// The wire format follows RFC 6749 §5.2 (token endpoint), §4.1.2.1
// (authorization endpoint, redirected) and RFC 6750 §3 (protected resources).
package oautherr

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/bawwab/bawwab/internal/storage"
)

// Error codes from RFC 6749 §4.1.2.1 and §5.2, RFC 6750 §3.1, RFC 7009 §2.2.1
// and OpenID Connect Core §3.1.2.6.
const (
	InvalidRequest          = "invalid_request"
	InvalidClient           = "invalid_client"
	InvalidGrant            = "invalid_grant"
	UnauthorizedClient      = "unauthorized_client"
	UnsupportedGrantType    = "unsupported_grant_type"
	UnsupportedResponseType = "unsupported_response_type"
	UnsupportedTokenType    = "unsupported_token_type"
	InvalidScope            = "invalid_scope"
	AccessDenied            = "access_denied"
	ServerError             = "server_error"
	TemporarilyUnavailable  = "temporarily_unavailable"
	InvalidToken            = "invalid_token"
	InsufficientScope       = "insufficient_scope"
	LoginRequired           = "login_required"
	ConsentRequired         = "consent_required"
	InteractionRequired     = "interaction_required"
	SlowDown                = "slow_down"
	AuthorizationPending    = "authorization_pending" // RFC 8628 §3.5
	ExpiredToken            = "expired_token"         // RFC 8628 §3.5
	InvalidTarget           = "invalid_target"        // RFC 8707 §2
	RequestURINotSupported  = "request_uri_not_supported"
	// InsufficientUserAuthentication: the token's sign-in is weaker or
	// older than the resource wants (RFC 9470 §3).
	InsufficientUserAuthentication = "insufficient_user_authentication"
)

// Error is an OAuth 2.0 error response. Description is shown to the client and
// must not contain internals; the private cause is only logged.
type Error struct {
	Code        string
	Description string
	URI         string
	// Status is the HTTP status; zero means the default for Code.
	Status int
	// RetryAfter, when positive, is sent as a Retry-After header (seconds).
	RetryAfter int
	cause      error
}

// New returns an error with the given code and description.
func New(code, description string) *Error {
	return &Error{Code: code, Description: description}
}

// Newf is New with a formatted description.
func Newf(code, format string, args ...any) *Error {
	return &Error{Code: code, Description: fmt.Sprintf(format, args...)}
}

// Wrap returns a server_error that hides cause from the client, or, when
// cause is an outage of the store (storage.ErrUnavailable), the
// temporarily_unavailable error of Unavailable.
func Wrap(cause error) *Error {
	if errors.Is(cause, storage.ErrUnavailable) {
		return Unavailable(cause)
	}
	return &Error{Code: ServerError, Description: "the server could not complete the request", cause: cause}
}

// RetryAfterUnavailable is the Retry-After, in seconds, of a
// temporarily_unavailable answer: outages of the store are usually short
// (a failover, a restart), so clients may try again soon.
const RetryAfterUnavailable = 2

// Unavailable is the answer while the store cannot serve: the
// temporarily_unavailable code of RFC 6749 §4.1.2.1, sent by the JSON
// endpoints as 503 Service Unavailable with Retry-After (RFC 9110
// §10.2.3), so that clients and load balancers tell an outage, which
// passes, from a bug. cause is kept for logs.
func Unavailable(cause error) *Error {
	return &Error{Code: TemporarilyUnavailable, Status: http.StatusServiceUnavailable, RetryAfter: RetryAfterUnavailable,
		Description: "the server is temporarily unable to handle the request; try again shortly", cause: cause}
}

// WithCause returns a copy of e that carries cause for logs.
func (e *Error) WithCause(cause error) *Error {
	c := *e
	c.cause = cause
	return &c
}

func (e *Error) Error() string {
	s := e.Code
	if e.Description != "" {
		s += ": " + e.Description
	}
	if e.cause != nil {
		s += ": " + e.cause.Error()
	}
	return s
}

// Unwrap returns the private cause.
func (e *Error) Unwrap() error { return e.cause }

// Is reports whether target is an *Error with the same Code, so that
// errors.Is(err, oautherr.New(oautherr.InvalidGrant, "")) matches by code.
// ErrMissingToken is a case rather than a code: only itself matches it.
func (e *Error) Is(target error) bool {
	var t *Error
	if !errors.As(target, &t) {
		return false
	}
	if t == ErrMissingToken {
		return e == ErrMissingToken
	}
	return t.Code == e.Code
}

// HTTPStatus is the status this error is written with.
func (e *Error) HTTPStatus() int {
	if e.Status != 0 {
		return e.Status
	}
	switch e.Code {
	case InvalidClient, InvalidToken, InsufficientUserAuthentication:
		return http.StatusUnauthorized
	case InsufficientScope, AccessDenied:
		return http.StatusForbidden
	case ServerError:
		return http.StatusInternalServerError
	case TemporarilyUnavailable:
		return http.StatusServiceUnavailable
	case SlowDown:
		return http.StatusTooManyRequests
	}
	return http.StatusBadRequest
}

// From converts any error into an *Error; errors that are not already one
// become a server_error whose cause is kept private. This is the one
// mapping of outages: any error that wraps storage.ErrUnavailable (and is
// not already a more specific OAuth error) becomes temporarily_unavailable,
// so that handlers need no case of their own for it.
func From(err error) *Error {
	var e *Error
	if errors.As(err, &e) {
		if e.Code == ServerError && errors.Is(e, storage.ErrUnavailable) {
			return Unavailable(e.cause)
		}
		return e
	}
	return Wrap(err)
}

// Code returns the OAuth error code of err, or "" when err is not an *Error.
func Code(err error) string {
	var e *Error
	if errors.As(err, &e) {
		return e.Code
	}
	return ""
}

// Clip shortens a client-chosen string before it is quoted in a
// description or the audit log, so that both stay small. It cuts between
// characters, never inside one, and replaces invalid UTF-8 and NUL, which
// a database's text column refuses. The writers make what is left fit
// the error_description grammar (see Sanitize).
func Clip(s string) string {
	s = strings.ToValidUTF8(strings.ReplaceAll(s, "\x00", "\uFFFD"), "\uFFFD")
	if len(s) <= 40 {
		return s
	}
	cut := 40
	for cut > 0 && !utf8.RuneStart(s[cut]) {
		cut--
	}
	return s[:cut] + "..."
}

// Sanitize returns s in the grammar RFC 6749 §4.1.2.1 and §5.2 (and RFC
// 6750 §3) allow for error_description:
//
//	error-description = 1*( %x20-21 / %x23-5B / %x5D-7E )
//
// "§" becomes "section", "…" becomes "...", a double quote a single one,
// a backslash a slash, white space a space, and any other character
// outside the grammar (a control character, or non-ASCII echoed from a
// request) a question mark. Every writer in this package applies it, so a
// description is safe whatever a caller put in it.
func Sanitize(s string) string {
	var b strings.Builder
	b.Grow(len(s))
	for i, r := range s {
		switch {
		case r == '§':
			b.WriteString("section")
			if next := s[i+len("§"):]; next != "" && next[0] != ' ' {
				b.WriteByte(' ')
			}
		case r == '…':
			b.WriteString("...")
		case r == '"':
			b.WriteByte('\'')
		case r == '\\':
			b.WriteByte('/')
		case r == '\t' || r == '\n' || r == '\r':
			b.WriteByte(' ')
		case r >= 0x20 && r <= 0x7e:
			b.WriteRune(r)
		default:
			b.WriteByte('?')
		}
	}
	return b.String()
}

// Params returns the error as the query parameters of an authorization
// error response (RFC 6749 §4.1.2.1): error, and error_description and
// error_uri when set, the description sanitized.
func (e *Error) Params() url.Values {
	q := url.Values{"error": {e.Code}}
	if d := Sanitize(e.Description); d != "" {
		q.Set("error_description", d)
	}
	if e.URI != "" {
		q.Set("error_uri", e.URI)
	}
	return q
}

// body is the JSON form of RFC 6749 §5.2.
type body struct {
	Error       string `json:"error"`
	Description string `json:"error_description,omitempty"`
	URI         string `json:"error_uri,omitempty"`
}

// noStore marks a response that caches must not keep (RFC 6749 §5.1).
func noStore(h http.Header) {
	h.Set("Content-Type", "application/json;charset=UTF-8")
	h.Set("Cache-Control", "no-store")
	h.Set("Pragma", "no-cache")
}

// WriteJSON writes v as a successful JSON response that must not be cached:
// token, introspection, userinfo and protected-resource answers.
func WriteJSON(w http.ResponseWriter, v any) {
	noStore(w.Header())
	_ = json.NewEncoder(w).Encode(v)
}

// Write writes err as an RFC 6749 §5.2 JSON error. For invalid_client sent
// after HTTP Basic authentication, RFC 6749 requires a WWW-Authenticate
// header; callers set it through basicRealm (empty for none).
func Write(w http.ResponseWriter, err error, basicRealm string) {
	e := From(err)
	h := w.Header()
	noStore(h)
	if e.HTTPStatus() == http.StatusUnauthorized && basicRealm != "" {
		h.Set("WWW-Authenticate", fmt.Sprintf("Basic realm=%q", basicRealm))
	}
	if e.RetryAfter > 0 {
		h.Set("Retry-After", fmt.Sprint(e.RetryAfter))
	}
	w.WriteHeader(e.HTTPStatus())
	_ = json.NewEncoder(w).Encode(body{Error: e.Code, Description: Sanitize(e.Description), URI: e.URI})
}

// WriteLogged is Write for endpoints that authenticate clients with HTTP
// Basic; a server_error is logged first with its private cause, as what.
func WriteLogged(ctx context.Context, log *slog.Logger, w http.ResponseWriter, what string, err error) {
	e := From(err)
	switch e.Code {
	case ServerError:
		log.ErrorContext(ctx, what, "err", err)
	case TemporarilyUnavailable:
		log.WarnContext(ctx, what, "err", err)
	}
	Write(w, e, "bawwab")
}

// WriteBearer writes err for a protected resource as RFC 6750 §3: the
// WWW-Authenticate Bearer challenge carries the error code and description,
// and the body repeats them as JSON. A request that sent no token at all gets
// the bare challenge (RFC 6750 §3.1): pass ErrMissingToken.
func WriteBearer(w http.ResponseWriter, err error, realm, scope string) {
	challenge := fmt.Sprintf("Bearer realm=%q", realm)
	e := From(err)
	if e.Code == TemporarilyUnavailable {
		// An outage, not a problem with the token: no challenge.
		Write(w, e, "")
		return
	}
	if !errors.Is(err, ErrMissingToken) {
		// Sanitize leaves no quote or backslash: the quoted string needs
		// no escapes (RFC 6750 §3, RFC 9110 §5.6.4).
		challenge += `, error="` + e.Code + `", error_description="` + Sanitize(e.Description) + `"`
	}
	if scope != "" {
		challenge += fmt.Sprintf(", scope=%q", scope)
	}
	w.Header().Set("WWW-Authenticate", challenge)
	Write(w, e, "")
}

// ErrMissingToken is the RFC 6750 §3.1 case of a request to a protected
// resource that carries no access token.
var ErrMissingToken = &Error{Code: InvalidToken, Description: "the request carries no access token", Status: http.StatusUnauthorized}

// Respond writes resp as no-store JSON, or err as logged by WriteLogged:
// the one ending of every back-channel JSON endpoint.
func Respond(ctx context.Context, log *slog.Logger, w http.ResponseWriter, what string, resp any, err error) {
	if err != nil {
		WriteLogged(ctx, log, w, what, err)
		return
	}
	WriteJSON(w, resp)
}
