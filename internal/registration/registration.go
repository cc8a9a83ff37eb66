// Package registration implements OAuth 2.0 Dynamic Client Registration
// (RFC 7591) and its management protocol (RFC 7592): a client registers
// itself at POST /register and receives, beside its client_id and secret, a
// registration access token with which it reads, replaces or deletes its
// registration at /register/{client_id}.
//
// Registration is off unless configured: "open" lets anyone register,
// "token" requires an initial access token (RFC 7591 §3): the one of the
// configuration file, or one an operator issued (admin API, CLI, console),
// which may expire, register a limited number of clients, or be revoked. Either way the
// policy holds: code flow, refresh and device grants only (no
// client_credentials: a self-registered machine client would be a client
// nobody vetted), https, loopback or private-use redirect URIs only.
package registration

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/redirecturi"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// Modes of registration.
const (
	Off   = "off"
	Open  = "open"
	Token = "token"
)

// Errors of RFC 7591 §3.2.2.
const (
	InvalidRedirectURI    = "invalid_redirect_uri"
	InvalidClientMetadata = "invalid_client_metadata"
)

// allowedGrants are the grant types a client may register for itself.
var allowedGrants = []string{granttype.AuthorizationCode, granttype.RefreshToken, granttype.DeviceCode}

// Endpoint serves registration.
type Endpoint struct {
	Store  storage.Storage
	Scopes *scope.Catalog
	Issuer string
	Log    *slog.Logger
	Now    func() time.Time
	Mode   string // Off, Open or Token
	// InitialToken is the initial access token of the configuration
	// file when Mode is Token; empty for none. Operators also issue
	// tokens of their own, which the store keeps (storage.InitialAccessTokens).
	InitialToken string
	// Audit records each registration and the initial access token that
	// allowed it; nil records nothing.
	Audit *audit.Log
	// Outbound checks the URLs a client registers for bawwab to call and
	// fetches its sector_identifier_uri; nil allows public https URLs only.
	Outbound *outbound.Client
	// Attempts throttles registrations before their metadata is read
	// (and any of its URLs fetched): the refused ones per stored initial
	// access token, or per client network for open registration (not
	// those of the configured token: attemptKey); and every change of a
	// registered client, per client. nil throttles nothing.
	Attempts *ratelimit.Backoff
	// AllowNonceInstead lets a registering confidential client choose the
	// PKCE policy storage.PKCENonceInstead; otherwise PKCE is required.
	AllowNonceInstead bool
}

// Metadata is the client metadata a client registers (RFC 7591 §2).
type Metadata struct {
	RedirectURIs            []string        `json:"redirect_uris,omitempty"`
	ClientName              string          `json:"client_name,omitempty"`
	GrantTypes              []string        `json:"grant_types,omitempty"`
	ResponseTypes           []string        `json:"response_types,omitempty"`
	TokenEndpointAuthMethod string          `json:"token_endpoint_auth_method,omitempty"`
	Scope                   string          `json:"scope,omitempty"`
	RequirePAR              bool            `json:"require_pushed_authorization_requests,omitempty"`
	JWKS                    json.RawMessage `json:"jwks,omitempty"`
	JWKSURI                 string          `json:"jwks_uri,omitempty"`
	BackchannelLogoutURI    string          `json:"backchannel_logout_uri,omitempty"`
	SubjectType             string          `json:"subject_type,omitempty"`
	SectorIdentifierURI     string          `json:"sector_identifier_uri,omitempty"`
	// IDTokenAlg is id_token_signed_response_alg (OpenID Connect
	// Registration §2): RS256 when absent, or PS256 or ES256.
	IDTokenAlg string `json:"id_token_signed_response_alg,omitempty"`
	// PKCEPolicy (bawwab's own member) is required, or nonce_instead where
	// the operator's registration policy allows it.
	PKCEPolicy string `json:"pkce_policy,omitempty"`
	ClientURI  string `json:"client_uri,omitempty"`
	LogoURI    string `json:"logo_uri,omitempty"`
	PolicyURI  string `json:"policy_uri,omitempty"`
	TOSURI     string `json:"tos_uri,omitempty"`
	// DPoPBound is dpop_bound_access_tokens (RFC 9449 §5.2): when true,
	// the token endpoint refuses the client's token requests without a
	// DPoP proof. The client sets and clears it; responses always state it.
	DPoPBound bool `json:"dpop_bound_access_tokens"`
}

