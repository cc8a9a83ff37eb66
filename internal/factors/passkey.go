package factors

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"time"

	"github.com/go-webauthn/webauthn/protocol"
	"github.com/go-webauthn/webauthn/webauthn"

	"github.com/bawwab/bawwab/internal/storage"
)

// ErrCloned means a passkey's signature counter did not grow: the
// authenticator may have been cloned, or an assertion is replayed
// (WebAuthn §6.1.1). The sign-in is refused.
var ErrCloned = errors.New("factors: the passkey's signature counter did not grow")

// ErrCeremony means a passkey ceremony failed: expired or unknown state,
// a response that does not verify, a credential of someone else.
var ErrCeremony = errors.New("factors: the passkey response is not valid")

// ceremonyTTL bounds a ceremony from its options to its response.
const ceremonyTTL = 5 * time.Minute

// Passkeys registers passkeys and verifies them at sign-in (W3C Web
// Authentication Level 3) with the go-webauthn library. Every ceremony
// requires user verification (a PIN or biometric on the authenticator),
// so a passkey proves possession and a second factor at once.
//
// The state of a ceremony (its challenge) travels sealed with the
// browser, not in the store; its challenge is spent in the store
// (UseOnce) when the response arrives, so that a response is accepted
// once, on any node.
type Passkeys struct {
	Store    storage.Storage
	Sealer   *Sealer
	WebAuthn *webauthn.WebAuthn
	Now      func() time.Time
}

// NewPasskeys configures passkeys for an issuer: the RP ID is the issuer's
// host, without port (WebAuthn §5.1.2; an IP address is refused by
// browsers), and the only origin accepted is the issuer's.
func NewPasskeys(store storage.Storage, sealer *Sealer, issuer, product string, now func() time.Time) (*Passkeys, error) {
	u, err := url.Parse(issuer)
	if err != nil || u.Host == "" {
		return nil, fmt.Errorf("passkeys: issuer %q has no host", issuer)
	}
	w, err := webauthn.New(&webauthn.Config{RPID: u.Hostname(), RPDisplayName: product, RPOrigins: []string{u.Scheme + "://" + u.Host},
		// The ceremony's expiry is checked here, on the server's clock
		// (open), not by the library on the wall clock.
		Timeouts: webauthn.TimeoutsConfig{
			Login:        webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
			Registration: webauthn.TimeoutConfig{Timeout: ceremonyTTL, TimeoutUVD: ceremonyTTL},
		}})
	if err != nil {
		return nil, fmt.Errorf("passkeys: %w", err)
	}
	return &Passkeys{Store: store, Sealer: sealer, WebAuthn: w, Now: now}, nil
}

// webUser is a user as the library sees it. The user handle is the user
// id: random, no personal data (WebAuthn §14.6.1).
type webUser struct {
	u     *storage.User
	creds []webauthn.Credential
}

func (w *webUser) WebAuthnID() []byte { return []byte(w.u.ID) }
func (w *webUser) WebAuthnName() string {
	if w.u.Email != "" {
		return w.u.Email
	}
	return w.u.Username
}
func (w *webUser) WebAuthnDisplayName() string {
	if w.u.Name != "" {
		return w.u.Name
	}
	return w.u.Username
}
func (w *webUser) WebAuthnCredentials() []webauthn.Credential { return w.creds }

// load returns u with its passkeys.
func (p *Passkeys) load(ctx context.Context, u *storage.User) (*webUser, error) {
	keys, err := p.Store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	wu := &webUser{u: u}
	for _, k := range keys {
		var c webauthn.Credential
		if err := json.Unmarshal([]byte(k.Credential), &c); err != nil {
			return nil, fmt.Errorf("passkey %s: %w", k.ID, err)
		}
		wu.creds = append(wu.creds, c)
	}
	return wu, nil
}

// ceremony kinds, bound into the sealed state so that one kind's state is
// refused as another's.
const (
	kindRegister = "webauthn-register:"
	kindLogin    = "webauthn-login:"
)

func (p *Passkeys) seal(kind string, s *webauthn.SessionData) (string, error) {
	s.Expires = p.Now().Add(ceremonyTTL)
	raw, err := json.Marshal(s)
	if err != nil {
		return "", err
	}
	return p.Sealer.Seal(kind, string(raw)), nil
}

