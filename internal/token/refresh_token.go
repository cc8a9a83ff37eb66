package token

import (
	"context"
	"errors"
	"net/url"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// RefreshToken is the refresh_token grant (RFC 6749 §6) with rotation on
// every use and reuse detection (RFC 9700 §4.14.2): presenting a refresh
// token that was already rotated revokes its whole grant.
type RefreshToken struct {
	Issuer *Issuer
}

// Type implements Grant.
func (RefreshToken) Type() string { return "refresh_token" }

// Exchange implements Grant.
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
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token is unknown or expired")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	now := i.Now()
	switch {
	case t.ClientID != client.ID:
		i.revokeGrant(ctx, t.GrantID, audit.Event{Type: audit.RefreshWrongClient, UserID: t.UserID, ClientID: client.ID,
			Detail: "issued to " + t.ClientID})
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token was issued to another client")
	case !t.UsedAt.IsZero():
		i.revokeGrant(ctx, t.GrantID, audit.Event{Type: audit.RefreshReuse, UserID: t.UserID, ClientID: client.ID})
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token was already used; for safety every token of this grant is now revoked")
	case !now.Before(t.ExpiresAt):
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token has expired")
	case t.JKT != "" && (dpop.From(ctx) == nil || dpop.From(ctx).JKT != t.JKT):
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
	next, err := i.newRefresh(ctx, grant, t.Scopes, hash, t.JKT)
	if errors.Is(err, storage.ErrAlreadyUsed) {
		i.revokeGrant(ctx, t.GrantID, audit.Event{Type: audit.RefreshReuse, UserID: t.UserID, ClientID: client.ID, Detail: "concurrent reuse"})
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token was already used; for safety every token of this grant is now revoked")
	} else if errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.New(oautherr.InvalidGrant, "the refresh token is unknown or expired")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	user, err := i.userOf(ctx, t.UserID, "grant")
	if err != nil {
		return nil, err
	}
	resp, err := i.respond(ctx, issue{client: client, subject: user.ID, user: user, scopes: scopes, grant: grant, authTime: t.AuthTime, refresh: next})
	if err == nil {
		i.Audit.Record(ctx, audit.Event{Type: audit.TokenRefreshed, UserID: user.ID, ClientID: client.ID, Detail: "scope=" + resp.Scope})
	}
	return resp, err
}

var _ Grant = RefreshToken{}