// Response is a client information response (RFC 7591 §3.2.1, RFC 7592 §3).
type Response struct {
	ClientID                string `json:"client_id"`
	ClientSecret            string `json:"client_secret,omitempty"`
	ClientIDIssuedAt        int64  `json:"client_id_issued_at"`
	ClientSecretExpiresAt   int64  `json:"client_secret_expires_at"`
	RegistrationAccessToken string `json:"registration_access_token,omitempty"`
	RegistrationClientURI   string `json:"registration_client_uri"`
	Metadata
}

// Register adds the routes to mux, unless registration is off.
func (e *Endpoint) Register(mux *http.ServeMux) {
	if e.Mode == Off || e.Mode == "" {
		return
	}
	mux.HandleFunc("POST /register", e.handle(e.create))
	mux.HandleFunc("GET /register/{client_id}", e.handle(e.read))
	mux.HandleFunc("PUT /register/{client_id}", e.handle(e.update))
	mux.HandleFunc("DELETE /register/{client_id}", e.handle(e.remove))
}

func (e *Endpoint) handle(fn func(http.ResponseWriter, *http.Request) error) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		err := fn(w, r)
		switch {
		case err == nil:
		case oautherr.Code(err) == oautherr.InvalidToken:
			// A Bearer token was wanted: the initial access token or the
			// registration access token (RFC 6750 §3).
			oautherr.WriteBearer(w, err, "bawwab", "")
		default:
			oautherr.WriteLogged(r.Context(), e.Log, w, "client registration failed", err)
		}
	}
}

func metadataError(code, desc string) error { return oautherr.New(code, desc) }

func bearer(r *http.Request) string {
	t, _ := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
	return t
}

func sameSecret(got, want string) bool {
	g, w := sha256.Sum256([]byte(got)), sha256.Sum256([]byte(want))
	return subtle.ConstantTimeCompare(g[:], w[:]) == 1
}

// spec validates metadata against the policy and turns it into a client.
// The rules run one concern each, in the order that decides which error
// metadata breaking several gets; they fill in RFC 7591 §2 defaults.
func (e *Endpoint) spec(m *Metadata) (admin.ClientSpec, error) {
	for _, check := range []func(*Metadata) error{checkGrants, checkAuthMethod, checkRedirectURIs, checkSubjectAndAlg, e.checkPKCEPolicy} {
		if err := check(m); err != nil {
			return admin.ClientSpec{}, err
		}
	}
	scopes, err := e.scopes(m)
	if err != nil {
		return admin.ClientSpec{}, err
	}
	return admin.ClientSpec{Name: m.ClientName, Public: m.TokenEndpointAuthMethod == "none", RedirectURIs: m.RedirectURIs,
		GrantTypes: m.GrantTypes, Scopes: scopes, RequirePAR: m.RequirePAR, AuthMethod: m.TokenEndpointAuthMethod, JWKS: string(m.JWKS),
		JWKSURI: m.JWKSURI, BackchannelLogoutURI: m.BackchannelLogoutURI, Pairwise: m.SubjectType == "pairwise",
		SectorIdentifierURI: m.SectorIdentifierURI, Outbound: e.Outbound,
		IDTokenAlg: m.IDTokenAlg, PKCEPolicy: m.PKCEPolicy, DPoPBound: m.DPoPBound,
		// A client registering itself is never verified: only the operator says so.
		Info: storage.ClientInfo{ClientURI: m.ClientURI, LogoURI: m.LogoURI, PolicyURI: m.PolicyURI, TOSURI: m.TOSURI}}, nil
}

