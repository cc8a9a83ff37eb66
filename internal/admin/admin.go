// Package admin holds the operations an operator performs on the store —
// adding users and clients — with their validation, shared by the CLI and
// the demo.
package admin

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"net/url"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/redirecturi"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// InvalidError is a mistake in what the caller asked for (as opposed to a
// failure of the store); its message says what to change.
type InvalidError struct{ msg string }

func (e *InvalidError) Error() string { return e.msg }

func invalid(format string, args ...any) error { return &InvalidError{fmt.Sprintf(format, args...)} }

// ExistsError says what exists already, in terms of what the caller gave,
// so that it may be shown to them; errors.Is(err, storage.ErrAlreadyExists)
// holds.
type ExistsError struct{ msg string }

func (e *ExistsError) Error() string { return e.msg }
func (e *ExistsError) Unwrap() error { return storage.ErrAlreadyExists }

func exists(format string, args ...any) error { return &ExistsError{fmt.Sprintf(format, args...)} }

// UserSpec describes a new user.
type UserSpec struct {
	Username, Password, Name, Email, Picture string
	EmailVerified                            bool
	// Profile holds the other standard claims (OpenID Connect Core §5.1).
	Profile storage.Profile
	// Admin gives the user the admin role (the admin console).
	Admin bool
}

// AddUser validates spec, hashes the password with argon2id and stores the
// user. It returns the new user's id.
func AddUser(ctx context.Context, s storage.Storage, spec UserSpec, p password.Params) (string, error) {
	if spec.Username == "" || len(spec.Username) > 200 || storage.CheckUsername(spec.Username) != nil {
		return "", invalid("username is required, at most 200 bytes, without spaces, control or invisible characters, and in one script")
	}
	if err := password.Check(spec.Password, spec.Username); err != nil {
		return "", invalid("%v", err)
	}
	hash, err := password.Hash(spec.Password, p)
	if err != nil {
		return "", err
	}
	u := storage.User{ID: ids.New(), Username: spec.Username, PasswordHash: hash, Name: spec.Name, Email: spec.Email,
		EmailVerified: spec.EmailVerified, Picture: spec.Picture, CreatedAt: time.Now(), Profile: spec.Profile, Admin: spec.Admin}
	u.Profile.UpdatedAt = u.CreatedAt
	if err := CheckProfile(&u); err != nil {
		return "", err
	}
	if u.Name == "" {
		u.Name = spec.Username
	}
	if err := s.CreateUser(ctx, u); errors.Is(err, storage.ErrAlreadyExists) {
		return "", exists("a user named %q, or a name that differs from it only in case or character width, exists already", spec.Username)
	} else if err != nil {
		return "", err
	}
	return u.ID, nil
}

// ClientSpec describes a new client.
type ClientSpec struct {
	ID, Name     string
	Public       bool
	RedirectURIs []string
	GrantTypes   []string
	Scopes       []string
	RequirePAR   bool // only pushed authorization requests (RFC 9126)
	// AuthMethod private_key_jwt makes the client authenticate with signed
	// assertions (RFC 7523) verified with JWKS (by value) or JWKSURI.
	AuthMethod    string
	JWKS, JWKSURI string
	// BackchannelLogoutURI receives logout tokens (OpenID Connect
	// Back-Channel Logout).
	BackchannelLogoutURI string
	// Pairwise gives the client pairwise subject identifiers.
	Pairwise bool
	// SectorIdentifierURI, an https URL returning a JSON array that lists
	// every redirect URI, names the sector of a pairwise client whose
	// redirect URIs are on several hosts (OpenID Connect Core §8.1).
	SectorIdentifierURI string
	// Outbound is the operator's policy for the URLs above that bawwab
	// calls (jwks_uri, backchannel_logout_uri, sector_identifier_uri), not
	// client metadata: it checks them and fetches the sector identifier
	// document. Nil allows public https URLs only.
	Outbound *outbound.Client
	// IDTokenAlg signs the client's ID tokens: RS256 (when empty), PS256
	// or ES256 (OpenID Connect Registration §2).
	IDTokenAlg string
	// PKCEPolicy is storage.PKCERequired or storage.PKCENonceInstead.
	PKCEPolicy string
	// Info is what the client tells people about itself, shown on the
	// consent page; Verified marks that the operator checked it.
	Info     storage.ClientInfo
	Verified bool
	// SecondFactor makes every user of the client pass a second factor.
	SecondFactor bool
	// DPoPBound makes the token endpoint refuse the client's token
	// requests without a DPoP proof (dpop_bound_access_tokens, RFC 9449
	// §5.2).
	DPoPBound bool
	// Secret, when set, is used instead of a generated one (demo only:
	// a generated secret is always stronger).
	Secret string
}

