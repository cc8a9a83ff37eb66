package token

import (
	"cmp"
	"context"
	"errors"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// RefreshToken is the refresh_token grant (RFC 6749 §6) with rotation on
// every use and reuse detection (RFC 9700 §4.14.2): presenting a refresh
// token that was already rotated revokes its whole grant.
//
// One exception makes rotation safe to retry: a client whose response was
// lost (a dropped connection, a proxy timeout) retries with the token it
// still holds. Within Grace after the rotation, the same client (and, for
// a token bound to a DPoP key, the same key; for an unbound token whose
// rotation bound its successor, that key) presenting the just-rotated
// token gets a new rotation: the successor it never received is spent, a
// new one issued, and the chain goes on with one live token. After Grace,
// from another client or key, once the successor was used, or for a
// successor a retry replaced, reuse revokes the grant as before.
type RefreshToken struct {
	Issuer *Issuer
	// Grace is the rotation grace period; zero turns retries off.
	Grace time.Duration
}

// Type implements Grant.
func (RefreshToken) Type() string { return "refresh_token" }

var (
	errRefreshReused = oautherr.New(oautherr.InvalidGrant, "the refresh token was already used; for safety every token of this grant is now revoked")
	errRefreshRaced  = oautherr.New(oautherr.InvalidGrant, "a concurrent request with this refresh token rotated it; use the token that request returned, or try again")
	errRefreshGone   = oautherr.New(oautherr.InvalidGrant, "the refresh token is unknown or expired")
)

// Exchange implements Grant. Every read the response needs (token, grant,
// user) happens and the tokens are minted before the one write that
// rotates the refresh token, so that once the rotation committed nothing
// but a lost response can keep the new tokens from the client, and a
// retry covers that.
func (g RefreshToken) Exchange(ctx context.Context, req *Request) (*Response, error) {
	i, client := g.Issuer, req.Client
	raw := req.Form.Get("refresh_token")
	if raw == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "refresh_token is required")
	}
	asked, err := requestedScopes(req.Form)
	if err != nil {
		return nil, err
	}
	hash := storage.Hash(raw)
	chain, err := i.Store.GetRefreshTokenChain(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errRefreshGone
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	t, now := &chain.RefreshToken, i.Now()
	key, err := g.heldKey(ctx, t, now)
	if err != nil {
		return nil, err
	}
	if err := g.checkPresented(ctx, req, t, key, now); err != nil {
		return nil, err
	}
	grant, err := liveGrantOf(chain.Grant, now)
	if err != nil {
		return nil, err
	}
	scopes, err := narrowScopes(asked, t.Scopes)
	if err != nil {
		return nil, err
	}
	user, err := usable(chain.User, "grant")
	if err != nil {
		return nil, err
	}
	// The successor keeps the binding, or takes that of this request: a
	// public client's chain got without a proof is bound by the first
	// refresh that sends one (RFC 9449 §5), so that from then on a stolen
	// refresh token is useless without the key.
	nextRaw, next := i.successor(grant, t.Scopes, cmp.Or(t.JKT, bindingOf(req)), now)
	resp, err := i.respond(req, issue{subject: user.ID, user: user, scopes: scopes, grant: grant, authTime: t.AuthTime, refresh: nextRaw})
	if err != nil {
		return nil, err
	}
	refreshed := audit.Event{Type: audit.TokenRefreshed, UserID: user.ID, ClientID: client.ID, Detail: "scope=" + resp.Scope}
	if err := g.commit(ctx, client, t, hash, next, now, refreshed); err != nil {
		return nil, err
	}
	i.Used(ctx, user.ID, client.ID)
	return resp, nil
}

// heldKey is the DPoP key whoever presents t must prove (RFC 9449 §5):
// the key t is bound to; or, for an unbound token that a retry may rotate
// again, the key its successor is bound to, since a public client's
// chain is bound by its first refresh with a proof, and a retry of the
// token it rotated must not give whoever else holds that token an
// unbound chain.
func (g RefreshToken) heldKey(ctx context.Context, t *storage.RefreshToken, now time.Time) (string, error) {
	if t.JKT != "" || t.UsedAt.IsZero() || !g.retryable(t, true, now) {
		return t.JKT, nil
	}
	next, err := g.Issuer.Store.GetRefreshToken(ctx, t.NextHash)
	switch {
	case errors.Is(err, storage.ErrNotFound):
		return "", nil // gone: the retry finds no successor to replace
	case err != nil:
		return "", oautherr.Wrap(err)
	}
	return next.JKT, nil
}

