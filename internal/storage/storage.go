// Package storage defines the one contract every bawwab store implements, the
// value types it stores and its sentinel errors.
//
// Every method takes ctx first. Values are passed and returned by value or as
// fresh pointers; a caller may keep and change what it gets. Secrets (client
// secrets, codes, refresh tokens, session ids) are never stored: only their
// SHA-256 hashes, under fields named *Hash. Every backend must pass
// storagetest.Run.
package storage

import (
	"context"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"strings"
	"time"
	"unicode/utf8"
)

// Hash is the stored form of a secret (client secret, code, refresh token,
// session id): its SHA-256, hex encoded. These secrets are random with at
// least 128 bits of entropy, so a fast hash suffices; passwords are not
// hashed here but with argon2id (package password).
func Hash(secret string) string {
	sum := sha256.Sum256([]byte(secret))
	return hex.EncodeToString(sum[:])
}

// ValidText reports whether s can be stored in, or looked up by, a text
// column of every backend: valid UTF-8 without NUL. PostgreSQL refuses
// anything else with an error, so a caller holding an identifier from a
// request (a user name, a client id) that is not ValidText knows no row
// matches it without asking.
func ValidText(s string) bool {
	return utf8.ValidString(s) && strings.IndexByte(s, 0) < 0
}

// Sentinel errors. Backends wrap them with %w; callers test with errors.Is.
var (
	// ErrNotFound means no row matches.
	ErrNotFound = errors.New("storage: not found")
	// ErrAlreadyExists means a row with the same key or unique field exists.
	ErrAlreadyExists = errors.New("storage: already exists")
	// ErrAlreadyUsed means a single-use value (authorization code, refresh
	// token) was consumed before. The method still returns the stored value
	// together with this error, so that the caller can revoke what it issued
	// (RFC 9700 §4.5.3.1 and §4.14.2).
	ErrAlreadyUsed = errors.New("storage: already used")
	// ErrUnavailable means the store could not be reached or could not
	// write right now: connection refused or reset, a server shutting
	// down or out of connections, a full disk, a read-only or locked
	// database, a deadline passed while waiting for it. The request may
	// well succeed later; it is not a bug, and handlers answer 503
	// temporarily_unavailable (package oautherr) instead of 500. Backends
	// classify their driver errors once and wrap them with this sentinel
	// (keeping the driver error in the chain); callers test with errors.Is.
	ErrUnavailable = errors.New("storage: unavailable")
	// ErrLastWayIn means the change would leave a person no way to sign
	// in (no password, no passkey, no upstream link), and was not made.
	ErrLastWayIn = errors.New("storage: the last way to sign in")
	// ErrLastAdmin means the change would leave no enabled admin (no one
	// could sign in to the admin console), and was not made.
	ErrLastAdmin = errors.New("storage: the last enabled admin")
)

// AdminLoss is a change to a user that takes an enabled admin away
// (Storage.KeepingAdmin).
type AdminLoss int

// The changes KeepingAdmin makes: SetUserAdmin(id, false),
// SetUserDisabled(id, true) and DeleteUser(id, at).
const (
	Demote AdminLoss = iota + 1
	Disable
	Delete
)

// User is a local account.
type User struct {
	ID            string
	Username      string
	PasswordHash  string // PHC-formatted argon2id hash
	Name          string
	Email         string
	EmailVerified bool
	Picture       string // URL of the user's photo
	CreatedAt     time.Time
	// Profile holds the other standard claims (OpenID Connect Core §5.1).
	Profile Profile
	// Disabled is set by an operator: the user cannot sign in, and no
	// token of the user is honoured, until an operator enables it again.
	Disabled bool
	// Admin users may sign in to the admin console (package console).
	Admin bool
}

// Profile is what OpenID Connect Core §5.1 defines about a person beside
// name, email and picture. Empty strings are claims not set.
type Profile struct {
	GivenName, FamilyName, MiddleName, Nickname string
	Website                                     string // URL of the person's web page
	Gender                                      string
	Birthdate                                   string // YYYY-MM-DD, YYYY, or 0000-MM-DD
	Zoneinfo                                    string // an IANA time zone, e.g. Asia/Amman
	Locale                                      string // a BCP 47 language tag, e.g. ar-JO
	PhoneNumber                                 string // E.164, e.g. +962791234567
	PhoneNumberVerified                         bool
	Address                                     Address
	// UpdatedAt is when the profile (name, email, picture included) last
	// changed; zero if never.
	UpdatedAt time.Time
}