// checkGrants checks grant_types and response_types (RFC 7591 §2): only
// the grants a client may register for itself, and the code response
// type, which the authorization code grant implies.
func checkGrants(m *Metadata) error {
	if len(m.GrantTypes) == 0 {
		m.GrantTypes = []string{granttype.AuthorizationCode} // RFC 7591 §2
	}
	for _, g := range m.GrantTypes {
		if !slices.Contains(allowedGrants, g) {
			return metadataError(InvalidClientMetadata, "grant type "+oautherr.Clip(g)+" cannot be registered; use "+strings.Join(allowedGrants, ", "))
		}
	}
	if len(m.ResponseTypes) == 0 && slices.Contains(m.GrantTypes, granttype.AuthorizationCode) {
		m.ResponseTypes = []string{"code"}
	}
	for _, rt := range m.ResponseTypes {
		if rt != "code" {
			return metadataError(InvalidClientMetadata, "only the code response type is supported")
		}
	}
	return nil
}

// checkAuthMethod checks token_endpoint_auth_method, client_secret_basic
// when absent (RFC 7591 §2).
func checkAuthMethod(m *Metadata) error {
	if m.TokenEndpointAuthMethod == "" {
		m.TokenEndpointAuthMethod = "client_secret_basic"
	}
	switch m.TokenEndpointAuthMethod {
	case "client_secret_basic", "client_secret_post", "none", "private_key_jwt", "client_secret_jwt":
		return nil
	}
	return metadataError(InvalidClientMetadata, "token_endpoint_auth_method must be client_secret_basic, client_secret_post, client_secret_jwt, private_key_jwt or none")
}

// checkRedirectURIs checks redirect_uris (redirecturi.Valid), which the
// authorization code grant needs (RFC 7591 §2).
func checkRedirectURIs(m *Metadata) error {
	for _, u := range m.RedirectURIs {
		if !redirecturi.Valid(u) {
			return metadataError(InvalidRedirectURI, "redirect URI "+oautherr.Clip(u)+" is not allowed: use https, http on a loopback IP, or a private-use scheme, without fragment")
		}
	}
	if slices.Contains(m.GrantTypes, granttype.AuthorizationCode) && len(m.RedirectURIs) == 0 {
		return metadataError(InvalidRedirectURI, "the authorization_code grant needs redirect_uris")
	}
	return nil
}

// checkSubjectAndAlg checks subject_type and id_token_signed_response_alg
// (OpenID Connect Registration §2).
func checkSubjectAndAlg(m *Metadata) error {
	if m.SubjectType != "" && m.SubjectType != "public" && m.SubjectType != "pairwise" {
		return metadataError(InvalidClientMetadata, "subject_type must be public or pairwise")
	}
	if m.IDTokenAlg != "" && !jwks.Supported(m.IDTokenAlg) {
		return metadataError(InvalidClientMetadata, "id_token_signed_response_alg must be RS256, PS256 or ES256")
	}
	return nil
}

// checkPKCEPolicy checks pkce_policy: a nonce instead of PKCE only where
// the operator allows it, and never for a public client (RFC 9700 §2.1.1).
func (e *Endpoint) checkPKCEPolicy(m *Metadata) error {
	switch m.PKCEPolicy {
	case "", "required":
		m.PKCEPolicy = ""
	case storage.PKCENonceInstead:
		if !e.AllowNonceInstead {
			return metadataError(InvalidClientMetadata, "pkce_policy nonce_instead is not allowed here: registered clients use PKCE")
		}
		if m.TokenEndpointAuthMethod == "none" {
			return metadataError(InvalidClientMetadata, "a public client always uses PKCE")
		}
	default:
		return metadataError(InvalidClientMetadata, "pkce_policy must be required or nonce_instead")
	}
	return nil
}

// scopes parses the scope metadata, openid when absent; each scope must
// be in the catalog.
func (e *Endpoint) scopes(m *Metadata) ([]string, error) {
	if m.Scope == "" {
		m.Scope = "openid"
	}
	scopes, err := scope.Parse(m.Scope)
	if err != nil {
		return nil, metadataError(InvalidClientMetadata, err.Error())
	}
	for _, s := range scopes {
		if _, ok := e.Scopes.Get(s); !ok {
			return nil, metadataError(InvalidClientMetadata, "unknown scope "+oautherr.Clip(s))
		}
	}
	return scopes, nil
}

