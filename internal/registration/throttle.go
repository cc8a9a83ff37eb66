package registration

import (
	"context"
	"net/http"

	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/ratelimit"
)

// attemptKey is what the registration attempts of r are counted under: a
// stored initial access token's id, so that its holder, wherever it
// sends from, has one budget of refusals however many uses the token has
// left; for open registration, the client's network. The configured
// token (registration_token) is counted under nothing (""): it is the
// operator's own, of unlimited uses, so that its holder may register, and
// have fetched, as many clients as it likes; counting its refusals would
// bound nothing and only stop the operator's tooling.
func attemptKey(r *http.Request, a access) string {
	switch {
	case a.iat != nil:
		return "register-iat:" + a.iat.ID
	case a.mode == Open:
		return "register-ip:" + clientip.Network(clientip.Of(r))
	}
	return ""
}

// reserve counts a registration attempt under key before anything of its
// body is read, and so before any URL in it is fetched: a refused
// registration costs its token no use, so without this one live token,
// even a single-use one, could make the server fetch a sector_identifier_uri
// or jwks_uri without end. Beyond the budget it answers 429 with
// Retry-After. With no Attempts, or no key, it counts nothing (nil
// attempt).
func (e *Endpoint) reserve(ctx context.Context, key string) (*ratelimit.Attempt, error) {
	if e.Attempts == nil || key == "" {
		return nil, nil
	}
	try, wait, err := e.Attempts.Reserve(ctx, key)
	if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if wait > 0 {
		secs := ratelimit.RetrySeconds(wait)
		err := oautherr.Newf(oautherr.SlowDown, "too many refused registration requests; retry in %d seconds", secs)
		err.RetryAfter = secs
		return nil, err
	}
	return try, nil
}

// endAttempt ends try by the outcome of its request. A refusal counts; so
// does every management change when each counts (countAll). A
// registration that succeeded neither counts nor clears the refusals
// before it: its token's uses bound it. An outage of the store decided
// nothing about the requester.
func (e *Endpoint) endAttempt(ctx context.Context, try *ratelimit.Attempt, err error, countAll bool) {
	if try == nil {
		return
	}
	if oautherr.Code(err) == oautherr.TemporarilyUnavailable || err == nil && !countAll {
		_ = try.Release(ctx)
		return
	}
	if _, ferr := try.Fail(ctx); ferr != nil {
		e.Log.WarnContext(ctx, "registration: count attempt", "err", ferr)
	}
}

// clientKey is what the management changes of a registered client are
// counted under: each may fetch its URLs again.
func clientKey(id string) string { return "register-client:" + id }
