// Package token implements the token endpoint (RFC 6749 §3.2) with one file
// per grant, and mints and validates the tokens bawwab issues: RFC 9068 JWT
// access tokens, opaque refresh tokens, and OpenID Connect ID tokens.
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"strings"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/go-jose/go-jose/v4/jwt"
)

// AccessClaims are the claims of a JWT access token (RFC 9068 §2.2).
type AccessClaims struct {
	jwt.Claims
	ClientID string `json:"client_id"`
	Scope    string `json:"scope,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	// ACR and AMR say how the person signed in (RFC 9068 §2.2.1), for a
	// resource server that wants more than a password (RFC 9470 §3).
	ACR string   `json:"acr,omitempty"`
	AMR []string `json:"amr,omitempty"`
	// GrantID links the token to its grant, so that revoking the grant
	// (consent revoked, code replayed, refresh token reused) revokes it.
	GrantID string `json:"gid,omitempty"`
	// Act is the party acting for the subject, in a token issued by
	// delegation (RFC 8693 §4.1).
	Act *Actor `json:"act,omitempty"`
	// Cnf binds the token to a DPoP key (RFC 9449 §6).
	Cnf *Confirmation `json:"cnf,omitempty"`
	// UserID is the user behind the token, read from its grant by
	// ValidateAccess (a pairwise sub does not name the user); not a claim.
	UserID string `json:"-"`
	// User is that user, as ValidateAccess read them to check they may
	// still use tokens.
	User *storage.User `json:"-"`
	// Released are the claims the grant released individually (OpenID
	// Connect Core §5.5), read by ValidateAccess; not a claim.
	Released Released `json:"-"`
}

// Confirmation is a cnf claim: the thumbprint of the key a token is
// bound to.
type Confirmation struct {
	JKT string `json:"jkt"`
}

// Actor is an act claim: who acts, and, nested, for whom that one acted.
type Actor struct {
	Subject  string `json:"sub"`
	ClientID string `json:"client_id,omitempty"`
	Act      *Actor `json:"act,omitempty"`
}

// IDClaims are the standard claims of an ID token (OpenID Connect Core §2).
// User claims released by scope are added beside them.
type IDClaims struct {
	jwt.Claims
	Nonce    string `json:"nonce,omitempty"`
	AuthTime int64  `json:"auth_time,omitempty"`
	AtHash   string `json:"at_hash,omitempty"`
	AZP      string `json:"azp,omitempty"`
	// AMR says how the user authenticated (RFC 8176): "pwd".
	AMR []string `json:"amr,omitempty"`
	ACR string   `json:"acr,omitempty"`
}

// Response is a successful token response (RFC 6749 §5.1).
type Response struct {
	AccessToken  string `json:"access_token"`
	TokenType    string `json:"token_type"`
	ExpiresIn    int    `json:"expires_in"`
	RefreshToken string `json:"refresh_token,omitempty"`
	IDToken      string `json:"id_token,omitempty"`
	Scope        string `json:"scope"`
	// IssuedTokenType is set by token exchange (RFC 8693 §2.2.1).
	IssuedTokenType string `json:"issued_token_type,omitempty"`
}

// NewOpaque returns a random opaque token: 160 bits, URL-safe.
func NewOpaque() string { return rand.Text() + rand.Text()[:6] }

// IsJWT reports whether raw has the shape of a compact JWS: three
// dot-separated parts. The opaque tokens bawwab issues never contain a dot,
// so the shape alone tells a JWT access token from a refresh token, and
// endpoints ask only the store that can know the token.
func IsJWT(raw string) bool { return strings.Count(raw, ".") == 2 }

// NewID returns a random identifier for grants, jtis and requests.
func NewID() string { return rand.Text() }

// atHash computes at_hash (OpenID Connect Core §3.1.3.6): the left half of
// the SHA-256 of the access token, base64url encoded, for ES256.
func atHash(accessToken string) string {
	sum := sha256.Sum256([]byte(accessToken))
	return base64.RawURLEncoding.EncodeToString(sum[:len(sum)/2])
}
