// Package introspect implements token introspection (RFC 7662).
//
// The caller must authenticate as a client. A client learns about a token
// only if the token was issued to it, or if the client is a resource server
// named in the token's audience (its client id is an aud value); any other
// token is reported inactive, so a client cannot probe tokens of others
// (RFC 7662 §4, token scanning).
package introspect

import (
	"context"
	"errors"
	"log/slog"
	"net/http"
	"slices"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// Endpoint is the introspection endpoint.
type Endpoint struct {
	Auth   *clientauth.Authenticator
	Issuer *token.Issuer
	Log    *slog.Logger
}

// Response is the introspection response (RFC 7662 §2.2).
type Response struct {
	Active    bool     `json:"active"`
	Scope     string   `json:"scope,omitempty"`
	ClientID  string   `json:"client_id,omitempty"`
	Username  string   `json:"username,omitempty"`
	TokenType string   `json:"token_type,omitempty"`
	Exp       int64    `json:"exp,omitempty"`
	Iat       int64    `json:"iat,omitempty"`
	Nbf       int64    `json:"nbf,omitempty"`
	Sub       string   `json:"sub,omitempty"`
	Aud       []string `json:"aud,omitempty"`
	Iss       string   `json:"iss,omitempty"`
	Jti       string   `json:"jti,omitempty"`
	AuthTime  int64    `json:"auth_time,omitempty"`
	// ACR and AMR say how the person signed in (RFC 9068 §2.2.1).
	ACR string   `json:"acr,omitempty"`
	AMR []string `json:"amr,omitempty"`
	// Cnf is the DPoP key the token is bound to (RFC 9449 §6.2).
	Cnf *token.Confirmation `json:"cnf,omitempty"`
}

// Register adds POST /introspect to mux.
func (e *Endpoint) Register(mux *http.ServeMux) {
	mux.HandleFunc("POST /introspect", e.serve)
}

func (e *Endpoint) serve(w http.ResponseWriter, r *http.Request) {
	resp, err := e.introspect(r)
	oautherr.Respond(r.Context(), e.Log, w, "introspection failed", resp, err)
}

// introspect answers an introspection request (RFC 7662 §2.1): the
// client authenticates, and any token that is not active for it (unknown,
// expired, revoked, of another client) gets only "active": false (§2.2).
func (e *Endpoint) introspect(r *http.Request) (*Response, error) {
	client, err := token.ClientForm(e.Auth, r)
	if err != nil {
		return nil, err
	}
	raw := r.PostForm.Get("token")
	if raw == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "token is required")
	}
	if !token.IsJWT(raw) {
		return e.refreshToken(r.Context(), client, raw)
	}
	return e.accessToken(r.Context(), client, raw)
}

// inactive is the answer for a token that is not active (RFC 7662 §2.2).
func inactive() *Response { return &Response{Active: false} }

// refreshToken introspects an opaque refresh token: active when it is the
// client's, not yet rotated, not expired, and its grant lives.
func (e *Endpoint) refreshToken(ctx context.Context, client *storage.Client, raw string) (*Response, error) {
	now := e.Issuer.Now()
	chain, err := e.Issuer.Store.GetRefreshTokenChain(ctx, storage.Hash(raw))
	if errors.Is(err, storage.ErrNotFound) {
		return inactive(), nil
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	rt := &chain.RefreshToken
	if rt.ClientID != client.ID || !rt.UsedAt.IsZero() || !now.Before(rt.ExpiresAt) || token.ChainEnded(chain) {
		return inactive(), nil
	}
	e.Issuer.Used(ctx, rt.UserID, rt.ClientID)
	return &Response{Active: true, Scope: scope.Join(rt.Scopes), ClientID: rt.ClientID, TokenType: "refresh_token",
		Exp: rt.ExpiresAt.Unix(), Iat: rt.CreatedAt.Unix(), Sub: e.Issuer.Subject(client, rt.UserID), Iss: e.Issuer.URL, AuthTime: rt.AuthTime.Unix()}, nil
}

// accessToken introspects a JWT access token: active when it validates
// and was issued to the client or names it as an audience.
func (e *Endpoint) accessToken(ctx context.Context, client *storage.Client, raw string) (*Response, error) {
	c, err := e.Issuer.ValidateAccess(ctx, raw)
	if oautherr.Code(err) == oautherr.InvalidToken {
		return inactive(), nil
	} else if err != nil {
		return nil, err
	}
	if c.ClientID != client.ID && !slices.Contains([]string(c.Audience), client.ID) {
		return inactive(), nil
	}
	e.Issuer.Used(ctx, c.UserID, c.ClientID)
	return accessResponse(c), nil
}

// accessResponse is the answer for an active access token (RFC 7662
// §2.2), with its DPoP binding (RFC 9449 §6.2).
func accessResponse(c *token.AccessClaims) *Response {
	resp := &Response{Active: true, Scope: c.Scope, ClientID: c.ClientID, TokenType: "Bearer", Sub: c.Subject,
		Aud: c.Audience, Iss: c.Issuer, Jti: c.ID, AuthTime: c.AuthTime, ACR: c.ACR, AMR: c.AMR, Cnf: c.Cnf}
	if c.Cnf != nil {
		resp.TokenType = "DPoP"
	}
	if c.Expiry != nil {
		resp.Exp = c.Expiry.Time().Unix()
	}
	if c.IssuedAt != nil {
		resp.Iat = c.IssuedAt.Time().Unix()
	}
	if c.NotBefore != nil {
		resp.Nbf = c.NotBefore.Time().Unix()
	}
	return resp
}