// ProfileClaims is a Profile as JSON: the standard claims under their
// OpenID Connect Core §5.1 names, without UpdatedAt. The store keeps a
// user's profile in this form, and the admin API speaks it.
type ProfileClaims struct {
	GivenName           string  `json:"given_name,omitempty"`
	FamilyName          string  `json:"family_name,omitempty"`
	MiddleName          string  `json:"middle_name,omitempty"`
	Nickname            string  `json:"nickname,omitempty"`
	Website             string  `json:"website,omitempty"`
	Gender              string  `json:"gender,omitempty"`
	Birthdate           string  `json:"birthdate,omitempty"`
	Zoneinfo            string  `json:"zoneinfo,omitempty"`
	Locale              string  `json:"locale,omitempty"`
	PhoneNumber         string  `json:"phone_number,omitempty"`
	PhoneNumberVerified bool    `json:"phone_number_verified,omitempty"`
	Address             Address `json:"address,omitzero"`
}

// Claims is p's JSON form.
func (p Profile) Claims() ProfileClaims {
	return ProfileClaims{p.GivenName, p.FamilyName, p.MiddleName, p.Nickname, p.Website, p.Gender, p.Birthdate, p.Zoneinfo,
		p.Locale, p.PhoneNumber, p.PhoneNumberVerified, p.Address}
}

// Profile is the profile c describes, last changed at updatedAt.
func (c ProfileClaims) Profile(updatedAt time.Time) Profile {
	return Profile{GivenName: c.GivenName, FamilyName: c.FamilyName, MiddleName: c.MiddleName, Nickname: c.Nickname,
		Website: c.Website, Gender: c.Gender, Birthdate: c.Birthdate, Zoneinfo: c.Zoneinfo, Locale: c.Locale, PhoneNumber: c.PhoneNumber,
		PhoneNumberVerified: c.PhoneNumberVerified, Address: c.Address, UpdatedAt: updatedAt}
}

// Address is the structured address claim (OpenID Connect Core §5.1.1).
type Address struct {
	Formatted     string `json:"formatted,omitempty"`
	StreetAddress string `json:"street_address,omitempty"`
	Locality      string `json:"locality,omitempty"`
	Region        string `json:"region,omitempty"`
	PostalCode    string `json:"postal_code,omitempty"`
	Country       string `json:"country,omitempty"`
}

// IsZero reports whether no part of the address is set.
func (a Address) IsZero() bool { return a == Address{} }

// Client is a registered OAuth client (RFC 6749 §2).
type Client struct {
	ID   string
	Name string
	// SecretHash is the SHA-256 of the server-generated secret, hex encoded;
	// empty for a public client.
	SecretHash   string
	Public       bool
	RedirectURIs []string
	GrantTypes   []string // e.g. authorization_code, refresh_token, client_credentials
	Scopes       []string // scopes the client may ask for
	// RequirePAR makes /authorize accept this client's requests only
	// through pushed authorization requests (RFC 9126 §6).
	RequirePAR bool
	// RegistrationTokenHash is the SHA-256 of the registration access token
	// of a dynamically registered client (RFC 7592); empty otherwise.
	RegistrationTokenHash string
	// AuthMethod is private_key_jwt for a client that authenticates with
	// signed assertions (RFC 7523); empty for secrets or none.
	AuthMethod string
	// JWKS (a JSON Web Key Set, by value) or JWKSURI holds the public keys
	// of a private_key_jwt client.
	JWKS    string
	JWKSURI string
	// BackchannelLogoutURI receives a logout token when a user of the
	// client signs out (OpenID Connect Back-Channel Logout).
	BackchannelLogoutURI string
	// Pairwise gives the client's users a subject identifier of their own
	// for this client (OpenID Connect Core §8.1).
	Pairwise bool
	// SectorIdentifierURI, when set, names the sector of a pairwise
	// client's subject identifiers: its host (OpenID Connect Core §8.1).
	// It was fetched and found to list every redirect URI at registration.
	SectorIdentifierURI string
	// SecretSealed is the secret itself, encrypted with a server key, for
	// a client_secret_jwt client (RFC 7523), which signs with it; empty
	// for every other client, whose secret is kept only as SecretHash.
	SecretSealed string
	// IDTokenAlg signs the client's ID tokens and logout tokens
	// (id_token_signed_response_alg, OpenID Connect Registration §2); empty
	// means RS256, the default of OpenID Connect Core §3.1.3.7.
	IDTokenAlg string
	// PKCEPolicy is PKCERequired (empty) or PKCENonceInstead.
	PKCEPolicy string
	// SecondFactor makes every user of the client pass a second factor
	// at sign-in, whatever the server's policy (set by the operator only:
	// dynamic registration neither sets nor clears it).
	SecondFactor bool
	// DPoPBound makes the token endpoint refuse every token request of the
	// client that carries no DPoP proof, so that all its access tokens
	// (and the refresh tokens of a public client) are bound to a key:
	// dpop_bound_access_tokens (RFC 9449 §5.2).
	DPoPBound bool
	// ClientInfo is what the client says about itself; Verified says the
	// operator checked it. The consent page shows both, so that a person
	// sees who is asking (RFC 7591 §2, RFC 9700 §4.15 on impersonation).
	ClientInfo
	Verified  bool
	CreatedAt time.Time
}

