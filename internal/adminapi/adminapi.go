// Package adminapi is bawwab's admin REST API: clients, users, grants,
// scopes, signing keys and the audit log, as JSON over HTTP. It is served
// on a listener of its own (loopback by default) and every request must
// carry the admin token as a Bearer token. openapi.json describes it; a
// test holds the document and the routes to each other.
package adminapi

import (
	"context"
	"crypto/sha256"
	"crypto/subtle"
	_ "embed"
	"encoding/json"
	"errors"
	"io"
	"log/slog"
	"net/http"
	"slices"
	"strconv"
	"strings"
	"time"
	"unicode/utf8"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/redirecturi"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
	"github.com/bawwab/bawwab/internal/upstream"
)

//go:embed openapi.json
var openapi []byte

// API serves the admin routes.
type API struct {
	Store    storage.Storage
	Keys     *jwks.Manager
	Scopes   *scope.Catalog
	Password password.Params
	Log      *slog.Logger
	Now      func() time.Time
	// Token is the admin token; requests without it are refused.
	Token string
	// Logouts tells clients when a user is signed out or deleted.
	Logouts *backchannel.Notifier
	// Outbound checks the URLs a client registers for bawwab to call and
	// fetches its sector_identifier_uri; nil allows public https URLs only.
	Outbound *outbound.Client
	// Issuer and InviteTTL make sign-up invitation links.
	Issuer    string
	InviteTTL time.Duration
	// Audit records the operators' actions on accounts.
	Audit *audit.Log
	// Notify mails people the notices of what an operator changed on
	// their account; nil sends none.
	Notify Notifier
	// Verify mails confirmation links; nil cannot.
	Verify Verifier
	// Upstreams are the upstreams of the configuration file: listed, but
	// read-only here; their ids are taken.
	Upstreams []upstream.Config
	// Registration is the policy of dynamic client registration, from
	// the configuration file: shown, never its token.
	Registration Registration
	// UpstreamsChanged, when set, is told of every change to the stored
	// upstreams (this node's login page then reads them at once).
	UpstreamsChanged func()
	// NoAdminOK lets a demotion, disabling or deletion leave no enabled
	// admin. Only the command line working on the store directly sets it
	// (--force), to recover; a running server never does.
	NoAdminOK bool
}

// route is one admin operation.
type route struct {
	pattern string // method and path, as http.ServeMux reads it
	serve   func(*API, http.ResponseWriter, *http.Request) error
}

// routes lists every operation; Handler registers exactly these.
var routes = []route{
	{"GET /admin/openapi.json", (*API).openAPI},
	{"GET /admin/clients", (*API).listClients},
	{"POST /admin/clients", (*API).createClient},
	{"GET /admin/clients/{id}", (*API).getClient},
	{"PUT /admin/clients/{id}", (*API).updateClient},
	{"DELETE /admin/clients/{id}", (*API).deleteClient},
	{"GET /admin/clients/{id}/grants", (*API).listClientGrants},
	{"DELETE /admin/clients/{id}/grants", (*API).revokeClientGrants},
	{"GET /admin/users", (*API).listUsers},
	{"POST /admin/users", (*API).createUser},
	{"GET /admin/users/{id}", (*API).getUser},
	{"PUT /admin/users/{id}", (*API).updateUser},
	{"DELETE /admin/users/{id}", (*API).deleteUser},
	{"PUT /admin/users/{id}/password", (*API).setPassword},
	{"GET /admin/users/{id}/grants", (*API).listGrants},
	{"GET /admin/users/{id}/factors", (*API).listFactors},
	{"DELETE /admin/users/{id}/factors", (*API).resetFactors},
	{"DELETE /admin/users/{id}/factors/passkeys/{passkey_id}", (*API).removePasskey},
	{"POST /admin/users/{id}/disable", (*API).disableUser},
	{"POST /admin/users/{id}/enable", (*API).enableUser},
	{"PUT /admin/users/{id}/admin", (*API).grantAdmin},
	{"DELETE /admin/users/{id}/admin", (*API).revokeAdmin},
	{"POST /admin/users/{id}/verification", (*API).resendVerification},
	{"POST /admin/users/{id}/unlock", (*API).unlock},
	{"POST /admin/users/{id}/signout", (*API).signOutUser},
	{"DELETE /admin/users/{id}/grants/{client_id}", (*API).revokeGrant},
	{"GET /admin/scopes", (*API).listScopes},
	{"PUT /admin/scopes/{name}", (*API).saveScope},
	{"DELETE /admin/scopes/{name}", (*API).deleteScope},
	{"GET /admin/registration", (*API).registrationPolicy},
	{"GET /admin/registration/tokens", (*API).listRegistrationTokens},
	{"POST /admin/registration/tokens", (*API).createRegistrationToken},
	{"DELETE /admin/registration/tokens/{id}", (*API).revokeRegistrationToken},
	{"GET /admin/keys", (*API).listKeys},
	{"POST /admin/keys/rotate", (*API).rotateKeys},
	{"GET /admin/upstreams", (*API).listUpstreams},
	{"POST /admin/upstreams", (*API).createUpstream},
	{"GET /admin/upstreams/{id}", (*API).getUpstream},
	{"PUT /admin/upstreams/{id}", (*API).updateUpstream},
	{"DELETE /admin/upstreams/{id}", (*API).deleteUpstream},
	{"POST /admin/upstreams/{id}/disable", (*API).disableUpstream},
	{"POST /admin/upstreams/{id}/enable", (*API).enableUpstream},
	{"GET /admin/upstreams/{id}/users", (*API).listUpstreamUsers},
	{"GET /admin/audit", (*API).listAudit},
	{"POST /admin/invitations", (*API).createInvitation},
	{"GET /admin/export", (*API).export},
	{"POST /admin/import", (*API).importAll},
}

