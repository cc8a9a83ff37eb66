package storage

import (
	"context"
	"time"
)

// TOTP is a user's time-based one-time password secret (RFC 6238). It is
// kept sealed (encrypted under a server key), never in the clear, since
// the server must read it to compute codes. A secret with a zero
// ConfirmedAt is an enrolment waiting for its first code: it proves
// nothing until confirmed.
type TOTP struct {
	UserID       string
	SecretSealed string
	CreatedAt    time.Time
	ConfirmedAt  time.Time // zero until a first code proved the user holds it
}

// Passkey is a WebAuthn public key credential registered to a user (W3C
// Web Authentication Level 3 §4, "credential record").
type Passkey struct {
	// ID is the credential id, base64url without padding; unique.
	ID     string
	UserID string
	Name   string // the user's label for it
	// Credential is the credential record as the WebAuthn library
	// encodes it (JSON): public key, flags, transports, attestation.
	Credential string
	// SignCount is the authenticator's signature counter as last seen
	// (WebAuthn §6.1.1).
	SignCount  uint32
	CreatedAt  time.Time
	LastUsedAt time.Time // zero until first used to sign in
}

// Enrolment is which second factors a user enrolled.
type Enrolment struct {
	TOTP     bool // a confirmed TOTP secret (an unconfirmed one proves nothing)
	Passkeys bool // at least one passkey
}

// Factors stores the second factors of users: TOTP secrets, recovery codes
// and passkeys. Single-use and counter rules are enforced by the store, so
// that they hold under concurrency and across nodes.
type Factors interface {
	// SaveTOTP stores t as the user's TOTP enrolment, replacing an
	// unconfirmed one. When the user has a confirmed TOTP it yields
	// ErrAlreadyExists and changes nothing: a second enrolment cannot
	// silently replace an active factor.
	SaveTOTP(ctx context.Context, t TOTP) error
	GetTOTP(ctx context.Context, userID string) (*TOTP, error)
	// ConfirmTOTP activates the user's enrolment, but only if its sealed
	// secret is still secretSealed (the one whose code was checked), so
	// that an enrolment replaced meanwhile is not activated. ErrNotFound
	// when there is no such unconfirmed enrolment.
	ConfirmTOTP(ctx context.Context, userID, secretSealed string, at time.Time) error
	// Enrolment reads which second factors the user enrolled, in one
	// statement: whether the person enrolled any is asked on every
	// request of a signed-in person (package signin).
	Enrolment(ctx context.Context, userID string) (Enrolment, error)
	// DeleteTOTP turns TOTP off; deleting none is ErrNotFound.
	DeleteTOTP(ctx context.Context, userID string) error

	// ReplaceRecoveryCodes replaces every recovery code of the user by
	// hashes (storage.Hash of each code), in one transaction.
	ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error
	// UseRecoveryCode spends the user's unused recovery code with this
	// hash. It succeeds at most once per code, whatever the concurrency;
	// a spent code yields ErrAlreadyUsed, an unknown one ErrNotFound.
	UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error
	// CountRecoveryCodes returns how many unused recovery codes the user has.
	CountRecoveryCodes(ctx context.Context, userID string) (int, error)
	// ListRecoveryCodes returns the hashes of the user's unused recovery
	// codes (for backups: each is storage.Hash of a code, never the code).
	ListRecoveryCodes(ctx context.Context, userID string) ([]string, error)
	// DeleteRecoveryCodes removes every recovery code of the user.
	DeleteRecoveryCodes(ctx context.Context, userID string) error

	// CreatePasskey stores a new passkey; a known credential id yields
	// ErrAlreadyExists (WebAuthn §7.1 step 25: a credential id registered
	// once is refused for any other registration).
	CreatePasskey(ctx context.Context, p Passkey) error
	// GetPasskey returns the passkey with this credential id.
	GetPasskey(ctx context.Context, id string) (*Passkey, error)
	// ListPasskeys returns the user's passkeys, oldest first.
	ListPasskeys(ctx context.Context, userID string) ([]Passkey, error)
	// RenamePasskey renames one of the user's passkeys; a passkey of
	// another user is ErrNotFound.
	RenamePasskey(ctx context.Context, userID, id, name string) error
	// DeletePasskey removes one of the user's passkeys; a passkey of
	// another user is ErrNotFound.
	DeletePasskey(ctx context.Context, userID, id string) error
	// RemovePasskey removes one of the user's passkeys, as the person
	// does on their Security page, while another way to sign in remains:
	// a password, another passkey, or an upstream link. The check and the
	// delete are one atomic step, taken under the same lock as
	// UnlinkUpstream's, so that of a removal and an unlink of a person's
	// last two ways in one succeeds and the other yields ErrLastWayIn,
	// changing nothing. A passkey of another user, or none, is
	// ErrNotFound. (DeletePasskey, without the check, is the operator's.)
	RemovePasskey(ctx context.Context, userID, id string) error
	// UsePasskey records a sign-in with the passkey whose authenticator
	// reported signCount. The counter must grow (WebAuthn §6.1.1): unless
	// both it and the stored one are zero (an authenticator without a
	// counter), a count not above the stored one means a cloned
	// authenticator or a replay and yields ErrAlreadyUsed, changing
	// nothing. Concurrent uses with one count: at most one succeeds.
	UsePasskey(ctx context.Context, id string, signCount uint32, credential string, at time.Time) error

	// ListUserSessions returns the user's sessions, newest first, for the
	// person to see where they are signed in.
	ListUserSessions(ctx context.Context, userID string) ([]Session, error)
}