// open returns the ceremony state sealed for kind, unexpired, and spends
// its challenge: a state is used once.
func (p *Passkeys) open(ctx context.Context, kind, state string) (*webauthn.SessionData, error) {
	raw, err := p.Sealer.Open(kind, state)
	if err != nil {
		return nil, fmt.Errorf("%w: ceremony state: %w", ErrCeremony, err)
	}
	var s webauthn.SessionData
	if err := json.Unmarshal([]byte(raw), &s); err != nil {
		return nil, fmt.Errorf("%w: ceremony state: %w", ErrCeremony, err)
	}
	if !p.Now().Before(s.Expires) {
		return nil, fmt.Errorf("%w: the ceremony expired", ErrCeremony)
	}
	err = p.Store.UseOnce(ctx, "webauthn:"+storage.Hash(s.Challenge), s.Expires.Add(time.Minute))
	if errors.Is(err, storage.ErrAlreadyUsed) {
		return nil, fmt.Errorf("%w: the challenge was answered before", ErrReplayed)
	}
	if err != nil {
		return nil, err
	}
	return &s, nil
}

// BeginRegistration returns the creation options (JSON) for a new
// passkey of u, and the sealed state to send back with the response. The
// credential is discoverable (a passkey: sign-in without a user name) and
// verifies the user; u's passkeys are excluded, so that one authenticator
// is not registered twice (WebAuthn §5.4 excludeCredentials).
func (p *Passkeys) BeginRegistration(ctx context.Context, u *storage.User) (options []byte, state string, err error) {
	wu, err := p.load(ctx, u)
	if err != nil {
		return nil, "", err
	}
	var exclude []protocol.CredentialDescriptor
	for _, c := range wu.creds {
		exclude = append(exclude, c.Descriptor())
	}
	creation, s, err := p.WebAuthn.BeginRegistration(wu,
		webauthn.WithAuthenticatorSelection(protocol.AuthenticatorSelection{ResidentKey: protocol.ResidentKeyRequirementRequired,
			RequireResidentKey: protocol.ResidentKeyRequired(), UserVerification: protocol.VerificationRequired}),
		webauthn.WithExclusions(exclude))
	if err != nil {
		return nil, "", err
	}
	if state, err = p.seal(kindRegister+u.ID, s); err != nil {
		return nil, "", err
	}
	options, err = json.Marshal(creation)
	return options, state, err
}