// Patterns lists the served routes (for tests and documentation).
func Patterns() []string {
	out := make([]string, len(routes))
	for i, r := range routes {
		out[i] = r.pattern
	}
	return out
}

// Handler returns the API's handler.
func (a *API) Handler() http.Handler {
	mux := http.NewServeMux()
	for _, rt := range routes {
		mux.HandleFunc(rt.pattern, func(w http.ResponseWriter, r *http.Request) {
			if err := rt.serve(a, w, r); err != nil {
				a.fail(w, r, err)
			}
		})
	}
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		a.fail(w, r, &apiError{http.StatusNotFound, "not_found", "no such admin route; see /admin/openapi.json"})
	})
	want := sha256.Sum256([]byte(a.Token))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "no-store")
		got, ok := strings.CutPrefix(r.Header.Get("Authorization"), "Bearer ")
		sum := sha256.Sum256([]byte(got))
		if !ok || a.Token == "" || subtle.ConstantTimeCompare(sum[:], want[:]) != 1 {
			w.Header().Set("WWW-Authenticate", `Bearer realm="bawwab-admin"`)
			a.fail(w, r, &apiError{http.StatusUnauthorized, "unauthorized", "send the admin token as Authorization: Bearer <token>"})
			return
		}
		mux.ServeHTTP(w, r)
	})
}

// apiError is an error with its HTTP status.
type apiError struct {
	status      int
	code        string
	description string
}

func (e *apiError) Error() string { return e.code + ": " + e.description }

func badRequest(desc string) error { return &apiError{http.StatusBadRequest, "invalid_request", desc} }

func (a *API) fail(w http.ResponseWriter, r *http.Request, err error) {
	var ae *apiError
	var inv *admin.InvalidError
	var ex *admin.ExistsError
	switch {
	case errors.As(err, &ae):
	case errors.As(err, &inv):
		ae = &apiError{http.StatusBadRequest, "invalid_request", inv.Error()}
	case errors.As(err, &ex):
		ae = &apiError{http.StatusConflict, "conflict", ex.Error()}
	case errors.Is(err, storage.ErrLastAdmin):
		ae = &apiError{http.StatusConflict, "last_admin", "this would leave no enabled admin to sign in to the admin console: make another user admin first"}
	case errors.Is(err, storage.ErrAlreadyExists):
		// The store's error quotes the database's: log it, answer in general terms.
		a.Log.InfoContext(r.Context(), "admin API conflict", "path", r.URL.Path, "err", err)
		ae = &apiError{http.StatusConflict, "conflict", "this conflicts with something that exists already (the same id or name)"}
	case errors.Is(err, storage.ErrUnavailable):
		a.Log.WarnContext(r.Context(), "admin API failed: store unavailable", "path", r.URL.Path, "err", err)
		w.Header().Set("Retry-After", strconv.Itoa(oautherr.RetryAfterUnavailable))
		ae = &apiError{http.StatusServiceUnavailable, oautherr.TemporarilyUnavailable, "the store is temporarily unavailable; try again shortly"}
	case errors.Is(err, storage.ErrNotFound):
		ae = &apiError{http.StatusNotFound, "not_found", "no such " + strings.TrimSuffix(strings.Split(strings.TrimPrefix(r.URL.Path, "/admin/"), "/")[0], "s")}
	default:
		a.Log.ErrorContext(r.Context(), "admin API failed", "path", r.URL.Path, "err", err)
		ae = &apiError{http.StatusInternalServerError, "server_error", "the server could not complete the request; see its log"}
	}
	writeJSON(w, ae.status, map[string]string{"error": ae.code, "error_description": oautherr.Sanitize(ae.description)})
}

// noContent answers 204 when the operation succeeded.
func noContent(w http.ResponseWriter, err error) error {
	if err == nil {
		w.WriteHeader(http.StatusNoContent)
	}
	return err
}

func writeJSON(w http.ResponseWriter, status int, v any) error {
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(status)
	return json.NewEncoder(w).Encode(v)
}

// readJSON decodes a bounded JSON body, refusing unknown fields.
func readJSON(r *http.Request, v any) error {
	return readJSONLimit(r, v, 64<<10)
}

func readJSONLimit(r *http.Request, v any, limit int64) error {
	dec := json.NewDecoder(io.LimitReader(r.Body, limit))
	dec.DisallowUnknownFields()
	if err := dec.Decode(v); err != nil {
		return badRequest("the body is not the expected JSON object: " + err.Error())
	}
	return nil
}

func (a *API) openAPI(w http.ResponseWriter, _ *http.Request) error {
	w.Header().Set("Content-Type", "application/json")
	_, err := w.Write(openapi)
	return err
}

// ---- clients

// Client is a client as the API shows it (never its secret or hash).
type Client struct {
	NewClient
	CreatedAt time.Time `json:"created_at"`
}

// rawJSON carries a JSON document (a JWK Set) as is.
type rawJSON = json.RawMessage