// PKCE policies of a client. RFC 9700 §2.1.1 lets a confidential OpenID
// Connect client rely on nonce instead of PKCE; bawwab requires PKCE of
// every client unless the operator says otherwise for one.
const (
	// PKCERequired: every authorization request carries a code_challenge.
	PKCERequired = ""
	// PKCENonceInstead: a confidential client may omit PKCE from a request
	// that asks for openid and sends a nonce. Public clients never may.
	PKCENonceInstead = "nonce_instead"
)

// IDTokenSigningAlg is the alg of the client's ID tokens.
func (c *Client) IDTokenSigningAlg() string {
	if c.IDTokenAlg == "" {
		return "RS256"
	}
	return c.IDTokenAlg
}

// ClientInfo is the client metadata people read on the consent page
// (RFC 7591 §2): where the app lives, its logo, its privacy policy and
// terms of service. Each is an https URL, or empty.
type ClientInfo struct {
	ClientURI, LogoURI, PolicyURI, TOSURI string
}

// SubjectType is "pairwise" or "public" (OpenID Connect Core §8).
func (c *Client) SubjectType() string {
	if c.Pairwise {
		return "pairwise"
	}
	return "public"
}

// Consent is what a user granted a client, remembered so that the consent
// screen is skipped when the client asks for no more than this.
type Consent struct {
	UserID    string
	ClientID  string
	Scopes    []string
	GrantedAt time.Time // first granted
	UpdatedAt time.Time // last changed
	// LastUsedAt is when the client last used the access: a refresh, an
	// introspection of one of its tokens, a userinfo call. Zero if never.
	// It is recorded at most once a minute (TouchConsent); SaveConsent
	// keeps it.
	LastUsedAt time.Time
}

// Grant is one family of tokens: what one authorization code (or one
// refresh chain) issued. Revoking a grant invalidates every access and
// refresh token it issued.
type Grant struct {
	ID        string
	ClientID  string
	UserID    string
	Scopes    []string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time // absolute end of the refresh chain
	RevokedAt time.Time // zero while valid
	// Claims are the claims the user released individually (OpenID
	// Connect Core §5.5), as the code that started the grant carried them.
	Claims string
	// AMR are the authentication methods of the sign-in that started the
	// grant (RFC 8176), for its ID tokens; empty means a password.
	AMR []string
}

// AuthRequest is a validated authorization request waiting for the user to
// log in or consent.
type AuthRequest struct {
	ID                  string
	ClientID            string
	RedirectURI         string
	Scopes              []string
	State               string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	Prompt              string
	MaxAge              int // seconds; -1 when absent
	// DPoPJKT binds the code to a DPoP key (RFC 9449 §10); Resources are
	// the audiences asked for (RFC 8707).
	DPoPJKT   string
	Resources []string
	// UILocales are the languages the client asked the pages to speak
	// (OpenID Connect Core §3.1.2.1), kept for a pushed request.
	UILocales string
	// Claims is the request's claims parameter (OpenID Connect Core
	// §5.5), validated JSON as sent, or empty: the consent page marks the
	// essential ones and asks for claims requested on their own.
	Claims string
	// ACRValues are the request's acr_values (OpenID Connect Core
	// §3.1.2.1), space separated, most preferred first.
	ACRValues string
	CreatedAt time.Time
	ExpiresAt time.Time
}

// AuthCode is an issued authorization code (RFC 6749 §4.1.2).
type AuthCode struct {
	Hash                string
	GrantID             string // the grant its tokens will belong to
	ClientID            string
	UserID              string
	RedirectURI         string
	Scopes              []string
	Nonce               string
	CodeChallenge       string
	CodeChallengeMethod string
	DPoPJKT             string   // the key the code is bound to (RFC 9449 §10)
	Resources           []string // the audiences its tokens are for (RFC 8707)
	// Claims are the individually requested claims the user released
	// (OpenID Connect Core §5.5), JSON, or empty.
	Claims string
	// AMR are the authentication methods of the session that issued the
	// code (RFC 8176); empty means a password.
	AMR       []string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until redeemed
}

