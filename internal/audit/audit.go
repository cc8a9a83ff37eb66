// Package audit records security events — logins, consents, denials,
// tokens issued, refreshed and revoked, and detected attacks — as structured
// slog events and in the store, where they can be listed per user and per
// client. Events carry ids, scopes, addresses and reasons, never a secret.
package audit

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"time"

	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/storage"
)

// Event types.
const (
	Login              = "login"
	LoginFailed        = "login_failed"
	LoginThrottled     = "login_throttled" // attack: brute force
	Logout             = "logout"
	Consent            = "consent"
	ConsentDenied      = "consent_denied"
	AppRevoked         = "app_revoked" // the user revoked a client on the account page
	TokenIssued        = "token_issued"
	TokenRefreshed     = "token_refreshed"
	TokenRevoked       = "token_revoked"
	CodeReplay         = "code_replay"          // attack: a code presented again
	CodeWrongClient    = "code_wrong_client"    // attack: a code presented by another client
	RefreshReuse       = "refresh_reuse"        // attack: a rotated refresh token presented again
	RefreshWrongClient = "refresh_wrong_client" // attack
	RefreshRetried     = "refresh_retried"      // a rotation retried within the grace period
	ClientThrottled    = "client_throttled"     // attack: client secret guessing
	CSRFRejected       = "csrf_rejected"        // attack: a form without its CSRF token
	OutboundRefused    = "outbound_refused"     // attack: a client URL naming an internal address (SSRF)
	// ClientRegistered: a client registered itself (RFC 7591); the detail
	// names the initial access token that allowed it, by id.
	ClientRegistered = "client_registered"
)

// An operator issued or revoked an initial access token of dynamic client
// registration (RFC 7591 §3).
const (
	RegistrationTokenIssued  = "registration_token_issued"
	RegistrationTokenRevoked = "registration_token_revoked"
)

// Account security events: second factors and the Security page.
const (
	TOTPEnabled        = "totp_enabled"
	TOTPDisabled       = "totp_disabled"
	RecoveryCodesNew   = "recovery_codes_generated"
	RecoveryCodeUsed   = "recovery_code_used"
	PasskeyAdded       = "passkey_added"
	PasskeyRemoved     = "passkey_removed"
	PasskeyRenamed     = "passkey_renamed"
	PasswordChanged    = "password_changed"
	SessionEnded       = "session_ended"         // the user signed out one of its sessions
	DataExported       = "data_exported"         // the user downloaded its data
	AccountDeleted     = "account_deleted"       // the user deleted its account (kept under its internal id)
	FactorFailed       = "factor_failed"         // a wrong second-factor code
	FactorThrottled    = "factor_throttled"      // attack: second-factor guessing
	FactorReplay       = "factor_replay"         // attack: a TOTP code or passkey assertion presented again
	PasskeyCounterBack = "passkey_counter"       // attack: a passkey's signature counter went back (a cloned authenticator)
	StepUpRefused      = "factor_change_refused" // attack: a session of the password alone tried to change the second factors
)

// Operator actions on an account (admin API).
const (
	MFAReset         = "mfa_reset"     // an operator removed every second factor
	UserDisabled     = "user_disabled" // an operator disabled the account
	UserEnabled      = "user_enabled"
	VerificationSent = "verification_sent" // an operator mailed a new confirmation link
	UserUnlocked     = "user_unlocked"     // an operator lifted the sign-in throttle
	UserSignedOut    = "user_signed_out"   // an operator ended every session of the user
	AdminGranted     = "admin_granted"     // an operator gave the user the admin role (the admin console)
	AdminRevoked     = "admin_revoked"
)

// Operator changes to clients, users, scopes and keys (admin API, and
// the console and CLI through it), with the operator's name.
const (
	ClientCreated       = "client_created"
	ClientUpdated       = "client_updated" // its settings replaced: redirect URIs, scopes, authentication
	ClientDeleted       = "client_deleted"
	ClientGrantsRevoked = "client_grants_revoked" // every user's grant to the client
	UserCreated         = "user_created"
	UserUpdated         = "user_updated" // its profile replaced (its email address among it)
	UserDeleted         = "user_deleted"
	PasswordSet         = "password_set"  // an operator set the user's password (and signed it out)
	GrantRevoked        = "grant_revoked" // an operator revoked a user's grant to a client
	ScopeSaved          = "scope_saved"
	ScopeDeleted        = "scope_deleted"
	KeysRotated         = "keys_rotated"
	InvitationMade      = "invitation_made" // a sign-up invitation (never its link)
	DataExportedAll     = "backup_exported" // every user, client and upstream, with password hashes
	DataImported        = "backup_imported"
)

// The admin console (package console).
const (
	ConsoleSignIn  = "console_signin"  // an admin signed in to the console
	ConsoleRefused = "console_refused" // a user without the admin role, or a disabled one, was refused the console
)