func clientView(c storage.Client) Client {
	method := c.AuthMethod
	switch {
	case c.Public:
		method = "none"
	case method == "":
		method = "client_secret_basic"
	}
	v := Client{NewClient: NewClient{ID: c.ID, Name: c.Name, Public: c.Public, RedirectURIs: nonNil(c.RedirectURIs),
		GrantTypes: nonNil(c.GrantTypes), Scopes: nonNil(c.Scopes), RequirePAR: c.RequirePAR, AuthMethod: method, JWKSURI: c.JWKSURI,
		Backchannel: c.BackchannelLogoutURI, SubjectType: c.SubjectType(), IDTokenAlg: c.IDTokenSigningAlg(), PKCEPolicy: c.PKCEPolicy, SectorIdentifierURI: c.SectorIdentifierURI,
		ClientURI: c.ClientURI, LogoURI: c.LogoURI, PolicyURI: c.PolicyURI, TOSURI: c.TOSURI, Verified: c.Verified,
		SecondFactor: c.SecondFactor, DPoPBound: c.DPoPBound}, CreatedAt: c.CreatedAt}
	if v.PKCEPolicy == storage.PKCERequired {
		v.PKCEPolicy = "required"
	}
	if c.JWKS != "" {
		v.JWKS = rawJSON(c.JWKS)
	}
	return v
}

func nonNil(l []string) []string {
	if l == nil {
		return []string{}
	}
	return l
}

// listJSON writes items as their views: a JSON array, [] when empty.
func listJSON[T, V any](w http.ResponseWriter, items []T, err error, view func(T) V) error {
	if err != nil {
		return err
	}
	out := make([]V, 0, len(items))
	for _, it := range items {
		out = append(out, view(it))
	}
	return writeJSON(w, http.StatusOK, out)
}

func (a *API) listClients(w http.ResponseWriter, r *http.Request) error {
	cs, err := a.Store.ListClients(r.Context())
	return listJSON(w, cs, err, clientView)
}

// NewClient is the body of POST /admin/clients and PUT /admin/clients/{id}:
// every setting of a client.
type NewClient struct {
	ID           string   `json:"client_id"`
	Name         string   `json:"name"`
	Public       bool     `json:"public"`
	RedirectURIs []string `json:"redirect_uris"`
	GrantTypes   []string `json:"grant_types"`
	Scopes       []string `json:"scopes"`
	RequirePAR   bool     `json:"require_pushed_authorization_requests"`
	AuthMethod   string   `json:"token_endpoint_auth_method"`
	JWKS         rawJSON  `json:"jwks,omitempty"`
	JWKSURI      string   `json:"jwks_uri,omitempty"`
	Backchannel  string   `json:"backchannel_logout_uri,omitempty"`
	SubjectType  string   `json:"subject_type,omitempty"` // public or pairwise
	// SectorIdentifierURI names a pairwise client's sector (OpenID
	// Connect Core §8.1).
	SectorIdentifierURI string `json:"sector_identifier_uri,omitempty"`
	// IDTokenAlg is RS256 (the default), PS256 or ES256.
	IDTokenAlg string `json:"id_token_signed_response_alg,omitempty"`
	// PKCEPolicy is required (the default) or nonce_instead.
	PKCEPolicy string `json:"pkce_policy,omitempty"`
	// What the client tells people about itself (RFC 7591 §2), and
	// whether the operator checked it: the consent page shows both.
	ClientURI string `json:"client_uri,omitempty"`
	LogoURI   string `json:"logo_uri,omitempty"`
	PolicyURI string `json:"policy_uri,omitempty"`
	TOSURI    string `json:"tos_uri,omitempty"`
	Verified  bool   `json:"verified"`
	// SecondFactor makes every user of the client pass a second factor
	// at sign-in, whatever the server's second_factor setting.
	SecondFactor bool `json:"second_factor"`
	// DPoPBound makes the token endpoint refuse the client's token
	// requests without a DPoP proof (RFC 9449 §5.2).
	DPoPBound bool `json:"dpop_bound_access_tokens"`
}

func (in NewClient) info() storage.ClientInfo {
	return storage.ClientInfo{ClientURI: in.ClientURI, LogoURI: in.LogoURI, PolicyURI: in.PolicyURI, TOSURI: in.TOSURI}
}

// CreatedClient answers POST /admin/clients; the secret is shown once.
type CreatedClient struct {
	Client
	Secret string `json:"client_secret,omitempty"`
}

func (a *API) createClient(w http.ResponseWriter, r *http.Request) error {
	var in NewClient
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.ID == "" {
		in.ID = admin.NewClientID()
	}
	secret, err := admin.AddClient(r.Context(), a.Store, admin.ClientSpec{ID: in.ID, Name: in.Name, Public: in.Public,
		RedirectURIs: in.RedirectURIs, GrantTypes: in.GrantTypes, Scopes: in.Scopes, RequirePAR: in.RequirePAR,
		AuthMethod: in.AuthMethod, JWKS: string(in.JWKS), JWKSURI: in.JWKSURI, BackchannelLogoutURI: in.Backchannel,
		Pairwise: in.SubjectType == "pairwise", SectorIdentifierURI: in.SectorIdentifierURI, Outbound: a.Outbound,
		IDTokenAlg: in.IDTokenAlg, PKCEPolicy: in.PKCEPolicy,
		Info: in.info(), Verified: in.Verified, SecondFactor: in.SecondFactor, DPoPBound: in.DPoPBound}, a.Scopes)
	if err != nil {
		return err
	}
	c, err := a.Store.GetClient(r.Context(), in.ID)
	if err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.ClientCreated, ClientID: c.ID})
	return writeJSON(w, http.StatusCreated, CreatedClient{Client: clientView(*c), Secret: secret})
}

func (a *API) getClient(w http.ResponseWriter, r *http.Request) error {
	c, err := a.Store.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, clientView(*c))
}