// RefreshToken is an issued refresh token (RFC 6749 §6).
type RefreshToken struct {
	Hash      string
	GrantID   string
	ClientID  string
	UserID    string
	Scopes    []string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until rotated
	// JKT binds the token to a DPoP key (RFC 9449 §5): its thumbprint.
	JKT string
	// NextHash is the hash of the token that replaced this one at its
	// rotation; empty while unused, and for a successor that a retried
	// rotation replaced (see RetryRotation), which is spent for good.
	NextHash string
}

// RefreshTokenChain is a refresh token with what a use of it must check:
// its grant and its user, as GetRefreshTokenChain reads them together.
type RefreshTokenChain struct {
	RefreshToken
	Grant *Grant // nil when the grant no longer exists
	User  *User  // the token's user; nil when it no longer exists
}

// Session is a logged-in browser session.
type Session struct {
	IDHash string
	UserID string
	// AMR are the authentication methods the sign-in proved (RFC 8176:
	// pwd, otp, hwk, swk, mfa); empty means a password.
	AMR       []string
	AuthTime  time.Time
	CreatedAt time.Time
	ExpiresAt time.Time
	// Upstream is the session at an upstream identity provider that the
	// sign-in went through, if any: its back-channel logout ends this one.
	Upstream UpstreamSession
}

// SigningKey is a private JSON Web Key used to sign tokens.
type SigningKey struct {
	ID         string // kid
	Algorithm  string
	PrivateJWK []byte
	CreatedAt  time.Time
	RetiredAt  time.Time // zero while it signs; published until tokens expire
}

// ConsentView is a consent joined with its client's name, for the
// "Connected apps" page.
type ConsentView struct {
	Consent
	ClientName string
}

// Device code states (RFC 8628).
const (
	DevicePending  = "pending"
	DeviceApproved = "approved"
	DeviceDenied   = "denied"
)

// DeviceCode is a device authorization request (RFC 8628 §3.2): the
// device polls with the device code (stored hashed) while the user enters
// the user code in a browser, logs in and decides.
type DeviceCode struct {
	Hash      string
	UserCode  string // normalized: upper case, no separator
	ClientID  string
	Scopes    []string // asked for
	Interval  int      // seconds between polls
	CreatedAt time.Time
	ExpiresAt time.Time
	LastPoll  time.Time // to the millisecond; zero before the first poll

	Status        string // DevicePending, DeviceApproved or DeviceDenied
	UserID        string
	GrantedScopes []string
	AuthTime      time.Time
	// AMR are the authentication methods of the sign-in that approved it
	// (RFC 8176), for the ID tokens of its grant.
	AMR    []string
	UsedAt time.Time // zero until tokens were issued
}

// DeviceGrantID is the id of the grant that the device code with this
// hash starts, fixed before its tokens are issued, so that DeleteUser can
// revoke it ahead of a poll racing the deletion.
func DeviceGrantID(deviceHash string) string { return "device:" + deviceHash }

// ScopeDef is a scope of the catalog as stored: what it means to the user
// in each language, whether it is sensitive, which claims it releases.
type ScopeDef struct {
	Name        string
	Position    int // order on consent screens
	Description map[string]string
	// Explanation is one line, by language, on what sharing it means.
	Explanation map[string]string
	Sensitive   bool
	Required    bool
	Claims      []string
}

// AuditEvent is one security-relevant event: a login, a consent, a token
// issued or revoked, an attack detected. It never holds a secret.
type AuditEvent struct {
	ID        string
	Time      time.Time // stored to the millisecond
	Type      string    // e.g. login, login_failed, consent, token_issued, code_replay
	UserID    string    // empty when no user is involved
	ClientID  string
	IP        string
	Detail    string // scopes, grant type, reason: never a secret
	ExpiresAt time.Time
}

// AuditFilter selects audit events; zero fields match everything.
type AuditFilter struct {
	UserID   string
	ClientID string
	Type     string
	// Upstream, an upstream id (letters, digits, '-'), selects the events
	// whose detail names it: sign-ins through it (method=upstream:ID) and
	// the events of package upstream and of its operators (upstream=ID).
	Upstream string
	Since    time.Time // inclusive
	Until    time.Time // exclusive
	Limit    int       // at most this many, newest first; zero means 100
}

// Throttle is the policy ReserveAttempt applies to the attempts of one key
// (package ratelimit): the first Free may be made at once; after that, an
// attempt may be made only once Delay of the count has passed since the
// previous one.
type Throttle struct {
	Free      int
	Base, Max time.Duration
}