// ValidInfoURL reports whether u may be shown to people as a client's
// page, logo, policy or terms: an https URL (http only on a loopback
// host, for development) with a host and no credentials.
func ValidInfoURL(u string) bool {
	p, err := url.Parse(u)
	if err != nil || p.Host == "" || p.User != nil {
		return false
	}
	switch p.Scheme {
	case "https":
		return true
	case "http":
		h := p.Hostname()
		return h == "localhost" || h == "127.0.0.1" || h == "::1"
	}
	return false
}

var knownGrants = []string{granttype.AuthorizationCode, granttype.RefreshToken, granttype.ClientCredentials, granttype.DeviceCode, granttype.TokenExchange}

// NewClientID returns a random client id.
func NewClientID() string { return strings.ToLower(ids.New()) }

// AddClient validates spec and stores the client. For a confidential client
// it returns the secret, which is shown once and stored only as a hash.
func AddClient(ctx context.Context, s storage.Storage, spec ClientSpec, cat *scope.Catalog) (secret string, err error) {
	c, secret, err := BuildClient(ctx, spec, cat)
	if err != nil {
		return "", err
	}
	if err := clientauth.SealFor(ctx, s, &c, secret); err != nil {
		return "", err
	}
	if err := s.CreateClient(ctx, c); errors.Is(err, storage.ErrAlreadyExists) {
		return "", exists("a client with id %q exists already", c.ID)
	} else if err != nil {
		return "", err
	}
	return secret, nil
}

// BuildClient validates spec and returns the client to store, with the
// secret of a confidential client (to show once; only its hash is kept).
// Errors are *InvalidError. A sector_identifier_uri is fetched (through
// spec.Outbound) and verified.
func BuildClient(ctx context.Context, spec ClientSpec, cat *scope.Catalog) (c storage.Client, secret string, err error) {
	spec = withDefaults(spec)
	if err := checkSpec(ctx, &spec, cat); err != nil {
		return c, "", err
	}
	c = storage.Client{ID: spec.ID, Name: spec.Name, Public: spec.Public, RedirectURIs: spec.RedirectURIs, ClientInfo: spec.Info, Verified: spec.Verified,
		GrantTypes: spec.GrantTypes, Scopes: spec.Scopes, RequirePAR: spec.RequirePAR, AuthMethod: spec.AuthMethod, JWKS: spec.JWKS,
		JWKSURI: spec.JWKSURI, BackchannelLogoutURI: spec.BackchannelLogoutURI, Pairwise: spec.Pairwise,
		SectorIdentifierURI: spec.SectorIdentifierURI, IDTokenAlg: spec.IDTokenAlg, PKCEPolicy: spec.PKCEPolicy, SecondFactor: spec.SecondFactor,
		DPoPBound: spec.DPoPBound, CreatedAt: time.Now()}
	if !spec.Public && spec.AuthMethod != clientauth.MethodPrivateKeyJWT {
		secret, c.SecretHash = clientauth.NewSecret()
		if spec.Secret != "" {
			secret, c.SecretHash = spec.Secret, storage.Hash(spec.Secret)
		}
	}
	return c, secret, nil
}

// withDefaults fills what spec leaves out: the outbound policy (public
// https URLs only), a random client id, the id as name, and the
// authorization_code and refresh_token grants.
func withDefaults(spec ClientSpec) ClientSpec {
	if spec.Outbound == nil {
		spec.Outbound = outbound.New(outbound.Options{})
	}
	if spec.ID == "" {
		spec.ID = NewClientID()
	}
	if spec.Name == "" {
		spec.Name = spec.ID
	}
	if len(spec.GrantTypes) == 0 {
		spec.GrantTypes = []string{granttype.AuthorizationCode, granttype.RefreshToken}
	}
	return spec
}