// updateClient replaces a client's settings. Its secret stays while it
// stays confidential with a secret; a client made confidential gets one.
func (a *API) updateClient(w http.ResponseWriter, r *http.Request) error {
	old, err := a.Store.GetClient(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var in NewClient
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if in.ID != "" && in.ID != old.ID {
		return badRequest("client_id cannot change")
	}
	next, secret, err := admin.BuildClient(r.Context(), admin.ClientSpec{ID: old.ID, Name: in.Name, Public: in.Public, RedirectURIs: in.RedirectURIs,
		GrantTypes: in.GrantTypes, Scopes: in.Scopes, RequirePAR: in.RequirePAR, AuthMethod: in.AuthMethod, JWKS: string(in.JWKS),
		JWKSURI: in.JWKSURI, BackchannelLogoutURI: in.Backchannel, Pairwise: in.SubjectType == "pairwise",
		SectorIdentifierURI: in.SectorIdentifierURI, Outbound: a.Outbound, IDTokenAlg: in.IDTokenAlg, PKCEPolicy: in.PKCEPolicy,
		Info: in.info(), Verified: in.Verified, SecondFactor: in.SecondFactor, DPoPBound: in.DPoPBound}, a.Scopes)
	if err != nil {
		return err
	}
	if next.SecretHash != "" && old.SecretHash != "" {
		next.SecretHash, next.SecretSealed, secret = old.SecretHash, old.SecretSealed, ""
	}
	if next.AuthMethod == "client_secret_jwt" && next.SecretSealed == "" && secret == "" {
		return badRequest("this client's secret was never kept readable; delete and register it again to use client_secret_jwt")
	}
	if err := clientauth.SealFor(r.Context(), a.Store, &next, secret); err != nil {
		return err
	}
	next.RegistrationTokenHash, next.CreatedAt = old.RegistrationTokenHash, old.CreatedAt
	if err := a.Store.UpdateClient(r.Context(), next); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.ClientUpdated, ClientID: next.ID})
	return writeJSON(w, http.StatusOK, CreatedClient{Client: clientView(next), Secret: secret})
}

// ClientGrant is what one user granted the client.
type ClientGrant struct {
	UserID    string    `json:"user_id"`
	Scopes    []string  `json:"scopes"`
	GrantedAt time.Time `json:"granted_at"`
	UpdatedAt time.Time `json:"updated_at"`
}

