package token

import (
	"context"
	"errors"
	"net/url"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/dpop"
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
// a token bound to a DPoP key, the same key) presenting the just-rotated
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
func (g RefreshToken) Exchange(ctx context.Context, form url.Values, client *storage.Client) (*Response, error) {
	i := g.Issuer
	raw := form.Get("refresh_token")
	if raw == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "refresh_token is required")
	}
	asked, err := requestedScopes(form)
	if err != nil {
		return nil, err
	}
	hash := storage.Hash(raw)
	t, err := i.Store.GetRefreshToken(ctx, hash)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errRefreshGone
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	now := i.Now()
	proof := dpop.From(ctx)
	sameKey := t.JKT == "" || proof != nil && proof.JKT == t.JKT
	reuse := audit.Event{Type: audit.RefreshReuse, UserID: t.UserID, ClientID: client.ID}
	switch {
	case t.ClientID != client.ID:
		i.revokeGrant(ctx, t.GrantID, audit.Event{Type: audit.RefreshWrongClient, UserID: t.UserID, ClientID: client.ID,
			Detail: "issued to " + t.ClientID})
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token was issued to another client")
	case !t.UsedAt.IsZero() && !g.retryable(t, sameKey, now):
		i.revokeGrant(ctx, t.GrantID, reuse)
		return nil, errRefreshReused
	case !now.Before(t.ExpiresAt):
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token has expired")
	case !sameKey:
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token is bound to a DPoP key: send a DPoP proof signed by it (RFC 9449 §5)")
	}
	grant, err := i.Store.GetGrant(ctx, t.GrantID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.New(oautherr.InvalidGrant, "the grant of this refresh token has ended")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if !grant.RevokedAt.IsZero() {
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token was revoked")
	}
	if !now.Before(grant.ExpiresAt) {
		return nil, oautherr.New(oautherr.InvalidGrant, "the grant of this refresh token has expired; ask the user again")
	}
	scopes := t.Scopes
	if len(asked) > 0 {
		// RFC 6749 §6: the scope may only narrow what was granted.
		if !scope.Subset(asked, t.Scopes) {
			return nil, oautherr.New(oautherr.InvalidScope, "a refresh may not ask for scopes beyond those originally granted")
		}
		scopes = asked
	}
	user, err := i.userOf(ctx, t.UserID, "grant")
	if err != nil {
		return nil, err
	}
	nextRaw, next := i.successor(grant, t.Scopes, t.JKT, now)
	resp, err := i.respond(ctx, issue{client: client, subject: user.ID, user: user, scopes: scopes, grant: grant, authTime: t.AuthTime, refresh: nextRaw})
	if err != nil {
		return nil, err
	}

	// The commit. Nothing after it reads the store or can fail.
	if t.UsedAt.IsZero() {
		err = i.Store.RotateRefreshToken(ctx, hash, next, now)
		if errors.Is(err, storage.ErrAlreadyUsed) {
			// A concurrent request with this token rotated it first.
			// With retries allowed, this loser may try again and get a
			// rotation of its own; without, it is reuse as before. A
			// token that names no successor was not rotated but spent
			// by a retry of its predecessor: whoever holds it raced the
			// retry, which is reuse, as it is when it comes after.
			if g.Grace > 0 {
				cur, gerr := i.Store.GetRefreshToken(ctx, hash)
				if errors.Is(gerr, storage.ErrNotFound) {
					return nil, errRefreshGone
				} else if gerr != nil {
					return nil, oautherr.Wrap(gerr)
				}
				if cur.NextHash != "" {
					return nil, errRefreshRaced
				}
			}
			reuse.Detail = "concurrent reuse"
			i.revokeGrant(ctx, t.GrantID, reuse)
			return nil, errRefreshReused
		}
	} else {
		err = i.Store.RetryRotation(ctx, hash, t.NextHash, next, now.Add(-g.Grace), now)
		if errors.Is(err, storage.ErrAlreadyUsed) {
			// Either a concurrent retry won (the old token now names
			// another successor) or the client used the successor: the
			// first is a race to report, the second is reuse.
			cur, gerr := i.Store.GetRefreshToken(ctx, hash)
			if gerr != nil {
				return nil, oautherr.Wrap(gerr)
			}
			if cur.NextHash != t.NextHash {
				return nil, errRefreshRaced
			}
			reuse.Detail = "successor already used"
			i.revokeGrant(ctx, t.GrantID, reuse)
			return nil, errRefreshReused
		}
		if err == nil {
			i.Audit.Record(ctx, audit.Event{Type: audit.RefreshRetried, UserID: user.ID, ClientID: client.ID,
				Detail: "rotation retried " + now.Sub(t.UsedAt).Round(time.Second).String() + " after it committed"})
		}
	}
	if errors.Is(err, storage.ErrNotFound) {
		return nil, errRefreshGone
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	i.Audit.Record(ctx, audit.Event{Type: audit.TokenRefreshed, UserID: user.ID, ClientID: client.ID, Detail: "scope=" + resp.Scope})
	return resp, nil
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
