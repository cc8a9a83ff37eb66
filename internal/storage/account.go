package storage

import (
	"errors"
	"strings"
	"time"

	"golang.org/x/net/idna"
)

// NormalEmail is the form in which email addresses are compared and kept
// unique: trimmed, in lower case, and the domain in its ASCII form (IDNA
// ToASCII with the lookup profile, RFC 5891 §5), so that
// user@bücher.example and user@xn--bcher-kva.example are one address.
// Empty means no address. An address whose domain is no valid
// internationalised domain name keeps its lower-case domain:
// CheckEmailDomain refuses it wherever an address is taken in.
func NormalEmail(email string) string {
	email = strings.ToLower(strings.TrimSpace(email))
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return email
	}
	if d, ok := NormalDomain(email[at+1:]); ok {
		return email[:at+1] + d
	}
	return email
}

// NormalDomain is a domain in the form in which it is compared: its
// ASCII form in lower case (IDNA ToASCII, lookup profile), and true; or,
// for a name that is no valid internationalised domain name, the name in
// lower case and false.
func NormalDomain(domain string) (string, bool) {
	domain = strings.ToLower(strings.TrimSpace(domain))
	ascii, err := idna.Lookup.ToASCII(domain)
	if err != nil || ascii == "" {
		return domain, false
	}
	return strings.ToLower(ascii), true
}

// ErrBadEmailDomain means an address's domain is no valid
// internationalised domain name (RFC 5891).
var ErrBadEmailDomain = errors.New("the email address's domain is not a valid domain name")

// CheckEmailDomain reports whether the domain of email, an address with
// an '@', has an ASCII form (NormalDomain).
func CheckEmailDomain(email string) error {
	at := strings.LastIndexByte(email, '@')
	if at < 0 {
		return ErrBadEmailDomain
	}
	if _, ok := NormalDomain(email[at+1:]); !ok {
		return ErrBadEmailDomain
	}
	return nil
}

// EmailKeys are the keys under which a confirmed address may be stored:
// its NormalEmail form and, for an internationalised domain, the
// lower-case Unicode spelling, which keys written before domains were
// normalised to ASCII have (a lookup finds both, so no migration rewrites
// them; such a row takes the ASCII key when next written).
func EmailKeys(email string) []string {
	key := NormalEmail(email)
	if key == "" {
		return nil
	}
	at := strings.LastIndexByte(key, '@')
	if at < 0 {
		return []string{key}
	}
	uni, err := idna.Lookup.ToUnicode(key[at+1:])
	if err != nil || uni == key[at+1:] {
		return []string{key}
	}
	return []string{key, key[:at+1] + uni}
}

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