func (a *API) listClientGrants(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.Store.GetClient(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	cs, err := a.Store.ListClientConsents(r.Context(), r.PathValue("id"))
	return listJSON(w, cs, err, func(c storage.Consent) ClientGrant {
		return ClientGrant{c.UserID, nonNil(c.Scopes), c.GrantedAt, c.UpdatedAt}
	})
}

// revokeClientGrants revokes what every user granted the client (an app
// found misbehaving): the client stays registered, its users' tokens die.
func (a *API) revokeClientGrants(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.Store.GetClient(r.Context(), id); err != nil {
		return err
	}
	cs, err := a.Store.ListClientConsents(r.Context(), id)
	if err != nil {
		return err
	}
	for _, c := range cs {
		if err := a.Store.RevokeConsent(r.Context(), c.UserID, id, a.Now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	a.changed(r, audit.Event{Type: audit.ClientGrantsRevoked, ClientID: id, Detail: strconv.Itoa(len(cs)) + " grants"})
	return writeJSON(w, http.StatusOK, map[string]int{"revoked": len(cs)})
}

func (a *API) deleteClient(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.Store.DeleteClient(r.Context(), id, a.Now()); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.ClientDeleted, ClientID: id})
	return noContent(w, nil)
}

// ---- users

// User is a user as the API shows it (never the password hash).
type User struct {
	ID            string    `json:"id"`
	Username      string    `json:"username"`
	Name          string    `json:"name"`
	Email         string    `json:"email"`
	EmailVerified bool      `json:"email_verified"`
	Picture       string    `json:"picture,omitempty"`
	CreatedAt     time.Time `json:"created_at"`
	Profile
	// UpdatedAt is when the profile last changed (zero if never).
	UpdatedAt time.Time `json:"updated_at,omitzero"`
	// Disabled users cannot sign in and no token of theirs is honoured.
	Disabled bool `json:"disabled"`
	// Admin users may sign in to the admin console.
	Admin bool `json:"admin"`
}

// Profile is the standard claims of a user beside name, email and
// picture, named as in OpenID Connect Core §5.1.
type Profile = storage.ProfileClaims

func userView(u storage.User) User {
	return User{u.ID, u.Username, u.Name, u.Email, u.EmailVerified, u.Picture, u.CreatedAt, u.Profile.Claims(), u.Profile.UpdatedAt, u.Disabled, u.Admin}
}

func (a *API) listUsers(w http.ResponseWriter, r *http.Request) error {
	us, err := a.Store.ListUsers(r.Context())
	return listJSON(w, us, err, userView)
}

// NewUser is the body of POST /admin/users.
type NewUser struct {
	Username      string `json:"username"`
	Password      string `json:"password"`
	Name          string `json:"name"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Picture       string `json:"picture"`
	// Admin gives the user the admin role: the admin console lets them in.
	Admin bool `json:"admin"`
	Profile
}

// UserProfile is the body of PUT /admin/users/{id}: everything about the
// person but username and password, replaced as a whole.
type UserProfile struct {
	Name          string `json:"name"`
	Email         string `json:"email"`
	EmailVerified bool   `json:"email_verified"`
	Picture       string `json:"picture"`
	Profile
}

// updateUser replaces a user's profile (OpenID Connect Core §5.1).
func (a *API) updateUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var in UserProfile
	if err := readJSON(r, &in); err != nil {
		return err
	}
	u.Name, u.Email, u.EmailVerified, u.Picture, u.Profile = in.Name, in.Email, in.EmailVerified, in.Picture, in.Profile.Profile(time.Time{})
	if err := admin.UpdateProfile(r.Context(), a.Store, *u, a.Now()); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.UserUpdated, UserID: u.ID})
	u, err = a.Store.GetUser(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userView(*u))
}

func (a *API) createUser(w http.ResponseWriter, r *http.Request) error {
	var in NewUser
	if err := readJSON(r, &in); err != nil {
		return err
	}
	id, err := admin.AddUser(r.Context(), a.Store, admin.UserSpec{Username: in.Username, Password: in.Password, Name: in.Name,
		Email: in.Email, EmailVerified: in.EmailVerified, Picture: in.Picture, Profile: in.Profile.Profile(time.Time{}), Admin: in.Admin}, a.Password)
	if err != nil {
		return err
	}
	u, err := a.Store.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.UserCreated, UserID: u.ID, Detail: "username=" + u.Username})
	return writeJSON(w, http.StatusCreated, userView(*u))
}

func (a *API) getUser(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userView(*u))
}

// deleteUser removes the user; every token it granted stops working.
func (a *API) deleteUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	clients := a.Logouts.Clients(r.Context(), id) // before the consents go
	if err := a.loseAdmin(r.Context(), id, storage.Delete); err != nil {
		return err
	}
	a.Logouts.Notify(id, clients)
	a.changed(r, audit.Event{Type: audit.UserDeleted, UserID: id})
	return noContent(w, nil)
}

// setPassword sets a new password (checked against the password rules)
// and signs the user out everywhere.
func (a *API) setPassword(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	var in struct {
		Password string `json:"password"`
	}
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := password.Check(in.Password, u.Username); err != nil {
		return badRequest(err.Error())
	}
	hash, err := password.Hash(in.Password, a.Password)
	if err != nil {
		return err
	}
	if err := a.Store.UpdateUserPassword(r.Context(), u.ID, hash); err != nil {
		return err
	}
	// A reset link mailed before would set another password.
	if err := a.Store.DeleteAccountTokens(r.Context(), u.ID, storage.TokenResetPassword); err != nil {
		return err
	}
	if _, err := a.Store.DeleteUserSessions(r.Context(), u.ID); err != nil {
		return err
	}
	a.Logouts.LoggedOut(r.Context(), u.ID)
	a.changed(r, audit.Event{Type: audit.PasswordSet, UserID: u.ID})
	w.WriteHeader(http.StatusNoContent)
	return nil
}

// ---- grants

// Grant is what a user granted one client.
type Grant struct {
	ClientID   string    `json:"client_id"`
	ClientName string    `json:"client_name"`
	Scopes     []string  `json:"scopes"`
	GrantedAt  time.Time `json:"granted_at"`
	UpdatedAt  time.Time `json:"updated_at"`
}

func (a *API) listGrants(w http.ResponseWriter, r *http.Request) error {
	if _, err := a.Store.GetUser(r.Context(), r.PathValue("id")); err != nil {
		return err
	}
	cs, err := a.Store.ListConsents(r.Context(), r.PathValue("id"))
	return listJSON(w, cs, err, func(c storage.ConsentView) Grant {
		return Grant{c.ClientID, c.ClientName, nonNil(c.Scopes), c.GrantedAt, c.UpdatedAt}
	})
}

// revokeGrant does what the user's own "Connected apps" page does: the
// consent goes and every token of the user's grants to the client dies.
func (a *API) revokeGrant(w http.ResponseWriter, r *http.Request) error {
	userID, clientID := r.PathValue("id"), r.PathValue("client_id")
	if err := a.Store.RevokeConsent(r.Context(), userID, clientID, a.Now()); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.GrantRevoked, UserID: userID, ClientID: clientID})
	return noContent(w, nil)
}

// ---- scopes

// Scope is a scope of the catalog with its human descriptions.
type Scope struct {
	Name        string            `json:"name"`
	Description map[string]string `json:"description"`
	Explanation map[string]string `json:"explanation,omitempty"`
	Sensitive   bool              `json:"sensitive"`
	Required    bool              `json:"required"`
	Claims      []string          `json:"claims"`
}

func (a *API) listScopes(w http.ResponseWriter, _ *http.Request) error {
	return listJSON(w, a.Scopes.All(), nil, scopeView)
}

func scopeView(s scope.Scope) Scope {
	return Scope{Name: s.Name, Description: s.Description, Explanation: s.Explanation, Sensitive: s.Sensitive, Required: s.Required,
		Claims: nonNil(s.Claims)}
}

// NewScope is the body of PUT /admin/scopes/{name}.
type NewScope struct {
	Description map[string]string `json:"description"`
	// Explanation is one line, by language, on what sharing it means.
	Explanation map[string]string `json:"explanation,omitempty"`
	Sensitive   bool              `json:"sensitive"`
	Claims      []string          `json:"claims"`
}

// saveScope creates or replaces a scope; every node sees it within 30
// seconds, this one at once.
func (a *API) saveScope(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if toks, err := scope.Parse(name); err != nil || len(toks) != 1 || toks[0] != name {
		return badRequest("a scope name is one token of printable ASCII without spaces, quotes or backslashes (RFC 6749 §3.3)")
	}
	var in NewScope
	if err := readJSON(r, &in); err != nil {
		return err
	}
	if err := in.check(); err != nil {
		return err
	}
	d, status, err := a.scopeDef(r.Context(), name, in)
	if err != nil {
		return err
	}
	if err := a.Store.SaveScope(r.Context(), d); err != nil {
		return err
	}
	if err := scope.Load(r.Context(), a.Store, a.Scopes); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.ScopeSaved, Detail: "scope=" + name})
	sc, _ := a.Scopes.Get(name)
	return writeJSON(w, status, scopeView(sc))
}

// check checks a scope's texts and claims: an English description (what
// users read on the consent screen), texts only in the UI's languages,
// claims only of those scopes may release.
func (in NewScope) check() error {
	if strings.TrimSpace(in.Description["en"]) == "" {
		return badRequest("description.en is required: it is what users read on the consent screen")
	}
	for lang := range in.Description {
		if !slices.Contains(ui.Languages, lang) {
			return badRequest("description languages are " + strings.Join(ui.Languages, ", "))
		}
	}
	for lang := range in.Explanation {
		if !slices.Contains(ui.Languages, lang) {
			return badRequest("explanation languages are " + strings.Join(ui.Languages, ", "))
		}
	}
	for _, c := range in.Claims {
		if !slices.Contains(scope.UserClaims, c) {
			return badRequest("claims may be " + strings.Join(scope.UserClaims, ", "))
		}
	}
	return nil
}

// scopeDef is the stored form of scope name: a new scope goes last
// (201), a replaced one keeps its place (200); openid is required and
// releases sub alone (OpenID Connect Core §5.4).
func (a *API) scopeDef(ctx context.Context, name string, in NewScope) (storage.ScopeDef, int, error) {
	defs, err := a.Store.ListScopes(ctx)
	if err != nil {
		return storage.ScopeDef{}, 0, err
	}
	d := storage.ScopeDef{Name: name, Position: len(defs) + 1, Description: in.Description, Explanation: in.Explanation, Sensitive: in.Sensitive,
		Required: name == scope.OpenID, Claims: in.Claims}
	status := http.StatusCreated
	for _, old := range defs {
		if old.Name == name {
			d.Position, status = old.Position, http.StatusOK
		}
	}
	if name == scope.OpenID {
		d.Claims = []string{"sub"}
	}
	return d, status, nil
}

// deleteScope removes a scope no client may ask for any more.
func (a *API) deleteScope(w http.ResponseWriter, r *http.Request) error {
	name := r.PathValue("name")
	if scope.Protocol(name) {
		return badRequest(name + " is defined by the protocol and cannot be deleted")
	}
	clients, err := a.Store.ListClients(r.Context())
	if err != nil {
		return err
	}
	var users []string
	for _, c := range clients {
		if slices.Contains(c.Scopes, name) {
			users = append(users, c.ID)
		}
	}
	if len(users) > 0 {
		return &apiError{http.StatusConflict, "conflict", "clients may still ask for " + name + ": " + strings.Join(users, ", ")}
	}
	if err := a.Store.DeleteScope(r.Context(), name); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.ScopeDeleted, Detail: "scope=" + name})
	return noContent(w, scope.Load(r.Context(), a.Store, a.Scopes))
}

// ---- keys

// Key is a signing key's public description.
type Key struct {
	KID       string     `json:"kid"`
	Algorithm string     `json:"alg"`
	Active    bool       `json:"active"`
	CreatedAt time.Time  `json:"created_at"`
	RetiredAt *time.Time `json:"retired_at,omitempty"`
}

func (a *API) listKeys(w http.ResponseWriter, r *http.Request) error {
	ks, err := a.Store.ListSigningKeys(r.Context())
	return listJSON(w, ks, err, func(k storage.SigningKey) Key {
		v := Key{KID: k.ID, Algorithm: k.Algorithm, Active: k.RetiredAt.IsZero(), CreatedAt: k.CreatedAt}
		if !k.RetiredAt.IsZero() {
			v.RetiredAt = &k.RetiredAt
		}
		return v
	})
}

func (a *API) rotateKeys(w http.ResponseWriter, r *http.Request) error {
	kid, err := a.Keys.Rotate(r.Context())
	if err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.KeysRotated, Detail: "kid=" + kid})
	return writeJSON(w, http.StatusOK, map[string]string{"kid": kid})
}

// ---- audit

// Event is an audit event.
type Event struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	UserID   string    `json:"user_id,omitempty"`
	ClientID string    `json:"client_id,omitempty"`
	IP       string    `json:"ip,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

func (a *API) listAudit(w http.ResponseWriter, r *http.Request) error {
	q := r.URL.Query()
	f := storage.AuditFilter{UserID: q.Get("user"), ClientID: q.Get("client"), Type: q.Get("type"), Upstream: q.Get("upstream")}
	if f.Upstream != "" && !upstream.ValidID(f.Upstream) {
		return badRequest("upstream must be an upstream id: lowercase letters, digits and '-'")
	}
	for name, dst := range map[string]*time.Time{"since": &f.Since, "until": &f.Until} {
		if v := q.Get(name); v != "" {
			t, err := time.Parse(time.RFC3339, v)
			if err != nil {
				return badRequest(name + " must be an RFC 3339 time such as 2026-01-02T15:04:05Z")
			}
			*dst = t
		}
	}
	if v := q.Get("limit"); v != "" {
		n, err := strconv.Atoi(v)
		if err != nil || n < 1 || n > 1000 {
			return badRequest("limit must be a number from 1 to 1000")
		}
		f.Limit = n
	}
	evs, err := a.Store.ListAuditEvents(r.Context(), f)
	return listJSON(w, evs, err, func(e storage.AuditEvent) Event { return Event{e.Time, e.Type, e.UserID, e.ClientID, e.IP, e.Detail} })
}

// ---- export and import

// BackupVersion is the version of the backups this server writes; it
// reads those of versions 1 (without second factors), 2 (without
// upstreams and upstream links) and 3 (without the initial access tokens
// of dynamic registration) too. A server that reads only up to 3 refuses
// a backup of version 4 rather than drop its tokens unsaid.
const BackupVersion = 4

// Backup is every user and client, with their hashes, the upstreams
// added through the API and the initial access tokens of dynamic
// registration, for backups and migrations between stores. It holds
// password hashes, recovery code hashes, sealed TOTP secrets, sealed
// upstream client secrets and token hashes: keep it as secret as the
// database.
type Backup struct {
	Version            int                       `json:"version"`
	Users              []BackupUser              `json:"users"`
	Clients            []BackupClient            `json:"clients"`
	Upstreams          []BackupUpstream          `json:"upstreams,omitempty"`
	RegistrationTokens []BackupRegistrationToken `json:"registration_tokens,omitempty"`
}

// BackupUser is a user with its password hash, second factors and
// upstream links.
type BackupUser struct {
	User
	PasswordHash string         `json:"password_hash"`
	Factors      *BackupFactors `json:"factors,omitempty"`
	Links        []BackupLink   `json:"upstream_links,omitempty"`
}

// BackupClient is a client with its secret's hash.
type BackupClient struct {
	Client
	SecretHash string `json:"secret_hash,omitempty"`
}

// Imported counts what an import added and what it left alone because it
// existed already.
type Imported struct {
	UsersAdded     int `json:"users_added"`
	UsersSkipped   int `json:"users_skipped"`
	ClientsAdded   int `json:"clients_added"`
	ClientsSkipped int `json:"clients_skipped"`
	// TOTPSkipped counts TOTP secrets of added users that this store's
	// factor-seal key does not open (BackupFactors); PasskeysSkipped,
	// passkeys whose credential id another user has.
	TOTPSkipped     int `json:"totp_skipped"`
	PasskeysSkipped int `json:"passkeys_skipped"`
	// UpstreamsAdded and UpstreamsSkipped count the stored upstreams added
	// and those left alone (their id exists, stored or configured);
	// UpstreamSecretsSkipped, those added disabled and without their client
	// secret, which this store's upstream-secret-seal key does not open
	// (BackupUpstream). LinksAdded and LinksSkipped count the upstream
	// links of added users, and those whose identity is linked already.
	UpstreamsAdded         int `json:"upstreams_added"`
	UpstreamsSkipped       int `json:"upstreams_skipped"`
	UpstreamSecretsSkipped int `json:"upstream_secrets_skipped"`
	LinksAdded             int `json:"upstream_links_added"`
	LinksSkipped           int `json:"upstream_links_skipped"`
	// RegistrationTokensAdded and RegistrationTokensSkipped count the
	// initial access tokens added and those whose id or hash exists.
	RegistrationTokensAdded   int `json:"registration_tokens_added"`
	RegistrationTokensSkipped int `json:"registration_tokens_skipped"`
}

func (a *API) export(w http.ResponseWriter, r *http.Request) error {
	users, err := a.Store.ListUsers(r.Context())
	if err != nil {
		return err
	}
	clients, err := a.Store.ListClients(r.Context())
	if err != nil {
		return err
	}
	b := Backup{Version: BackupVersion, Users: []BackupUser{}, Clients: []BackupClient{}}
	if b.Upstreams, err = a.backupUpstreams(r.Context()); err != nil {
		return err
	}
	if b.RegistrationTokens, err = a.backupRegistrationTokens(r.Context()); err != nil {
		return err
	}
	for _, u := range users {
		f, err := a.backupFactors(r.Context(), u.ID)
		if err != nil {
			return err
		}
		links, err := a.backupLinks(r.Context(), u.ID)
		if err != nil {
			return err
		}
		b.Users = append(b.Users, BackupUser{userView(u), u.PasswordHash, f, links})
	}
	for _, c := range clients {
		b.Clients = append(b.Clients, BackupClient{clientView(c), c.SecretHash})
	}
	a.changed(r, audit.Event{Type: audit.DataExportedAll, Detail: strconv.Itoa(len(b.Users)) + " users, " + strconv.Itoa(len(b.Clients)) + " clients"})
	return writeJSON(w, http.StatusOK, b)
}

// importAll adds the users and clients of a backup, leaving alone those
// that exist already; it checks everything before writing anything.
func (a *API) importAll(w http.ResponseWriter, r *http.Request) error {
	var b Backup
	if err := readJSONLimit(r, &b, 64<<20); err != nil {
		return err
	}
	if b.Version < 1 || b.Version > BackupVersion {
		return badRequest("unknown backup version; this server reads versions 1 to 4")
	}
	if err := a.checkBackup(b); err != nil {
		return err
	}
	var out Imported
	sealer, err := factors.StoreSealer(r.Context(), a.Store)
	if err != nil {
		return err
	}
	if err := a.importUsers(r.Context(), sealer, b.Users, &out); err != nil {
		return err
	}
	if err := a.importClients(r.Context(), b.Clients, &out); err != nil {
		return err
	}
	if err := a.importUpstreams(r, b.Upstreams, &out); err != nil {
		return err
	}
	if err := a.importRegistrationTokens(r.Context(), b.RegistrationTokens, &out); err != nil {
		return err
	}
	a.changed(r, audit.Event{Type: audit.DataImported})
	return writeJSON(w, http.StatusOK, out)
}

// checkBackup checks every user, client, upstream and initial access
// token of a backup.
func (a *API) checkBackup(b Backup) error {
	for _, t := range b.RegistrationTokens {
		if err := t.check(); err != nil {
			return err
		}
	}
	for _, u := range b.Users {
		if err := u.check(); err != nil {
			return err
		}
	}
	for _, c := range b.Clients {
		if err := c.check(); err != nil {
			return err
		}
	}
	for _, u := range b.Upstreams {
		if err := u.check(a); err != nil {
			return err
		}
	}
	return nil
}

// check checks a user of a backup: an id, a username, an argon2id
// password hash (none for one who signs in through an upstream or with a
// passkey only) and a valid profile.
func (u BackupUser) check() error {
	noPassword := u.PasswordHash == "" && (len(u.Links) > 0 || u.Factors != nil && len(u.Factors.Passkeys) > 0)
	// A backup holds accounts that exist: a name the rules of new accounts
	// (storage.CheckUsername) would refuse today was allowed when it was
	// made, and a restore must not lose its account; only a name no
	// version accepted is refused.
	if u.Username == "" || strings.ContainsAny(u.Username, " \t\r\n") || !utf8.ValidString(u.Username) {
		return badRequest("user " + strconv.Quote(u.Username) + ": a username may not be empty nor have spaces")
	}
	if u.ID == "" || !strings.HasPrefix(u.PasswordHash, "$argon2id$") && !noPassword {
		return badRequest("user " + u.Username + ": id, username and an argon2id password_hash are required (the hash may be empty for a user with an upstream link or a passkey)")
	}
	su := storage.User{Name: u.Name, Email: u.Email, Picture: u.Picture, Profile: u.Profile.Profile(time.Time{})}
	if err := admin.CheckProfile(&su); err != nil {
		return badRequest("user " + u.Username + ": " + err.Error())
	}
	if err := checkLinks(u.Username, u.Links); err != nil {
		return err
	}
	return u.Factors.check(u.Username)
}

// check checks a client of a backup with the rules of registration that
// a stored client must still meet: a secret hash exactly when it
// authenticates with a secret, no token exchange for a public client (RFC
// 8693 §5), registrable redirect URIs, a supported ID token algorithm and
// PKCE policy (RFC 9700 §2.1.1).
func (c BackupClient) check() error {
	if c.ID == "" || !c.secretMatchesMethod() {
		return badRequest("client " + c.ID + ": client_id is required, and a secret_hash (SHA-256, hex) exactly when the client authenticates with a secret")
	}
	if c.Public && slices.Contains(c.GrantTypes, granttype.TokenExchange) {
		return badRequest("client " + c.ID + ": a public client cannot use token exchange")
	}
	for _, u := range c.RedirectURIs {
		if !redirecturi.Valid(u) {
			return badRequest("client " + c.ID + ": redirect URI " + u + " is not allowed")
		}
	}
	if c.IDTokenAlg != "" && !jwks.Supported(c.IDTokenAlg) {
		return badRequest("client " + c.ID + ": id_token_signed_response_alg must be RS256, PS256 or ES256")
	}
	if p := c.PKCEPolicy; p != "" && p != "required" && (p != storage.PKCENonceInstead || c.Public) {
		return badRequest("client " + c.ID + ": pkce_policy must be required, or nonce_instead for a confidential client")
	}
	return nil
}

// secretMatchesMethod reports whether the client has a secret hash
// (SHA-256, 64 hex digits) exactly when it authenticates with a secret:
// neither a public client nor a private_key_jwt one has one.
func (c BackupClient) secretMatchesMethod() bool {
	keyed := c.AuthMethod == "private_key_jwt"
	return (!c.Public && !keyed) == (c.SecretHash != "") && (c.SecretHash == "" || len(c.SecretHash) == 64)
}

// importUsers stores the users of a backup, counting in out those added
// and those that existed already.
func (a *API) importUsers(ctx context.Context, sealer *factors.Sealer, users []BackupUser, out *Imported) error {
	for _, u := range users {
		err := a.Store.CreateUser(ctx, storage.User{ID: u.ID, Username: u.Username, PasswordHash: u.PasswordHash, Name: u.Name,
			Email: u.Email, EmailVerified: u.EmailVerified, Picture: u.Picture, CreatedAt: u.CreatedAt, Profile: u.Profile.Profile(u.UpdatedAt),
			Disabled: u.Disabled, Admin: u.Admin})
		switch {
		case errors.Is(err, storage.ErrAlreadyExists):
			out.UsersSkipped++
		case err != nil:
			return err
		default:
			out.UsersAdded++
			if err := a.importFactors(ctx, sealer, u.ID, u.Factors, out); err != nil {
				return err
			}
			if err := a.importLinks(ctx, u.ID, u.Links, out); err != nil {
				return err
			}
		}
	}
	return nil
}

// importClients stores the clients of a backup, counting in out those
// added and those that existed already.
func (a *API) importClients(ctx context.Context, clients []BackupClient, out *Imported) error {
	for _, c := range clients {
		err := a.Store.CreateClient(ctx, storage.Client{ID: c.ID, Name: c.Name, SecretHash: c.SecretHash, Public: c.Public,
			RedirectURIs: c.RedirectURIs, GrantTypes: c.GrantTypes, Scopes: c.Scopes, RequirePAR: c.RequirePAR, AuthMethod: storedMethod(c.AuthMethod),
			JWKS: string(c.JWKS), JWKSURI: c.JWKSURI, BackchannelLogoutURI: c.Backchannel, Pairwise: c.SubjectType == "pairwise",
			SectorIdentifierURI: c.SectorIdentifierURI, IDTokenAlg: c.IDTokenAlg, PKCEPolicy: strings.TrimPrefix(c.PKCEPolicy, "required"),
			ClientInfo: c.info(), Verified: c.Verified, SecondFactor: c.SecondFactor, DPoPBound: c.DPoPBound, CreatedAt: c.CreatedAt})
		switch {
		case errors.Is(err, storage.ErrAlreadyExists):
			out.ClientsSkipped++
		case err != nil:
			return err
		default:
			out.ClientsAdded++
		}
	}
	return nil
}

// storedMethod is the stored form of an auth method: private_key_jwt,
// client_secret_jwt, or empty (the other secret methods and none follow
// from the client's type).
func storedMethod(m string) string {
	if m == "private_key_jwt" || m == "client_secret_jwt" {
		return m
	}
	return ""
}