// checkPresented checks the refresh token t against the request (RFC
// 6749 §6): it was issued to this client (else its grant is revoked),
// was not used before (reuse revokes the grant, RFC 9700 §4.14.2, unless
// it is a retry within the grace period), has not expired, and whoever
// presents it proves key, the DPoP key it or its chain is bound to (RFC
// 9449 §5; heldKey).
func (g RefreshToken) checkPresented(ctx context.Context, req *Request, t *storage.RefreshToken, key string, now time.Time) error {
	i, client := g.Issuer, req.Client
	sameKey := key == "" || req.proves(key)
	switch {
	case t.ClientID != client.ID:
		if err := i.revokeGrant(ctx, t.GrantID, audit.Event{Type: audit.RefreshWrongClient, UserID: t.UserID, ClientID: client.ID,
			Detail: "issued to " + t.ClientID}); err != nil {
			return err
		}
		return oautherr.New(oautherr.InvalidGrant, "the refresh token was issued to another client")
	case !t.UsedAt.IsZero() && !g.retryable(t, sameKey, now):
		return reused(i.revokeGrant(ctx, t.GrantID, reuseOf(t, client)))
	case !now.Before(t.ExpiresAt):
		return oautherr.New(oautherr.InvalidGrant, "the refresh token has expired")
	case !sameKey:
		return oautherr.New(oautherr.InvalidGrant, "the refresh token is bound to a DPoP key: send a DPoP proof signed by it (RFC 9449 §5)")
	}
	return nil
}

// reused is the answer to the reuse of a refresh token, given the error
// of its grant's revocation: the reuse once the grant is revoked, else the
// store's failure, so that the retry revokes it.
func reused(revokeErr error) error {
	if revokeErr != nil {
		return revokeErr
	}
	return errRefreshReused
}

// reuseOf is the audit event of the reuse of t by client (RFC 9700
// §4.14.2).
func reuseOf(t *storage.RefreshToken, client *storage.Client) audit.Event {
	return audit.Event{Type: audit.RefreshReuse, UserID: t.UserID, ClientID: client.ID}
}

// liveGrantOf returns the grant of a refresh token, read with it (nil
// when it no longer exists), which must be neither revoked nor past its
// absolute lifetime: ending a grant ends its refresh tokens (RFC 7009
// §2.1, RFC 9700 §4.14.2).
func liveGrantOf(grant *storage.Grant, now time.Time) (*storage.Grant, error) {
	switch {
	case grant == nil:
		return nil, oautherr.New(oautherr.InvalidGrant, "the grant of this refresh token has ended")
	case !grant.RevokedAt.IsZero():
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token was revoked")
	case !now.Before(grant.ExpiresAt):
		return nil, oautherr.New(oautherr.InvalidGrant, "the grant of this refresh token has expired; ask the user again")
	}
	return grant, nil
}

// narrowScopes is the scope of a refreshed token: the asked scopes, which
// may only narrow those originally granted (RFC 6749 §6), or all of them.
func narrowScopes(asked, granted []string) ([]string, error) {
	if len(asked) == 0 {
		return granted, nil
	}
	if !scope.Subset(asked, granted) {
		return nil, oautherr.New(oautherr.InvalidScope, "a refresh may not ask for scopes beyond those originally granted")
	}
	return asked, nil
}

// commit stores the rotation of t (hash) to next, and the event refreshed
// that records it: the one write of a refresh, in one atomic change.
// Nothing after it reads the store or can fail. A token used before is a
// retry within the grace period, and rotates again.
func (g RefreshToken) commit(ctx context.Context, client *storage.Client, t *storage.RefreshToken, hash string, next storage.RefreshToken,
	now time.Time, refreshed audit.Event) error {
	log := g.Issuer.Audit
	if !t.UsedAt.IsZero() {
		if err := g.retry(ctx, client, t, hash, next, now); err != nil {
			return err
		}
		log.Record(ctx, refreshed)
		return nil
	}
	if err := g.rotate(ctx, client, t, hash, next, now, log.Stored(ctx, refreshed)); err != nil {
		return err
	}
	log.Logged(ctx, refreshed)
	return nil
}