// Delay is how long after the latest attempt the next may be made when n
// attempts are counted: none while n < Free, then Base, doubling with each
// further attempt, up to Max.
func (t Throttle) Delay(n int) time.Duration {
	if n < t.Free {
		return 0
	}
	d := t.Base << min(n-t.Free, 30)
	if d > t.Max || d <= 0 {
		d = t.Max
	}
	return d
}

// Outcome is how a reserved attempt ended (EndAttempt).
type Outcome int

const (
	// AttemptFailed leaves the attempt counted, as a failure.
	AttemptFailed Outcome = iota + 1
	// AttemptSucceeded forgets the key's failures; attempts of the key
	// still in flight stay counted.
	AttemptSucceeded
	// AttemptReleased uncounts the attempt: it decided nothing about the
	// key (it was refused for another key, or the store failed).
	AttemptReleased
)

// Storage is the persistence contract of bawwab.
type Storage interface {
	Factors
	UpstreamLinks
	Upstreams
	InitialAccessTokens

	// CreateUser stores a new user; a taken id, or a username whose
	// UsernameKey another user's has (admin and Admin), is
	// ErrAlreadyExists. CreateUpstreamUser keeps the same rule.
	CreateUser(ctx context.Context, u User) error
	GetUser(ctx context.Context, id string) (*User, error)
	// GetUserByUsername returns the user with exactly this username.
	GetUserByUsername(ctx context.Context, username string) (*User, error)
	// UsernameTaken reports whether a user has this username, or one of
	// the same UsernameKey, so that a form can refuse a lookalike before
	// it spends anything (an invitation).
	UsernameTaken(ctx context.Context, username string) (bool, error)
	ListUsers(ctx context.Context) ([]User, error)
	UpdateUserPassword(ctx context.Context, id, passwordHash string) error
	// SetFirstPassword gives a user without a password (one made just in
	// time by an upstream sign-in) its first one; a user who has one
	// already (set meanwhile by a concurrent request) is ErrAlreadyExists
	// and keeps it, an unknown user ErrNotFound.
	SetFirstPassword(ctx context.Context, id, passwordHash string) error
	// SetUserDisabled disables or enables the user; an unknown user is
	// ErrNotFound. CreateUser stores User.Disabled as given; UpdateUser
	// leaves it alone.
	SetUserDisabled(ctx context.Context, id string, disabled bool) error
	// SetUserAdmin gives or takes the admin role; an unknown user is
	// ErrNotFound. CreateUser stores User.Admin as given; UpdateUser
	// leaves it alone.
	SetUserAdmin(ctx context.Context, id string, admin bool) error
	// UpdateUser replaces a user's name, email, email_verified, picture
	// and profile; the username, password and creation time stay.
	UpdateUser(ctx context.Context, u User) error
	// DeleteUser removes the user, its sessions, consents, factors,
	// emailed links and unsent mail, and revokes its grants, in one
	// transaction. The grant of every code and approved device code issued
	// to the user (DeviceGrantID) that has none yet is created revoked, so
	// that a redemption or poll racing the deletion gets tokens dead on
	// arrival.
	DeleteUser(ctx context.Context, id string, at time.Time) error
	// KeepingAdmin makes the change to the user (as SetUserAdmin,
	// SetUserDisabled or DeleteUser would) unless it would take the number
	// of enabled admins from one or more to none: that is ErrLastAdmin, and
	// nothing changes. A store that has no enabled admin at all (one made
	// before the role existed) is not refused. The check and the change are
	// one transaction that holds every enabled admin's row, so two admins
	// demoting each other at once leave one of them admin.
	KeepingAdmin(ctx context.Context, id string, change AdminLoss, at time.Time) error

	CreateClient(ctx context.Context, c Client) error
	GetClient(ctx context.Context, id string) (*Client, error)
	ListClients(ctx context.Context) ([]Client, error)
	// UpdateClient replaces every field of the client with id c.ID but
	// CreatedAt.
	UpdateClient(ctx context.Context, c Client) error
	// DeleteClient removes the client and its consents, and revokes its
	// grants as of at, in one transaction.
	DeleteClient(ctx context.Context, id string, at time.Time) error

	GetConsent(ctx context.Context, userID, clientID string) (*Consent, error)
	// SaveConsent creates or replaces the consent of c.UserID for c.ClientID.
	SaveConsent(ctx context.Context, c Consent) error
	ListConsents(ctx context.Context, userID string) ([]ConsentView, error)
	// ListClientConsents returns every user's consent to one client.
	ListClientConsents(ctx context.Context, clientID string) ([]Consent, error)
	// TouchConsent records that the client used the user's consent at the
	// given time, unless it was recorded less than every before: one
	// conditional UPDATE, so that concurrent uses on any number of nodes
	// write at most once per every. It reports whether it wrote; a missing
	// consent is no error, and reports false.
	TouchConsent(ctx context.Context, userID, clientID string, at time.Time, every time.Duration) (bool, error)
	// RevokeConsent deletes the consent and revokes, at the given time, every
	// grant of that user to that client, in one transaction.
	RevokeConsent(ctx context.Context, userID, clientID string, at time.Time) error

	CreateGrant(ctx context.Context, g Grant) error
	GetGrant(ctx context.Context, id string) (*Grant, error)
	// RevokeGrant marks the grant revoked; revoking twice is not an error.
	RevokeGrant(ctx context.Context, id string, at time.Time) error

	CreateAuthRequest(ctx context.Context, r AuthRequest) error
	GetAuthRequest(ctx context.Context, id string) (*AuthRequest, error)
	DeleteAuthRequest(ctx context.Context, id string) error

	CreateAuthCode(ctx context.Context, c AuthCode) error
	// ConsumeAuthCode marks the code used at the given time and returns it
	// with its user, which the redemption needs next (nil when the user no
	// longer exists), read by the same statement where the backend can.
	// It succeeds at most once per code, whatever the concurrency. A code
	// used before is returned, without its user, together with
	// ErrAlreadyUsed.
	ConsumeAuthCode(ctx context.Context, hash string, at time.Time) (*AuthCode, *User, error)

	// StartGrant stores the grant g of a redeemed code, its first refresh
	// token (unless first is nil) and the events that record it, as one
	// atomic change: one commit instead of one per row. A grant with g.ID
	// that exists already (a replay of the code that raced ahead created
	// it revoked) is kept as it is, and first is stored under it all the
	// same, so that its tokens are dead on arrival. It stores nothing and is
	// ErrNotFound while g's client (g.ClientID) does not exist; a
	// DeleteClient concurrent with it, on any node, waits for it and
	// revokes the grant, so that no live grant outlives its client (a token
	// request that authenticated the client just before its deletion, or on
	// a node whose client cache has not seen it yet, issues nothing that
	// works).
	StartGrant(ctx context.Context, g Grant, first *RefreshToken, events ...AuditEvent) error

	CreateRefreshToken(ctx context.Context, t RefreshToken) error
	GetRefreshToken(ctx context.Context, hash string) (*RefreshToken, error)
	// GetRefreshTokenChain returns the refresh token with this hash
	// together with its grant and its user, read by one statement, so that
	// a refresh or an introspection asks the store once. Grant or User is
	// nil when it no longer exists. Nothing is checked: a revoked grant or
	// a disabled user is returned as it is. An unknown hash is ErrNotFound.
	GetRefreshTokenChain(ctx context.Context, hash string) (*RefreshTokenChain, error)
	// RotateRefreshToken marks oldHash used and stores next, and records
	// events, atomically. It succeeds at most once per old token; a token
	// used before yields ErrAlreadyUsed, and neither next nor events are
	// stored.
	RotateRefreshToken(ctx context.Context, oldHash string, next RefreshToken, at time.Time, events ...AuditEvent) error
	// RetryRotation rotates a refresh token again whose rotation response
	// was lost: oldHash, rotated at or after since into successorHash, is
	// given next instead, and successorHash, still unused, is spent (marked
	// used, with no NextHash), so that one live token remains in the chain.
	// Atomic: of concurrent retries at most one succeeds. When oldHash was
	// not rotated at or after since, its NextHash is no longer
	// successorHash (another retry won), or the successor was used, it
	// yields ErrAlreadyUsed and changes nothing; an unknown oldHash yields
	// ErrNotFound.
	RetryRotation(ctx context.Context, oldHash, successorHash string, next RefreshToken, since, at time.Time) error

	// RevokeToken records that the access token with this jti is revoked
	// until it expires anyway. The same deny list holds the upstream
	// sessions that ended (UpstreamSession.Ended), under a prefix no jti has.
	RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error
	IsTokenRevoked(ctx context.Context, jti string) (bool, error)

	CreateSession(ctx context.Context, s Session) error
	GetSession(ctx context.Context, idHash string) (*Session, error)
	DeleteSession(ctx context.Context, idHash string) error
	// DeleteUserSessions signs the user out everywhere and returns how many
	// sessions ended.
	DeleteUserSessions(ctx context.Context, userID string) (int64, error)

	CreateSigningKey(ctx context.Context, k SigningKey) error
	// ListSigningKeys returns every stored key, newest first.
	ListSigningKeys(ctx context.Context) ([]SigningKey, error)
	RetireSigningKey(ctx context.Context, id string, at time.Time) error
	DeleteSigningKey(ctx context.Context, id string) error

	// Secret returns the shared secret stored under name, storing value
	// first if there is none yet. Every node gets the same bytes.
	Secret(ctx context.Context, name string, value []byte) ([]byte, error)

	// AddFailure counts one more failure of key (a login name, an IP
	// address, a client id) at the given time and returns the count. A
	// counter whose expiresAt has passed starts again from one; each failure
	// moves expiresAt forward. Counters live in the store so that every node
	// throttles the same attacker (package ratelimit).
	AddFailure(ctx context.Context, key string, at, expiresAt time.Time) (int, error)
	// Failures returns key's failure count and the time of its last
	// failure; zero values when there is none or it expired before now.
	Failures(ctx context.Context, key string, now time.Time) (int, time.Time, error)
	// ResetFailures forgets key's failures; resetting an unknown key is not
	// an error.
	ResetFailures(ctx context.Context, key string) error
	// ReserveAttempt counts an attempt of key before it is made, in one
	// atomic step, so that concurrent attempts, on any number of nodes,
	// each take their own number: it returns the count including this
	// attempt (1 for the first since the counter was reset or expired)
	// and no wait. When t does not allow an attempt at now, nothing is
	// counted and it returns zero and how long to wait; or zero and no
	// wait when attempts still in flight fill the budget, which may yet
	// succeed: try again once one has ended. The count is of failed
	// attempts and attempts in flight; it expires at now + t.Max.
	ReserveAttempt(ctx context.Context, key string, now time.Time, t Throttle) (int, time.Duration, error)
	// EndAttempt records how an attempt ReserveAttempt counted ended.
	EndAttempt(ctx context.Context, key string, o Outcome) error

	CreateDeviceCode(ctx context.Context, d DeviceCode) error
	GetDeviceCodeByUserCode(ctx context.Context, userCode string) (*DeviceCode, error)
	// DecideDeviceCode records the user's answer to a pending, unexpired
	// device code: approved with the granted scopes, or denied. A code
	// decided before, expired or unknown yields ErrNotFound.
	DecideDeviceCode(ctx context.Context, userCode string, approved bool, userID string, granted, amr []string, authTime, at time.Time) error
	// PollDeviceCode returns the device code and records this poll; the
	// returned LastPoll is the previous poll's time. Of concurrent polls
	// all but one see LastPoll equal to at, so that they are slowed down.
	PollDeviceCode(ctx context.Context, hash string, at time.Time) (*DeviceCode, error)
	// ConsumeDeviceCode marks an approved device code used, once: tokens
	// are issued for it at most once. A used code yields ErrAlreadyUsed.
	ConsumeDeviceCode(ctx context.Context, hash string, at time.Time) error

	// ListScopes returns the scope catalog in position order.
	ListScopes(ctx context.Context) ([]ScopeDef, error)
	// SaveScope creates or replaces the scope named d.Name.
	SaveScope(ctx context.Context, d ScopeDef) error
	DeleteScope(ctx context.Context, name string) error

	// UseOnce records a single-use value (such as the jti of a client
	// assertion) until expiresAt; a value seen before yields ErrAlreadyUsed.
	UseOnce(ctx context.Context, key string, expiresAt time.Time) error

	AddAuditEvent(ctx context.Context, e AuditEvent) error
	// ListAuditEvents returns the events matching f, newest first.
	ListAuditEvents(ctx context.Context, f AuditFilter) ([]AuditEvent, error)

	// GetUserByEmail returns the user whose confirmed address
	// (EmailVerified) is email, compared in NormalEmail form. Confirmed
	// addresses are unique in that form: CreateUser and UpdateUser yield
	// ErrAlreadyExists for a confirmed address another user confirmed. An
	// unconfirmed address is neither unique nor found.
	GetUserByEmail(ctx context.Context, email string) (*User, error)
	// RevokeUserGrants revokes, at the given time, every grant of the user
	// (every refresh chain and the access tokens it issued), and returns
	// how many it revoked.
	RevokeUserGrants(ctx context.Context, userID string, at time.Time) (int64, error)

	// EnqueueMail stores a message in the outbox for a sender to deliver.
	EnqueueMail(ctx context.Context, m Mail) error
	// ClaimMail leases up to limit unsent messages that are due at now and
	// not leased by anyone (or whose lease ended), until leaseUntil, and
	// returns them. Each message is claimed by one conditional UPDATE, so
	// that of senders on any number of nodes only one holds it at a time.
	ClaimMail(ctx context.Context, now, leaseUntil time.Time, limit int) ([]Mail, error)
	// MailSent marks a claimed message delivered.
	MailSent(ctx context.Context, id string, at time.Time) error
	// MailFailed records a failed delivery of a claimed message: one more
	// attempt, the error, and its lease given up until next.
	MailFailed(ctx context.Context, id, lastError string, next time.Time) error

	// CreateAccountToken stores an emailed single-use link.
	CreateAccountToken(ctx context.Context, t AccountToken) error
	// GetAccountToken returns the unused, unexpired link of this hash and
	// kind, or ErrNotFound; used before, it is returned with ErrAlreadyUsed.
	GetAccountToken(ctx context.Context, hash, kind string, now time.Time) (*AccountToken, error)
	// ConsumeAccountToken marks the link used at the given time and returns
	// it: at most once per link, whatever the concurrency. An unknown or
	// expired link, or one of another kind, yields ErrNotFound; one used
	// before yields ErrAlreadyUsed.
	ConsumeAccountToken(ctx context.Context, hash, kind string, at time.Time) (*AccountToken, error)
	// ReplaceAccountToken stores t as the user's one unused link of its
	// kind: the others are voided (deleted) in the same step, so that of
	// concurrent replacements ("mail me a new link" twice at once) exactly
	// one link works. A user that does not exist is ErrNotFound; a known
	// hash is ErrAlreadyExists.
	ReplaceAccountToken(ctx context.Context, t AccountToken) error
	// DeleteAccountTokens removes the user's unused links of a kind (a
	// new password makes older reset links void).
	DeleteAccountTokens(ctx context.Context, userID, kind string) error

	// DeleteExpired removes codes, device codes, refresh tokens, auth
	// requests, sessions, revoked-token entries, failure counters, audit
	// events and grants that expired before now, and returns how many rows it removed.
	DeleteExpired(ctx context.Context, now time.Time) (int64, error)
	// Prune deletes what p says has ended, a batch of rows per statement so
	// that no write holds the database for long, and returns how many rows
	// it removed. Called often, it keeps the store's size level.
	Prune(ctx context.Context, p Prune) (int64, error)

	// Ping commits a small write (one row per node in a probe table), so
	// that a store that still reads but cannot commit (disk full, read-only,
	// a standby) fails it.
	Ping(ctx context.Context, node string, at time.Time) error
	// LastPing returns when node's Ping last committed, or the zero time if
	// it never did. It reads as every other lookup does (from the read pool
	// where the backend has one), so that it fails at once when the store
	// cannot answer reads.
	LastPing(ctx context.Context, node string) (time.Time, error)

	Close() error
}

