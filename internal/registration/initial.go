package registration

import (
	"context"
	"errors"
	"net/http"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// configuredToken names, in the audit log, the initial access token of the
// configuration file (registration_token), which has no id.
const configuredToken = "configured"

// access is what authorized a registration: nothing (open registration),
// the configured token, or a stored initial access token (ID set).
type access struct {
	mode string                      // Open or Token
	iat  *storage.InitialAccessToken // the stored token, nil otherwise
}

// detail names the access for the audit log: never the token itself.
func (a access) detail() string {
	switch {
	case a.iat != nil:
		return "initial_access_token=" + a.iat.ID
	case a.mode == Token:
		return "initial_access_token=" + configuredToken
	}
	return "open registration"
}

// unauthorized is the RFC 6750 §3.1 answer to a registration without a
// usable initial access token (RFC 7591 §3).
func unauthorized(desc string) error {
	err := oautherr.New(oautherr.InvalidToken, desc)
	err.Status = http.StatusUnauthorized
	return err
}

// refusals say why a stored token that is not live cannot register.
var refusals = map[string]string{
	storage.TokenExpired: "the initial access token has expired; ask the operator for a new one",
	storage.TokenUsedUp:  "the initial access token has registered as many clients as it may; ask the operator for a new one",
	storage.TokenRevoked: "the initial access token was revoked",
}

// authorize checks the initial access token of a registration before
// anything of its body is read (RFC 7591 §3): with Mode Token, the Bearer
// must be the configured token or a stored, live one. It only looks: the
// use of a stored token is counted by spend, once the metadata passed,
// so that a request the policy refuses does not cost a use.
func (e *Endpoint) authorize(r *http.Request) (access, error) {
	a := access{mode: e.Mode}
	if e.Mode != Token {
		return a, nil
	}
	tok := bearer(r)
	if tok == "" {
		// No token at all: the bare challenge (RFC 6750 §3.1).
		return a, oautherr.ErrMissingToken
	}
	if e.InitialToken != "" && sameSecret(tok, e.InitialToken) {
		return a, nil
	}
	// The hash of any string is valid text: no bearer can break the lookup.
	iat, err := e.Store.GetInitialAccessToken(r.Context(), storage.Hash(tok))
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return a, unauthorized("the initial access token is not valid")
	case err != nil:
		return a, oautherr.Wrap(err)
	}
	if st := iat.State(e.Now()); st != storage.TokenLive {
		return a, unauthorized(refusals[st])
	}
	a.iat = iat
	return a, nil
}

// spend counts the registration against a stored token, in one
// conditional update: of concurrent registrations with a token of n uses
// left, n get through and the others are refused, however they raced the
// check of authorize. A client whose creation fails after this has still
// cost the use; the operator sees it in the token's count.
func (e *Endpoint) spend(ctx context.Context, a *access) error {
	if a.iat == nil {
		return nil
	}
	iat, err := e.Store.UseInitialAccessToken(ctx, a.iat.Hash, e.Now())
	switch {
	case errors.Is(err, storage.ErrAlreadyUsed):
		return unauthorized(refusals[iat.State(e.Now())])
	case errors.Is(err, storage.ErrNotFound):
		return unauthorized("the initial access token is not valid")
	case err != nil:
		return oautherr.Wrap(err)
	}
	a.iat = iat
	return nil
}