// checkSpec runs the rules on a client, one concern each, in the order
// that decides which error a spec breaking several rules gets. The auth
// method and PKCE rules normalize their field in spec.
func checkSpec(ctx context.Context, spec *ClientSpec, cat *scope.Catalog) error {
	if err := checkGrants(*spec); err != nil {
		return err
	}
	if err := checkRedirectURIs(spec.RedirectURIs); err != nil {
		return err
	}
	if err := checkScopes(spec.Scopes, cat); err != nil {
		return err
	}
	if err := checkAuthMethod(spec); err != nil {
		return err
	}
	if err := checkOutboundURL(spec.Outbound, "backchannel_logout_uri", spec.BackchannelLogoutURI); err != nil {
		return err
	}
	if err := checkSector(ctx, *spec); err != nil {
		return err
	}
	if spec.IDTokenAlg != "" && !jwks.Supported(spec.IDTokenAlg) {
		return invalid("id_token_signed_response_alg must be RS256, PS256 or ES256")
	}
	if err := checkPKCEPolicy(spec); err != nil {
		return err
	}
	return checkInfoURLs(spec.Info)
}

// checkGrants checks the grant types: each one known, none that needs an
// authenticated client on a public one (RFC 6749 §4.4, RFC 8693 §5), and
// a redirect URI for the authorization code grant (RFC 6749 §3.1.2).
func checkGrants(spec ClientSpec) error {
	for _, g := range spec.GrantTypes {
		if !slices.Contains(knownGrants, g) {
			return invalid("grant type %q is not supported (use %s)", g, strings.Join(knownGrants, ", "))
		}
	}
	if spec.Public && slices.Contains(spec.GrantTypes, granttype.ClientCredentials) {
		return invalid("a public client cannot use client_credentials")
	}
	if spec.Public && slices.Contains(spec.GrantTypes, granttype.TokenExchange) {
		return invalid("a public client cannot use token exchange: it needs an authenticated client (RFC 8693 §5)")
	}
	if slices.Contains(spec.GrantTypes, granttype.AuthorizationCode) && len(spec.RedirectURIs) == 0 {
		return invalid("the authorization_code grant needs at least one redirect URI")
	}
	return nil
}

// checkRedirectURIs checks that each redirect URI may be registered
// (redirecturi.Valid).
func checkRedirectURIs(uris []string) error {
	for _, u := range uris {
		if !redirecturi.Valid(u) {
			return invalid("redirect URI %q is not allowed: use https, http on a loopback host, or a private-use scheme, and no fragment", u)
		}
	}
	return nil
}

// checkScopes checks that each scope is in the catalog.
func checkScopes(scopes []string, cat *scope.Catalog) error {
	for _, sc := range scopes {
		if _, ok := cat.Get(sc); !ok {
			return invalid("unknown scope %q (known: %s)", sc, strings.Join(cat.Names(), ", "))
		}
	}
	return nil
}

// checkAuthMethod checks the token endpoint auth method (RFC 7591 §2,
// OpenID Connect Core §9) and the keys that go with it; the methods
// that use the client secret are stored as "" except client_secret_jwt.
func checkAuthMethod(spec *ClientSpec) error {
	switch spec.AuthMethod {
	case "", clientauth.MethodBasic, clientauth.MethodPost, clientauth.MethodNone, clientauth.MethodSecretJWT:
		if spec.AuthMethod != clientauth.MethodSecretJWT {
			spec.AuthMethod = ""
		} else if spec.Public {
			return invalid("client_secret_jwt clients are confidential")
		}
		if spec.JWKS != "" || spec.JWKSURI != "" {
			return invalid("jwks and jwks_uri belong to private_key_jwt clients")
		}
		return nil
	case clientauth.MethodPrivateKeyJWT:
		return checkPrivateKeyJWT(*spec)
	}
	return invalid("auth method %q is not supported (use client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none)", spec.AuthMethod)
}

