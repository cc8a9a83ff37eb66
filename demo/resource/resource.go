// Package resource is the demo's resource server: "the provider's APIs".
// It accepts RFC 9068 JWT access tokens, checks them offline against the
// authorization server's JWKS (cached, refetched when an unknown kid
// appears), checks iss, aud, exp and typ, and, when Introspect is set, asks
// the authorization server whether the token was revoked (RFC 7662), so
// that a revocation takes effect on the next call. Errors follow RFC 6750 §3.
package resource

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"sync"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
)

// Claims are the access token claims the resource server reads.
type Claims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope"`
	// ACR and AuthTime say how and when the person signed in (RFC 9068
	// §2.2.1), for the endpoints that want more (RFC 9470).
	ACR      string `json:"acr"`
	AuthTime int64  `json:"auth_time"`
	Cnf      *struct {
		JKT string `json:"jkt"`
	} `json:"cnf"`
}

// Introspector asks the authorization server about a token.
type Introspector struct {
	URL, ClientID, ClientSecret string
	HTTP                        *http.Client
}

// Active reports whether the authorization server says the token is active.
func (in *Introspector) Active(ctx context.Context, raw string) (bool, error) {
	req, err := http.NewRequestWithContext(ctx, "POST", in.URL, strings.NewReader(url.Values{"token": {raw}}.Encode()))
	if err != nil {
		return false, err
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(in.ClientID), url.QueryEscape(in.ClientSecret))
	resp, err := in.HTTP.Do(req)
	if err != nil {
		return false, err
	}
	defer resp.Body.Close()
	if resp.StatusCode != 200 {
		return false, fmt.Errorf("introspection answered %d", resp.StatusCode)
	}
	var out struct {
		Active bool `json:"active"`
	}
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&out); err != nil {
		return false, err
	}
	return out.Active, nil
}

// Verifier validates access tokens.
type Verifier struct {
	Issuer   string
	Audience string
	JWKSURL  string
	HTTP     *http.Client
	Now      func() time.Time
	// Introspect, when set, is asked about every token that passed the
	// offline checks, so that revoked tokens are refused at once.
	Introspect *Introspector

	mu      sync.Mutex
	keys    jose.JSONWebKeySet
	fetched time.Time
}

func invalid(desc string) error { return oautherr.New(oautherr.InvalidToken, desc) }

// key returns the public key with this kid, refetching the JWKS once when
// the kid is unknown (at most every 10 seconds).
func (v *Verifier) key(ctx context.Context, kid string) (*jose.JSONWebKey, error) {
	v.mu.Lock()
	defer v.mu.Unlock()
	if k := v.keys.Key(kid); len(k) == 1 {
		return &k[0], nil
	}
	if !v.fetched.IsZero() && v.Now().Sub(v.fetched) < 10*time.Second {
		return nil, invalid("the token is signed by an unknown key")
	}
	req, err := http.NewRequestWithContext(ctx, "GET", v.JWKSURL, nil)
	if err != nil {
		return nil, err
	}
	resp, err := v.HTTP.Do(req)
	if err != nil {
		return nil, fmt.Errorf("fetch JWKS: %w", err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	if err := json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&set); err != nil {
		return nil, fmt.Errorf("decode JWKS: %w", err)
	}
	v.keys, v.fetched = set, v.Now()
	if k := v.keys.Key(kid); len(k) == 1 {
		return &k[0], nil
	}
	return nil, invalid("the token is signed by an unknown key")
}

// Verify checks raw and returns its claims. Only ES256 is accepted, so
// alg=none and HS256-with-the-public-key tokens are refused.
func (v *Verifier) Verify(ctx context.Context, raw string) (*Claims, error) {
	tok, err := jwt.ParseSigned(raw, []jose.SignatureAlgorithm{jose.ES256})
	if err != nil {
		return nil, invalid("the access token is not a signed JWT of an accepted algorithm")
	}
	h := tok.Headers[0]
	if typ, _ := h.ExtraHeaders[jose.HeaderType].(string); !strings.EqualFold(typ, "at+jwt") {
		return nil, invalid("the token is not an access token (typ must be at+jwt, RFC 9068 section 4)")
	}
	k, err := v.key(ctx, h.KeyID)
	if err != nil {
		return nil, err
	}
	var c Claims
	if err := tok.Claims(k.Key, &c); err != nil {
		return nil, invalid("the access token signature is invalid")
	}
	err = c.ValidateWithLeeway(jwt.Expected{Issuer: v.Issuer, AnyAudience: jwt.Audience{v.Audience}, Time: v.Now()}, 5*time.Second)
	switch {
	case errors.Is(err, jwt.ErrExpired):
		return nil, invalid("the access token has expired")
	case errors.Is(err, jwt.ErrInvalidIssuer):
		return nil, invalid("the access token was issued by another server")
	case errors.Is(err, jwt.ErrInvalidAudience):
		return nil, invalid("the access token is not meant for this API")
	case err != nil:
		return nil, invalid("the access token is not valid now")
	}
	if v.Introspect != nil {
		active, err := v.Introspect.Active(ctx, raw)
		if err != nil {
			return nil, oautherr.New(oautherr.TemporarilyUnavailable, "cannot reach the authorization server").WithCause(err)
		}
		if !active {
			return nil, invalid("the access token was revoked")
		}
	}
	return &c, nil
}

// Profile is the data the demo API serves about a user.
type Profile struct {
	Name, Email, Picture string
	Files                []string
}

// Server is the demo API.
type Server struct {
	Verifier *Verifier
	// URL is the API's public base URL (the htu of DPoP proofs).
	URL string
	// DPoP checks the proofs of DPoP-bound tokens.
	DPoP *dpop.Checker
	Log  *slog.Logger
	// Lookup returns the data of the token's subject.
	Lookup func(ctx context.Context, subject string) (*Profile, error)
}

// Register adds the API routes to mux.
func (s *Server) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /api/profile", s.protect([]string{"profile", "photo"}, func(p *Profile, scopes []string) any {
		out := map[string]string{}
		if slices.Contains(scopes, "profile") {
			out["name"] = p.Name
		}
		if slices.Contains(scopes, "photo") {
			out["picture"] = p.Picture
		}
		return out
	}))
	mux.HandleFunc("GET /api/email", s.protect([]string{"email"}, func(p *Profile, _ []string) any {
		return map[string]string{"email": p.Email}
	}))
	mux.HandleFunc("GET /api/files", s.protect([]string{"files.read"}, func(p *Profile, _ []string) any {
		return map[string][]string{"files": p.Files}
	}))
	mux.HandleFunc("GET /api/payment", s.protect([]string{"payment"}, func(p *Profile, _ []string) any {
		return map[string][]string{"cards": {"Visa •••• 4242"}}
	}))
}