// FinishRegistration verifies the authenticator's response (JSON, as
// PublicKeyCredential.toJSON gives it) and stores the new passkey of u
// under name.
func (p *Passkeys) FinishRegistration(ctx context.Context, u *storage.User, state, response, name string) (*storage.Passkey, error) {
	s, err := p.open(ctx, kindRegister+u.ID, state)
	if err != nil {
		return nil, err
	}
	parsed, err := protocol.ParseCredentialCreationResponseBytes([]byte(response))
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	wu, err := p.load(ctx, u)
	if err != nil {
		return nil, err
	}
	cred, err := p.WebAuthn.CreateCredential(wu, *s, parsed)
	if err != nil {
		return nil, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	now := p.Now()
	if name == "" {
		name = "Passkey " + now.Format("2006-01-02")
	}
	pk := storage.Passkey{ID: base64.RawURLEncoding.EncodeToString(cred.ID), UserID: u.ID, Name: name, Credential: string(raw),
		SignCount: cred.Authenticator.SignCount, CreatedAt: now}
	if err := p.Store.CreatePasskey(ctx, pk); err != nil {
		if errors.Is(err, storage.ErrAlreadyExists) {
			return nil, fmt.Errorf("%w: the credential is registered already", ErrCeremony)
		}
		return nil, err
	}
	return &pk, nil
}

// BeginLogin returns the request options (JSON) of a sign-in and its
// sealed state. With u nil it is a passwordless sign-in: any discoverable
// credential may answer (and conditional mediation may offer it in the
// user name field); with u set, only u's passkeys, as a second factor.
func (p *Passkeys) BeginLogin(ctx context.Context, u *storage.User) (options []byte, state string, err error) {
	var assertion *protocol.CredentialAssertion
	var s *webauthn.SessionData
	kind := kindLogin
	if u == nil {
		assertion, s, err = p.WebAuthn.BeginDiscoverableLogin(webauthn.WithUserVerification(protocol.VerificationRequired))
	} else {
		var wu *webUser
		if wu, err = p.load(ctx, u); err != nil {
			return nil, "", err
		}
		if len(wu.creds) == 0 {
			return nil, "", ErrNotEnrolled
		}
		kind += u.ID
		assertion, s, err = p.WebAuthn.BeginLogin(wu, webauthn.WithUserVerification(protocol.VerificationRequired))
	}
	if err != nil {
		return nil, "", err
	}
	if state, err = p.seal(kind, s); err != nil {
		return nil, "", err
	}
	options, err = json.Marshal(assertion)
	return options, state, err
}

// FinishLogin verifies a sign-in response and returns who signed in and
// with which passkey. For a second factor, u is the person the first
// factor identified and the passkey must be theirs. The signature counter
// must grow, checked and moved in one store operation (ErrCloned).
func (p *Passkeys) FinishLogin(ctx context.Context, u *storage.User, state, response string) (*storage.User, *storage.Passkey, error) {
	kind := kindLogin
	if u != nil {
		kind += u.ID
	}
	s, err := p.open(ctx, kind, state)
	if err != nil {
		return nil, nil, err
	}
	parsed, err := protocol.ParseCredentialRequestResponseBytes([]byte(response))
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	var who *webUser
	var cred *webauthn.Credential
	if u == nil {
		who, cred, err = p.validateDiscoverable(ctx, s, parsed)
	} else if who, err = p.load(ctx, u); err == nil {
		cred, err = p.WebAuthn.ValidateLogin(who, *s, parsed)
		if err != nil {
			err = fmt.Errorf("%w: %w", ErrCeremony, err)
		}
	}
	if err != nil {
		return nil, nil, err
	}
	pk, err := p.used(ctx, cred)
	if err != nil {
		return nil, nil, err
	}
	return who.u, pk, nil
}

// validateDiscoverable verifies a response to a passwordless sign-in:
// the passkey it names, and its owner, come from the store.
func (p *Passkeys) validateDiscoverable(ctx context.Context, s *webauthn.SessionData, parsed *protocol.ParsedCredentialAssertionData) (*webUser, *webauthn.Credential, error) {
	var who *webUser
	var lookupErr error
	handler := func(rawID, userHandle []byte) (webauthn.User, error) {
		pk, err := p.Store.GetPasskey(ctx, base64.RawURLEncoding.EncodeToString(rawID))
		if err != nil {
			lookupErr = err
			return nil, err
		}
		// The user handle the authenticator returns must be the
		// passkey's owner (WebAuthn §7.2 step 6).
		if pk.UserID != string(userHandle) {
			return nil, errors.New("the user handle is not the passkey's owner")
		}
		owner, err := p.Store.GetUser(ctx, pk.UserID)
		if err == nil {
			who, err = p.load(ctx, owner)
		}
		if err != nil {
			lookupErr = err
			return nil, err
		}
		return who, nil
	}
	_, cred, err := p.WebAuthn.ValidatePasskeyLogin(handler, *s, parsed)
	if lookupErr != nil && !errors.Is(lookupErr, storage.ErrNotFound) {
		return nil, nil, lookupErr
	}
	if err != nil {
		return nil, nil, fmt.Errorf("%w: %w", ErrCeremony, err)
	}
	return who, cred, nil
}

// used records a verified sign-in with cred: its signature counter must
// have grown, checked and moved in one store operation.
func (p *Passkeys) used(ctx context.Context, cred *webauthn.Credential) (*storage.Passkey, error) {
	if cred.Authenticator.CloneWarning {
		return nil, ErrCloned
	}
	raw, err := json.Marshal(cred)
	if err != nil {
		return nil, err
	}
	id := base64.RawURLEncoding.EncodeToString(cred.ID)
	if err := p.Store.UsePasskey(ctx, id, cred.Authenticator.SignCount, string(raw), p.Now()); err != nil {
		if errors.Is(err, storage.ErrAlreadyUsed) {
			return nil, ErrCloned
		}
		return nil, err
	}
	return p.Store.GetPasskey(ctx, id)
}

// AMR returns the authentication methods a sign-in with pk proved (RFC
// 8176 §2): possession of a key — "swk" for a passkey that may be synced
// between devices (backup eligible, WebAuthn §6.1.3), "hwk" for one bound
// to its device — and, since every ceremony verifies the user on the
// authenticator, "mfa".
func AMR(pk *storage.Passkey) []string {
	var c webauthn.Credential
	if err := json.Unmarshal([]byte(pk.Credential), &c); err == nil && !c.Flags.BackupEligible {
		return []string{"hwk", "mfa"}
	}
	return []string{"swk", "mfa"}
}