func readMetadata(r *http.Request) (*Metadata, error) {
	var m Metadata
	dec := json.NewDecoder(io.LimitReader(r.Body, 64<<10))
	if err := dec.Decode(&m); err != nil {
		return nil, metadataError(InvalidClientMetadata, "the body must be a JSON object of client metadata")
	}
	return &m, nil
}

func (e *Endpoint) respond(w http.ResponseWriter, status int, c storage.Client, secret, regToken string) error {
	auth := "client_secret_basic"
	switch {
	case c.Public:
		auth = "none"
	case c.AuthMethod != "":
		auth = c.AuthMethod
	}
	resp := Response{ClientID: c.ID, ClientSecret: secret, ClientIDIssuedAt: c.CreatedAt.Unix(), RegistrationAccessToken: regToken,
		RegistrationClientURI: e.Issuer + "/register/" + c.ID,
		Metadata: Metadata{RedirectURIs: c.RedirectURIs, ClientName: c.Name, GrantTypes: c.GrantTypes, TokenEndpointAuthMethod: auth,
			Scope: scope.Join(c.Scopes), RequirePAR: c.RequirePAR, JWKS: rawOrNil(c.JWKS), JWKSURI: c.JWKSURI,
			BackchannelLogoutURI: c.BackchannelLogoutURI, SubjectType: c.SubjectType(), IDTokenAlg: c.IDTokenSigningAlg(), PKCEPolicy: c.PKCEPolicy,
			SectorIdentifierURI: c.SectorIdentifierURI, ClientURI: c.ClientURI, LogoURI: c.LogoURI,
			PolicyURI: c.PolicyURI, TOSURI: c.TOSURI, DPoPBound: c.DPoPBound}}
	if resp.PKCEPolicy == "" {
		resp.PKCEPolicy = "required"
	}
	if slices.Contains(c.GrantTypes, granttype.AuthorizationCode) {
		resp.ResponseTypes = []string{"code"}
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(resp)
}

func (e *Endpoint) create(w http.ResponseWriter, r *http.Request) error {
	acc, err := e.authorize(r)
	if err != nil {
		return err
	}
	try, err := e.reserve(r.Context(), attemptKey(r, acc))
	if err != nil {
		return err
	}
	err = e.register(w, r, acc)
	e.endAttempt(r.Context(), try, err, false)
	return err
}

// register makes the client of an authorized registration request.
func (e *Endpoint) register(w http.ResponseWriter, r *http.Request, acc access) error {
	m, err := readMetadata(r)
	if err != nil {
		return err
	}
	spec, err := e.spec(m)
	if err != nil {
		return err
	}
	c, secret, err := admin.BuildClient(r.Context(), spec, e.Scopes)
	if err != nil {
		return metadataError(InvalidClientMetadata, err.Error())
	}
	if err := clientauth.SealFor(r.Context(), e.Store, &c, secret); err != nil {
		return oautherr.Wrap(err)
	}
	if err := e.spend(r.Context(), &acc); err != nil {
		return err
	}
	regToken := ids.NewOpaque() + ids.NewOpaque()
	c.RegistrationTokenHash, c.CreatedAt = storage.Hash(regToken), e.Now()
	if err := e.Store.CreateClient(r.Context(), c); err != nil {
		return oautherr.Wrap(err)
	}
	e.Audit.Record(r.Context(), audit.Event{Type: audit.ClientRegistered, ClientID: c.ID, Detail: acc.detail()})
	return e.respond(w, http.StatusCreated, c, secret, regToken)
}

// registered authenticates a management request (RFC 7592 §3): the
// registration access token of this very client.
func (e *Endpoint) registered(r *http.Request) (*storage.Client, error) {
	c, err := e.Store.GetClient(r.Context(), r.PathValue("client_id"))
	if err != nil && !errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.Wrap(err)
	}
	// Unknown client and wrong token look the same (§3: 401).
	if err != nil || c.RegistrationTokenHash == "" || !sameSecret(storage.Hash(bearer(r)), c.RegistrationTokenHash) {
		return nil, notRegistered()
	}
	return c, nil
}

