package storage

import (
	"strings"
	"time"
)

// NormalEmail is the form in which email addresses are compared and kept
// unique: trimmed and in lower case. Empty means no address.
func NormalEmail(email string) string { return strings.ToLower(strings.TrimSpace(email)) }

// Mail is one message in the outbox: written in the same request that
// decided to send it, delivered later by a sender on any node
// (package mail), so that a relay outage loses nothing.
type Mail struct {
	ID      string
	To      string // one address
	Subject string
	Body    string // text/plain, UTF-8
	// Kind names what the message is for (verify, reset, notice), for
	// logs and metrics; never a secret.
	Kind      string
	CreatedAt time.Time
	// Attempts counts failed deliveries; NextAt is when the next may be
	// made (ms precision).
	Attempts  int
	NextAt    time.Time
	LastError string
	// LeaseUntil is when the node that claimed the message gives it up
	// unless it reported back; zero while unclaimed.
	LeaseUntil time.Time
	SentAt     time.Time // zero until delivered
	ExpiresAt  time.Time // deleted after this, sent or not
}

// Account token kinds: what an emailed link lets its holder do once.
const (
	TokenVerifyEmail   = "verify_email"
	TokenResetPassword = "reset_password"
	// TokenInvite is an operator's invitation to sign up; its UserID is
	// empty, its Email optional.
	TokenInvite = "invite"
)

// AccountToken is a single-use link sent by mail (email verification,
// password reset). Only the SHA-256 of its secret is stored.
type AccountToken struct {
	Hash   string
	Kind   string // TokenVerifyEmail or TokenResetPassword
	UserID string
	// Email is the address the link was sent to: a verification proves
	// that address only, and only while the account still has it.
	Email     string
	CreatedAt time.Time
	ExpiresAt time.Time
	UsedAt    time.Time // zero until used
}