// rotationError is the answer to a failed rotation write: a token gone
// since it was read is unknown, any other failure is the store's.
func rotationError(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return errRefreshGone
	} else if err != nil {
		return oautherr.Wrap(err)
	}
	return nil
}

// rotate replaces t by next, atomically (RFC 9700 §4.14.2). The loser of
// a race between two requests with t is reuse, or with retries allowed a
// race to report: it may try again and get a rotation of its own. A token
// that then names no successor was not rotated but spent by a retry of its
// predecessor: whoever holds it raced that retry, which is reuse, as it is
// when it comes after.
func (g RefreshToken) rotate(ctx context.Context, client *storage.Client, t *storage.RefreshToken, hash string, next storage.RefreshToken,
	now time.Time, events []storage.AuditEvent) error {
	err := g.Issuer.Store.RotateRefreshToken(ctx, hash, next, now, events...)
	if !errors.Is(err, storage.ErrAlreadyUsed) {
		return rotationError(err)
	}
	if g.Grace > 0 {
		cur, gerr := g.Issuer.Store.GetRefreshToken(ctx, hash)
		if gerr != nil {
			return rotationError(gerr)
		}
		if cur.NextHash != "" {
			return errRefreshRaced
		}
	}
	reuse := reuseOf(t, client)
	reuse.Detail = "concurrent reuse"
	return reused(g.Issuer.revokeGrant(ctx, t.GrantID, reuse))
}

// retry rotates the already rotated t again, to next, within the grace
// period: the client never received the successor t names, which is
// spent. If a concurrent retry won, that is a race to report; if the
// client used the successor, t is reused and its grant revoked.
func (g RefreshToken) retry(ctx context.Context, client *storage.Client, t *storage.RefreshToken, hash string, next storage.RefreshToken, now time.Time) error {
	i := g.Issuer
	err := i.Store.RetryRotation(ctx, hash, t.NextHash, next, now.Add(-g.Grace), now)
	if err == nil {
		i.Audit.Record(ctx, audit.Event{Type: audit.RefreshRetried, UserID: t.UserID, ClientID: client.ID,
			Detail: "rotation retried " + now.Sub(t.UsedAt).Round(time.Second).String() + " after it committed"})
		return nil
	}
	if !errors.Is(err, storage.ErrAlreadyUsed) {
		return rotationError(err)
	}
	cur, gerr := i.Store.GetRefreshToken(ctx, hash)
	if gerr != nil {
		return oautherr.Wrap(gerr)
	}
	if cur.NextHash != t.NextHash {
		return errRefreshRaced
	}
	reuse := reuseOf(t, client)
	reuse.Detail = "successor already used"
	return reused(i.revokeGrant(ctx, t.GrantID, reuse))
}

// retryable reports whether a rotated token t may be rotated again: within
// the grace period after its rotation, with the key it is bound to, and
// while it names a successor (a successor a retry replaced names none).
// Its client was checked before.
func (g RefreshToken) retryable(t *storage.RefreshToken, sameKey bool, now time.Time) bool {
	return g.Grace > 0 && sameKey && t.NextHash != "" && now.Sub(t.UsedAt) < g.Grace
}

// successor mints the refresh token that replaces one of grant's, bound to
// the same key, without storing it: the caller stores it by rotation.
func (i *Issuer) successor(grant *storage.Grant, scopes []string, jkt string, now time.Time) (string, storage.RefreshToken) {
	raw := NewOpaque()
	exp := now.Add(i.RefreshTTL)
	if grant.ExpiresAt.Before(exp) {
		exp = grant.ExpiresAt
	}
	return raw, storage.RefreshToken{Hash: storage.Hash(raw), GrantID: grant.ID, ClientID: grant.ClientID, UserID: grant.UserID, Scopes: scopes,
		AuthTime: grant.AuthTime, CreatedAt: now, ExpiresAt: exp, JKT: jkt}
}

var _ Grant = RefreshToken{}