// Sign-in through upstream identity providers (package upstream).
const (
	UpstreamRefused   = "upstream_refused"    // attack: a callback with a forged, foreign or replayed state, a wrong iss or nonce, an invalid ID token
	UpstreamDenied    = "upstream_denied"     // the upstream answered with an error (the person cancelled)
	UpstreamNoAccount = "upstream_no_account" // an upstream identity that may not sign in here (domain, address taken, no sign-up)
	UpstreamCreated   = "upstream_account"    // a first sign-in through an upstream created a local account
	UpstreamLinkAsked = "upstream_link_asked" // an upstream identity has a local account's address: waiting for the local proof
	UpstreamLinked    = "upstream_linked"
	// UpstreamLinkDeclined: the person answered "Don't link" to a link
	// waiting for their confirmation.
	UpstreamLinkDeclined = "upstream_link_declined"
	UpstreamUnlinked     = "upstream_unlinked"
	UpstreamLogout       = "upstream_logout" // an upstream's back-channel logout ended a user's sessions
	// An operator changed the upstreams through the admin API.
	UpstreamAdded    = "upstream_added"
	UpstreamUpdated  = "upstream_updated"
	UpstreamDisabled = "upstream_disabled"
	UpstreamEnabled  = "upstream_enabled"
	UpstreamDeleted  = "upstream_deleted"
)

// Attack reports whether events of type typ are detected attacks.
func Attack(typ string) bool {
	switch typ {
	case LoginThrottled, CodeReplay, CodeWrongClient, RefreshReuse, RefreshWrongClient, ClientThrottled, CSRFRejected, OutboundRefused,
		FactorThrottled, FactorReplay, PasskeyCounterBack, UpstreamRefused:
		return true
	}
	return false
}

// operatorChange reports whether events of type typ are an operator's
// changes to the server as a whole, or a client's registration of itself,
// kept though they name no user.
func operatorChange(typ string) bool {
	switch typ {
	case UpstreamAdded, UpstreamUpdated, UpstreamDisabled, UpstreamEnabled, UpstreamDeleted,
		RegistrationTokenIssued, RegistrationTokenRevoked, ClientRegistered,
		ClientCreated, ClientUpdated, ClientDeleted, ClientGrantsRevoked, UserCreated, UserDeleted,
		ScopeSaved, ScopeDeleted, KeysRotated, InvitationMade, DataExportedAll, DataImported:
		return true
	}
	return false
}

// Event is what a handler reports.
type Event struct {
	Type     string
	UserID   string
	ClientID string
	Detail   string
}

// Log records events. A nil *Log records nothing.
type Log struct {
	Store storage.Storage
	Log   *slog.Logger
	Now   func() time.Time
	// Retention is how long stored events are kept.
	Retention time.Duration
	// OnEvent, when set, is told of every event (metrics).
	OnEvent func(typ string, attack bool)
}

// Record logs e and, when it concerns a user, is an attack or an
// operator's change to the server, stores it.
// Token issuance to a client acting for itself (client_credentials) is
// logged only: it concerns no user, and storing it would put a write on
// the hottest path. A store failure is logged; it does not fail the request.
func (l *Log) Record(ctx context.Context, e Event) {
	if l == nil {
		return
	}
	l.Logged(ctx, e)
	for _, se := range l.Stored(ctx, e) {
		if err := l.Store.AddAuditEvent(ctx, se); err != nil {
			l.Log.ErrorContext(ctx, "audit event not stored", "event", e.Type, "err", err)
		}
	}
}

// Stored returns e as the store keeps it, or nothing when Record would
// only log it, for a caller that writes it in the same transaction as the
// change it records (storage.Storage.StartGrant, RotateRefreshToken):
// one commit instead of two on the hot paths. Once that committed, the
// caller logs e with Logged.
func (l *Log) Stored(ctx context.Context, e Event) []storage.AuditEvent {
	if l == nil || (e.UserID == "" && !Attack(e.Type) && !operatorChange(e.Type)) {
		return nil
	}
	now := l.Now()
	return []storage.AuditEvent{{ID: eventID(now), Time: now, Type: e.Type, UserID: e.UserID, ClientID: e.ClientID,
		IP: clientip.FromContext(ctx), Detail: e.Detail, ExpiresAt: now.Add(l.Retention)}}
}

// Logged logs e, and tells OnEvent of it, without storing it: Record's
// first half, for an event the caller stored itself (Stored).
func (l *Log) Logged(ctx context.Context, e Event) {
	if l == nil {
		return
	}
	if l.OnEvent != nil {
		l.OnEvent(e.Type, Attack(e.Type))
	}
	level := slog.LevelInfo
	if Attack(e.Type) {
		level = slog.LevelWarn
	}
	l.Log.Log(ctx, level, "audit", "event", e.Type, "user_id", e.UserID, "client_id", e.ClientID, "ip", clientip.FromContext(ctx),
		"detail", e.Detail)
}

// eventID sorts by time (to the nanosecond, within a millisecond the store
// cannot tell apart), then at random across nodes.
func eventID(now time.Time) string {
	return fmt.Sprintf("%016x%s", now.UnixNano(), rand.Text()[:10])
}