// ACRMFA is the authentication context class of a sign-in with a second
// factor, which the payment endpoint wants.
const ACRMFA = "urn:bawwab:acr:mfa"

// PaymentMaxAge is how old a sign-in may be for the payment endpoint.
const PaymentMaxAge = 15 * time.Minute

// stepUp returns the RFC 9470 challenge for a token whose sign-in is too
// weak or too old for path, or "" when it suffices: only the payment
// endpoint wants a second factor, proved in the last PaymentMaxAge.
func (s *Server) stepUp(path string, c *Claims) string {
	if path != "/api/payment" {
		return ""
	}
	if c.ACR != ACRMFA {
		return fmt.Sprintf(`error="insufficient_user_authentication", error_description="payment data needs a sign-in with a second factor", acr_values=%q`, ACRMFA)
	}
	if s.Verifier.Now().Sub(time.Unix(c.AuthTime, 0)) > PaymentMaxAge {
		return fmt.Sprintf(`error="insufficient_user_authentication", error_description="payment data needs a more recent sign-in", acr_values=%q, max_age=%d`,
			ACRMFA, int(PaymentMaxAge.Seconds()))
	}
	return ""
}

// writeStepUp answers 401 with the challenge of RFC 9470 §3, in the
// scheme the token came in.
func writeStepUp(w http.ResponseWriter, challenge string, dpopScheme bool) {
	scheme := "Bearer"
	if dpopScheme {
		scheme = "DPoP"
	}
	w.Header().Set("WWW-Authenticate", scheme+` realm="provider-api", `+challenge)
	oautherr.Write(w, oautherr.New(oautherr.InsufficientUserAuthentication, "the sign-in behind this token is not strong or recent enough"), "")
}

// protect wraps an API handler: it needs a valid token carrying any one of
// the scopes in anyOf.
func (s *Server) protect(anyOf []string, serve func(*Profile, []string) any) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx := r.Context()
		raw, dpopScheme, err := dpop.AccessToken(r)
		fail := func(err error) {
			if oautherr.Code(err) == oautherr.ServerError || oautherr.Code(err) == oautherr.TemporarilyUnavailable {
				s.Log.ErrorContext(ctx, "api request failed", "err", err)
			}
			s.DPoP.WriteError(w, err, dpopScheme && s.DPoP != nil, "provider-api", strings.Join(anyOf, " "))
		}
		if err != nil {
			fail(err)
			return
		}
		c, err := s.Verifier.Verify(ctx, raw)
		if err != nil {
			fail(err)
			return
		}
		switch {
		case s.DPoP != nil: // RFC 9449 §7.1: a bound token needs its key's proof, the DPoP scheme a bound token
			jkt := ""
			if c.Cnf != nil {
				jkt = c.Cnf.JKT
			}
			if err := s.DPoP.Bound(ctx, r, s.URL+r.URL.Path, raw, jkt, dpopScheme); err != nil {
				fail(err)
				return
			}
		case c.Cnf != nil:
			fail(invalid("this API does not accept DPoP-bound tokens"))
			return
		case dpopScheme:
			fail(invalid("this API does not accept the DPoP scheme: send Authorization: Bearer <token>"))
			return
		}
		scopes := strings.Fields(c.Scope)
		if !slices.ContainsFunc(anyOf, func(s string) bool { return slices.Contains(scopes, s) }) {
			fail(oautherr.Newf(oautherr.InsufficientScope, "this API needs the scope %s", strings.Join(anyOf, " or ")))
			return
		}
		if challenge := s.stepUp(r.URL.Path, c); challenge != "" {
			writeStepUp(w, challenge, dpopScheme)
			return
		}
		p, err := s.Lookup(ctx, c.Subject)
		if err != nil {
			fail(invalid("the user of this token is unknown"))
			return
		}
		if dpopScheme {
			s.DPoP.SetNonce(w) // the next proof's nonce (RFC 9449 §9)
		}
		oautherr.WriteJSON(w, serve(p, scopes))
	}
}
