package authorize

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

// JWT-secured authorization requests (RFC 9101), by value: the client
// signs its authorization request with one of its registered keys (those
// of a private_key_jwt client) and sends it as the request parameter, to
// /authorize or pushed to /par. Only the parameters inside the signed
// request count (§6.3); client_id outside must match the one inside.

// InvalidRequestObject is the error of a bad request object (OpenID
// Connect Core §3.1.2.6).
const InvalidRequestObject = "invalid_request_object"

// maxRequestObjectLife bounds exp - now of a request object.
const maxRequestObjectLife = time.Hour

// requestObject verifies the request object in v and returns the
// parameters it carries.
func (h *Handler) requestObject(ctx context.Context, v url.Values) (url.Values, error) {
	clientID := v.Get("client_id")
	if clientID == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "client_id is required beside a request object (RFC 9101 section 5)")
	}
	client, err := h.Store.GetClient(ctx, clientID)
	if err != nil {
		return nil, oautherr.New(oautherr.InvalidClient, "no client is registered with this client_id")
	}
	bad := func(desc string) error { return oautherr.New(InvalidRequestObject, desc) }
	if client.JWKS == "" && client.JWKSURI == "" {
		return nil, bad("this client has no registered keys to sign request objects with")
	}
	var std jwt.Claims
	var all map[string]any
	signed, err := h.Auth.VerifyClientJWT(ctx, client, v.Get("request"), &std, &all)
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
	now := h.Now()
	switch {
	case std.Issuer != client.ID:
		return nil, bad("the request object's iss must be the client_id")
	case !std.Audience.Contains(h.Issuer):
		return nil, bad("the request object's aud must be this server's issuer")
	case std.Expiry == nil || std.Expiry.Time().Sub(now) > maxRequestObjectLife:
		return nil, bad("the request object needs an exp within the hour")
	}
	if err := std.ValidateWithLeeway(jwt.Expected{Time: now}, cmp.Or(h.Leeway, token.DefaultLeeway)); err != nil {
		return nil, bad("the request object has expired or is not valid yet")
	}
	if std.ID != "" {
		// One jti namespace with the client's assertions and DPoP proofs.
		if err := h.Store.UseOnce(ctx, storage.JTIKey(signed.Signer, std.ID), std.Expiry.Time()); errors.Is(err, storage.ErrAlreadyUsed) {
			return nil, bad("the request object's jti was used before")
		} else if err != nil {
			return nil, oautherr.Wrap(err)
		}
	}
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
	if out.Get("client_id") != "" && out.Get("client_id") != client.ID {
		return nil, bad("client_id inside the request object differs from the one outside")
	}
	out.Set("client_id", client.ID)
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
