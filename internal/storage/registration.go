package storage

import (
	"context"
	"time"
)

// InitialAccessToken is a token an operator issues for dynamic client
// registration: "the authorization server MAY require an initial access
// token" at the registration endpoint (RFC 7591 §3). Only its Hash is
// stored; the token is shown once, when issued.
type InitialAccessToken struct {
	ID   string // public handle, for listing and revoking
	Hash string // storage.Hash of the token
	// Label is the operator's note of whom or what it is for.
	Label     string
	CreatedBy string // the operator who issued it, as the admin API was told
	CreatedAt time.Time
	ExpiresAt time.Time // zero: never
	// MaxUses is how many clients it may register; 0 is no limit.
	MaxUses int
	// Uses is how many clients it registered.
	Uses      int
	RevokedAt time.Time // zero: not revoked
}

// States of an initial access token (InitialAccessToken.State).
const (
	TokenLive    = "live"
	TokenExpired = "expired"
	TokenUsedUp  = "used_up"
	TokenRevoked = "revoked"
)

// State says whether t may register a client at at (TokenLive), or why
// not: revoked, expired, or every use spent, in that order.
func (t InitialAccessToken) State(at time.Time) string {
	switch {
	case !t.RevokedAt.IsZero():
		return TokenRevoked
	case !t.ExpiresAt.IsZero() && !at.Before(t.ExpiresAt):
		return TokenExpired
	case t.MaxUses > 0 && t.Uses >= t.MaxUses:
		return TokenUsedUp
	}
	return TokenLive
}

// InitialAccessTokens stores the initial access tokens of dynamic client
// registration. Using one is counted by the store, so that a token's
// limit holds under concurrency and across nodes.
type InitialAccessTokens interface {
	// CreateInitialAccessToken stores a new token; a taken id or hash
	// is ErrAlreadyExists.
	CreateInitialAccessToken(ctx context.Context, t InitialAccessToken) error
	// GetInitialAccessToken returns the token with this hash, live or
	// not (State tells).
	GetInitialAccessToken(ctx context.Context, hash string) (*InitialAccessToken, error)
	// ListInitialAccessTokens returns every token, newest first.
	ListInitialAccessTokens(ctx context.Context) ([]InitialAccessToken, error)
	// UseInitialAccessToken counts one use of the token with this hash
	// and returns it as it is after the use: one conditional UPDATE
	// (not revoked, not expired at at, uses below the maximum), so that
	// of concurrent uses of a token with n uses left exactly n succeed.
	// A token that is not live is returned, unchanged, together with
	// ErrAlreadyUsed (its State says why); an unknown hash is
	// ErrNotFound.
	UseInitialAccessToken(ctx context.Context, hash string, at time.Time) (*InitialAccessToken, error)
	// RevokeInitialAccessToken revokes the token with this id as of at;
	// revoking twice keeps the first time, an unknown id is ErrNotFound.
	RevokeInitialAccessToken(ctx context.Context, id string, at time.Time) error
}
