// Package revoke implements token revocation (RFC 7009).
//
// Revoking a refresh token revokes its whole grant, and so every access
// token issued under it (RFC 7009 §2.1 "SHOULD"). Revoking a JWT access
// token puts its jti on a deny list until it expires. Unknown, invalid or
// expired tokens are answered with 200, as §2.2 requires.
package revoke

import (
	"errors"
	"github.com/bawwab/bawwab/internal/audit"
	"log/slog"
	"net/http"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// Endpoint is the revocation endpoint.
type Endpoint struct {
	Auth   *clientauth.Authenticator
	Issuer *token.Issuer
	Log    *slog.Logger
}

// Register adds POST /revoke to mux.
func (e *Endpoint) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /revoke", e.serve)
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	if err := e.revoke(r); err != nil {
		oautherr.WriteLogged(r.Context(), e.Log, w, "revocation failed", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(http.StatusOK)
}

func (e *Endpoint) revoke(r *http.Request) error {
	ctx := r.Context()
	client, err := token.ClientForm(e.Auth, r)
	if err != nil {
		return err
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		return oautherr.New(oautherr.InvalidRequest, "token is required")
	}
	switch hint := r.PostForm.Get("token_type_hint"); hint {
	case "", "access_token", "refresh_token":
	default:
		return oautherr.Newf(oautherr.UnsupportedTokenType, "token_type_hint %q is not supported; use access_token or refresh_token", hint)
	}
	now := e.Issuer.Now()
	if !token.IsJWT(raw) {
		rt, err := e.Issuer.Store.GetRefreshToken(ctx, storage.Hash(raw))
		if errors.Is(err, storage.ErrNotFound) {
			return nil // unknown: nothing to do (RFC 7009 §2.2)
		} else if err != nil {
			return oautherr.Wrap(err)
		}
		if rt.ClientID != client.ID {
			return oautherr.New(oautherr.UnauthorizedClient, "this token was issued to another client")
		}
		if err := e.Issuer.Store.RevokeGrant(ctx, rt.GrantID, now); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return oautherr.Wrap(err)
		}
		e.Issuer.Audit.Record(ctx, audit.Event{Type: audit.TokenRevoked, UserID: rt.UserID, ClientID: client.ID,
			Detail: "refresh token; grant_id=" + rt.GrantID})
		return nil
	}
	claims, err := e.Issuer.ValidateAccess(ctx, raw)
	if oautherr.Code(err) == oautherr.InvalidToken {
		return nil // unknown, expired or already revoked: nothing to do
	} else if err != nil {
		return err
	}
	if claims.ClientID != client.ID {
		return oautherr.New(oautherr.UnauthorizedClient, "this token was issued to another client")
	}
	if err := e.Issuer.Store.RevokeToken(ctx, claims.ID, claims.Expiry.Time()); err != nil {
		return oautherr.Wrap(err)
	}
	user := claims.UserID // the grant's user, never a pairwise sub; empty for client_credentials
	e.Issuer.Audit.Record(ctx, audit.Event{Type: audit.TokenRevoked, UserID: user, ClientID: client.ID, Detail: "access token; jti=" + claims.ID})
	return nil
}