// notRegistered is the answer to a management request without this
// client's registration access token, or for a client that does not
// exist (RFC 7592 §2.3, §3: 401).
func notRegistered() error {
	return unauthorized("the registration access token does not match this client")
}

// storeError is the answer to a failed write of a registered client: one
// deleted since registered read it (by a concurrent request, or on
// another node before this node's client cache saw it) is unknown, as if
// it had not been there (notRegistered), not a failure of the server.
func storeError(err error) error {
	if errors.Is(err, storage.ErrNotFound) {
		return notRegistered()
	}
	return oautherr.Wrap(err)
}

func (e *Endpoint) read(w http.ResponseWriter, r *http.Request) error {
	c, err := e.registered(r)
	if err != nil {
		return err
	}
	return e.respond(w, http.StatusOK, *c, "", "")
}

// update replaces the metadata (RFC 7592 §2.2). The secret stays unless
// the client becomes public, or confidential (then a new one is issued).
func (e *Endpoint) update(w http.ResponseWriter, r *http.Request) error {
	c, err := e.registered(r)
	if err != nil {
		return err
	}
	try, err := e.reserve(r.Context(), clientKey(c.ID))
	if err != nil {
		return err
	}
	err = e.replace(w, r, c)
	e.endAttempt(r.Context(), try, err, true)
	return err
}

// replace replaces the metadata of the registered client c.
func (e *Endpoint) replace(w http.ResponseWriter, r *http.Request, c *storage.Client) error {
	var body struct {
		Metadata
		ClientID     string `json:"client_id"`
		ClientSecret string `json:"client_secret"`
	}
	if err := json.NewDecoder(io.LimitReader(r.Body, 64<<10)).Decode(&body); err != nil {
		return metadataError(InvalidClientMetadata, "the body must be a JSON object of client metadata")
	}
	if body.ClientID != c.ID {
		return metadataError(InvalidClientMetadata, "client_id in the body must be this client's")
	}
	spec, err := e.spec(&body.Metadata)
	if err != nil {
		return err
	}
	spec.ID = c.ID
	next, secret, err := admin.BuildClient(r.Context(), spec, e.Scopes)
	if err != nil {
		return metadataError(InvalidClientMetadata, err.Error())
	}
	if next.SecretHash != "" && c.SecretHash != "" {
		next.SecretHash, next.SecretSealed, secret = c.SecretHash, c.SecretSealed, "" // unchanged
	}
	if err := clientauth.SealFor(r.Context(), e.Store, &next, secret); err != nil {
		return oautherr.Wrap(err)
	}
	next.RegistrationTokenHash, next.CreatedAt = c.RegistrationTokenHash, c.CreatedAt
	next.SecondFactor = c.SecondFactor // the operator's, which the client cannot lower
	// A client's own update may add a requirement (DPoP proofs, pushed
	// requests) but not remove one: whoever stole its registration access
	// token must not first turn its protections off. The operator clears
	// them (admin API, CLI, console).
	next.DPoPBound = next.DPoPBound || c.DPoPBound
	next.RequirePAR = next.RequirePAR || c.RequirePAR
	if err := e.Store.UpdateClient(r.Context(), next); err != nil {
		return storeError(err)
	}
	return e.respond(w, http.StatusOK, next, secret, "")
}

func (e *Endpoint) remove(w http.ResponseWriter, r *http.Request) error {
	c, err := e.registered(r)
	if err != nil {
		return err
	}
	if err := e.Store.DeleteClient(r.Context(), c.ID, e.Now()); err != nil {
		return storeError(err)
	}
	w.WriteHeader(http.StatusNoContent)
	return nil
}

func rawOrNil(s string) json.RawMessage {
	if s == "" {
		return nil
	}
	return json.RawMessage(s)
}
