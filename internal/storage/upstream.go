package storage

import (
	"context"
	"time"
)

// UpstreamLink ties a person's account at an upstream identity provider
// (package upstream) to a local user: (Upstream, Subject) is unique, and a
// user has at most one link per upstream.
type UpstreamLink struct {
	Upstream string // the upstream's configured id
	Subject  string // the upstream's identifier of the person
	UserID   string
	// Email is the address the upstream gave when the link was made, for
	// the person to recognise the account.
	Email      string
	CreatedAt  time.Time
	LastUsedAt time.Time
}

// UpstreamSession names a person's session at an upstream identity
// provider that a local session came from (OpenID Connect Back-Channel
// Logout 1.0 §2.6: the upstream's logout token names its sub, its sid, or
// both). The zero value is a session of no upstream.
type UpstreamSession struct {
	Upstream string // the upstream's configured id
	Subject  string // the upstream's sub of the person
	SID      string // the upstream's sid, empty when it sent none
}

// Ended returns the key under which an upstream's back-channel logout
// records (RevokeToken, until sign-ins in progress have expired) that the
// upstream session of u.SID ended, so that a sign-in through it that was in
// progress then gets no session when it finishes (package session).
func (u UpstreamSession) Ended() string {
	return "upstream-session:" + Hash(u.Upstream+"\x00"+u.SID)
}

// UpstreamLinks stores links to upstream identities. Upstream tokens are
// never stored.
type UpstreamLinks interface {
	// CreateUpstreamLink links an upstream identity to an existing user.
	// A linked identity, or a user linked to this upstream already,
	// yields ErrAlreadyExists.
	CreateUpstreamLink(ctx context.Context, l UpstreamLink) error
	// CreateUpstreamUser creates u and links it to l's identity in one
	// transaction: of concurrent first sign-ins of one identity, one
	// creates the user; the others get ErrAlreadyExists and create
	// nothing. A taken username or verified email is ErrAlreadyExists too.
	CreateUpstreamUser(ctx context.Context, u User, l UpstreamLink) error
	// GetUpstreamLink returns the link of an upstream identity.
	GetUpstreamLink(ctx context.Context, upstream, subject string) (*UpstreamLink, error)
	// ListUpstreamLinks returns the user's links, oldest first.
	ListUpstreamLinks(ctx context.Context, userID string) ([]UpstreamLink, error)
	// UseUpstreamLink records a sign-in through the link.
	UseUpstreamLink(ctx context.Context, upstream, subject string, at time.Time) error
	// DeleteUpstreamLink unlinks the user's identity at upstream; none is
	// ErrNotFound.
	DeleteUpstreamLink(ctx context.Context, userID, upstream string) error
	// UnlinkUpstream unlinks the user's identity at upstream while
	// another way to sign in remains: a password, a passkey, or a link to
	// another upstream. The check and the delete are one atomic step, so
	// that of concurrent unlinks of a person's last two links one
	// succeeds and the other yields ErrLastWayIn, changing nothing. No
	// such link (or no such user) is ErrNotFound.
	UnlinkUpstream(ctx context.Context, userID, upstream string) error
	// DeleteUpstreamSessions ends the local sessions that came from the
	// upstream session u of u.Upstream: those of its SID when set, and of
	// its Subject when set (both must match when both are), and returns
	// them. A u without Upstream, or with neither Subject nor SID, matches
	// nothing.
	DeleteUpstreamSessions(ctx context.Context, u UpstreamSession) ([]Session, error)
}

// Upstream is an upstream identity provider an operator added through the
// admin API (those of the configuration file are not stored). Config is
// its settings as JSON (package upstream's Config, without the secret);
// SecretSealed is its client secret, sealed (never stored in clear).
type Upstream struct {
	ID           string
	Config       string
	SecretSealed string
	Enabled      bool
	CreatedAt    time.Time
	UpdatedAt    time.Time
}

// Upstreams stores the upstreams added through the admin API.
type Upstreams interface {
	// CreateUpstream stores a new upstream; a taken id is ErrAlreadyExists.
	CreateUpstream(ctx context.Context, u Upstream) error
	// GetUpstream returns one upstream.
	GetUpstream(ctx context.Context, id string) (*Upstream, error)
	// ListUpstreams returns every stored upstream, by id.
	ListUpstreams(ctx context.Context) ([]Upstream, error)
	// UpdateUpstream replaces an upstream's config, sealed secret, enabled
	// flag and update time; an unknown id is ErrNotFound.
	UpdateUpstream(ctx context.Context, u Upstream) error
	// DeleteUpstream removes the upstream and every link to its
	// identities in one transaction (an upstream added later under the same
	// id, perhaps another provider, must not inherit them); an unknown id
	// is ErrNotFound.
	DeleteUpstream(ctx context.Context, id string) error
	// ListUpstreamUsers returns up to limit links of the upstream (stored
	// or configured) whose user id sorts after after, by user id.
	ListUpstreamUsers(ctx context.Context, upstream, after string, limit int) ([]UpstreamLink, error)
}
