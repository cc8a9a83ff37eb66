// Package jar verifies JWT-secured authorization requests (RFC 9101) by
// value: the client signs its authorization request with one of its
// registered keys (those of a private_key_jwt client) and sends it as the
// request parameter, to /authorize or pushed to /par. Only the parameters
// inside the signed request count (§6.3); client_id outside must match the
// one inside.
//
// The package returns the parameters; it does not validate them as an
// authorization request (package authorize does, as for any request).
package jar

import (
	"cmp"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"strconv"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// InvalidRequestObject is the error of a bad request object (OpenID
// Connect Core §3.1.2.6).
const InvalidRequestObject = "invalid_request_object"

// MaxLife bounds exp - now of a request object.
const MaxLife = time.Hour

// Verifier checks request objects.
type Verifier struct {
	// Store finds clients and remembers each request object's jti.
	Store storage.Storage
	// Auth verifies the client's signature with its registered keys.
	Auth *clientauth.Authenticator
	// Issuer is the audience a request object must name (RFC 9101 §4).
	Issuer string
	// Leeway is the clock skew forgiven in exp, nbf and iat; zero means
	// token.DefaultLeeway.
	Leeway time.Duration
	Now    func() time.Time
}

func bad(desc string) *oautherr.Error { return oautherr.New(InvalidRequestObject, desc) }

// Params verifies the request object in v (the request parameter, beside
// client_id) and returns the parameters it carries, with client_id.
func (j *Verifier) Params(ctx context.Context, v url.Values) (url.Values, error) {
	client, err := j.client(ctx, v.Get("client_id"))
	if err != nil {
		return nil, err
	}
	var std jwt.Claims
	var all map[string]any
	signed, err := j.Auth.VerifyClientJWT(ctx, client, v.Get("request"), &std, &all)
	if err != nil {
		return nil, bad("the request object is " + err.Error())
	}
	// Explicit typing (RFC 9101 §10.8, RFC 8725 §3.11): a request object
	// passes through the browser, so nothing else the client signs may
	// look like one, and it must look like nothing else. Required, not
	// merely recommended: an untyped one could be a client assertion.
	if signed.Typ != clientauth.TypRequestObject {
		return nil, bad("the request object's typ header must be " + clientauth.TypRequestObject + " (RFC 9101 §10.8)")
	}
	if e := checkClaims(std, client.ID, j.Issuer, j.Now(), cmp.Or(j.Leeway, token.DefaultLeeway)); e != nil {
		return nil, e
	}
	if err := j.useOnce(ctx, signed.Signer, std); err != nil {
		return nil, err
	}
	return params(all, client.ID)
}

// client returns the client of a request object: one with keys to sign it.
func (j *Verifier) client(ctx context.Context, clientID string) (*storage.Client, error) {
	if clientID == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "client_id is required beside a request object (RFC 9101 section 5)")
	}
	client, err := j.Store.GetClient(ctx, clientID)
	if err != nil {
		return nil, oautherr.New(oautherr.InvalidClient, "no client is registered with this client_id")
	}
	if client.JWKS == "" && client.JWKSURI == "" {
		return nil, bad("this client has no registered keys to sign request objects with")
	}
	return client, nil
}

// checkClaims requires the client as iss, this server among aud, and an
// exp within MaxLife (RFC 9101 §4, §10.2), with exp, nbf and iat valid at
// now give or take leeway.
func checkClaims(std jwt.Claims, clientID, issuer string, now time.Time, leeway time.Duration) *oautherr.Error {
	switch {
	case std.Issuer != clientID:
		return bad("the request object's iss must be the client_id")
	case !std.Audience.Contains(issuer):
		return bad("the request object's aud must be this server's issuer")
	case std.Expiry == nil || std.Expiry.Time().Sub(now) > MaxLife:
		return bad("the request object needs an exp within the hour")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: now}, leeway); err != nil {
		return bad("the request object has expired or is not valid yet")
	}
	return nil
}

// useOnce spends the request object's jti, when it has one, in one
// namespace with the client's assertions and DPoP proofs.
func (j *Verifier) useOnce(ctx context.Context, signer string, std jwt.Claims) error {
	if std.ID == "" {
		return nil
	}
	err := j.Store.UseOnce(ctx, storage.JTIKey(signer, std.ID), std.Expiry.Time())
	if errors.Is(err, storage.ErrAlreadyUsed) {
		return bad("the request object's jti was used before")
	} else if err != nil {
		return oautherr.Wrap(err)
	}
	return nil
}

// params turns the request object's claims into request parameters,
// leaving out the JWT's own claims and refusing a nested request or
// request_uri (RFC 9101 §4).
func params(all map[string]any, clientID string) (url.Values, error) {
	out := url.Values{}
	for k, val := range all {
		switch k {
		case "iss", "aud", "exp", "iat", "nbf", "jti", "sub":
			continue
		case "request", "request_uri":
			return nil, bad("a request object may not nest " + k)
		}
		s, err := paramString(val)
		if err != nil {
			return nil, bad(fmt.Sprintf("parameter %s: %v", oautherr.Clip(k), err))
		}
		out.Set(k, s)
	}
	if out.Get("client_id") != "" && out.Get("client_id") != clientID {
		return nil, bad("client_id inside the request object differs from the one outside")
	}
	out.Set("client_id", clientID)
	return out, nil
}

// paramString turns a claim into a request parameter: a string, or a
// whole number (max_age).
func paramString(v any) (string, error) {
	switch t := v.(type) {
	case string:
		return t, nil
	case float64:
		if t == float64(int64(t)) {
			return strconv.FormatInt(int64(t), 10), nil
		}
	case json.Number:
		return t.String(), nil
	}
	return "", fmt.Errorf("must be a string")
}