// Prune says what Storage.Prune may delete. Zero durations keep rows until
// their own expiry, as DeleteExpired does.
type Prune struct {
	Now time.Time
	// ReuseHorizon is how long a rotated refresh token is kept after its
	// rotation: its replay within the horizon is detected as reuse and
	// revokes the grant (RFC 9700 §4.14.2); after it, the token is gone
	// and its replay is merely invalid. It must exceed any grace window
	// in which a retried rotation is honoured.
	ReuseHorizon time.Duration
	// TokenLifetime bounds how long an access token issued under a grant
	// stays valid. A grant revoked more than TokenLifetime ago, or one
	// without any refresh token left and created more than TokenLifetime
	// ago, has nothing left that depends on it and is deleted.
	TokenLifetime time.Duration
	// AuditRetention deletes audit events older than this, whatever the
	// retention when they were recorded, and the initial access tokens
	// of dynamic registration revoked or expired longer ago than this
	// (those events name them); zero keeps such tokens.
	AuditRetention time.Duration
	// Batch is the number of rows one statement deletes; zero means 500.
	// MaxBatches bounds the statements per kind of row and call; zero means
	// 200 (up to 100,000 rows of a kind a call, ahead of any steady load).
	Batch, MaxBatches int
}

// JTIKey is the UseOnce key of a JWT's jti. Every kind of JWT a client
// signs (client assertions, request objects, DPoP proofs) shares one
// namespace per signer: the RFC 7638 thumbprint of the verifying key, or
// "client:" and the client id for a JWT signed with the client's secret.
// A jti spent as one kind is thus refused as any other (RFC 8725 §3.11).
// The jti is hashed so that its length is fixed and no jti can reach into
// another signer's namespace.
func JTIKey(signer, jti string) string {
	return "jti:" + Hash(jti) + ":" + signer
}