// checkPrivateKeyJWT checks a private_key_jwt client: confidential, with
// exactly one of jwks (which must parse) and jwks_uri (which the outbound
// policy must allow).
func checkPrivateKeyJWT(spec ClientSpec) error {
	if spec.Public {
		return invalid("a public client has no keys; private_key_jwt clients are confidential")
	}
	if (spec.JWKS == "") == (spec.JWKSURI == "") {
		return invalid("a private_key_jwt client needs exactly one of jwks and jwks_uri")
	}
	if spec.JWKS != "" {
		if _, err := clientauth.ParseKeySet([]byte(spec.JWKS)); err != nil {
			return invalid("jwks: %v", err)
		}
	}
	return checkOutboundURL(spec.Outbound, "jwks_uri", spec.JWKSURI)
}

// checkOutboundURL checks a URL that bawwab will call, named name, against
// the outbound policy; an empty one is fine.
func checkOutboundURL(o *outbound.Client, name, u string) error {
	if u == "" {
		return nil
	}
	if err := o.CheckURL(u); err != nil {
		return invalid("%s %v", name, err)
	}
	return nil
}

// checkPKCEPolicy checks and normalizes the PKCE policy: only a
// confidential client may send a nonce instead (RFC 9700 §2.1.1).
func checkPKCEPolicy(spec *ClientSpec) error {
	switch spec.PKCEPolicy {
	case storage.PKCERequired, "required":
		spec.PKCEPolicy = storage.PKCERequired
	case storage.PKCENonceInstead:
		if spec.Public {
			return invalid("a public client always uses PKCE: only a confidential client may send nonce instead (RFC 9700 section 2.1.1)")
		}
	default:
		return invalid("pkce_policy must be required or nonce_instead")
	}
	return nil
}

// checkInfoURLs checks the URLs shown to people on the consent page
// (ValidInfoURL).
func checkInfoURLs(info storage.ClientInfo) error {
	for name, u := range map[string]string{"client_uri": info.ClientURI, "logo_uri": info.LogoURI, "policy_uri": info.PolicyURI,
		"tos_uri": info.TOSURI} {
		if u != "" && !ValidInfoURL(u) {
			return invalid("%s must be an https URL (or http on a loopback host)", name)
		}
	}
	return nil
}

// checkSector checks what names the sector of a pairwise client's subject
// identifiers (OpenID Connect Core §8.1): a sector_identifier_uri, which
// must be https and return a JSON array holding every redirect URI of the
// client; or else the one host of its https redirect URIs. Custom-scheme
// (and loopback http) redirect URIs name no sector: anyone may register
// com.example.app://notes.example/cb, so its "host" proves nothing; a
// pairwise client with no https redirect URI has its client id as sector
// (token.Sector).
func checkSector(ctx context.Context, spec ClientSpec) error {
	if spec.SectorIdentifierURI != "" {
		if err := spec.Outbound.CheckURL(spec.SectorIdentifierURI); err != nil {
			return invalid("sector_identifier_uri %v", err)
		}
		raw, err := spec.Outbound.Get(ctx, spec.ID, spec.SectorIdentifierURI)
		if err != nil {
			return invalid("sector_identifier_uri: %v", err) // generic; the cause is logged
		}
		var listed []string
		if err := json.Unmarshal(raw, &listed); err != nil {
			return invalid("sector_identifier_uri must return a JSON array of redirect URIs")
		}
		for _, u := range spec.RedirectURIs {
			if !slices.Contains(listed, u) {
				return invalid("the document at sector_identifier_uri does not list the redirect URI %q", u)
			}
		}
		return nil
	}
	if !spec.Pairwise {
		return nil
	}
	hosts := map[string]bool{}
	for _, u := range spec.RedirectURIs {
		if p, err := url.Parse(u); err == nil && p.Scheme == "https" {
			hosts[strings.ToLower(p.Host)] = true
		}
	}
	if len(hosts) > 1 {
		return invalid("a pairwise client's https redirect URIs must share one host, which names the sector of its subject identifiers, unless it registers a sector_identifier_uri listing them (OpenID Connect Core §8.1)")
	}
	return nil
}
