// Package oidc serves OpenID Connect Discovery 1.0 and RFC 8414 metadata,
// and the UserInfo endpoint (OpenID Connect Core §5.3).
package oidc

import (
	"encoding/json"
	"errors"
	"log/slog"
	"maps"
	"mime"
	"net/http"
	"slices"
	"strings"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// Metadata is the authorization server metadata (RFC 8414 §2, OpenID
// Connect Discovery §3).
type Metadata struct {
	Issuer                                     string   `json:"issuer"`
	AuthorizationEndpoint                      string   `json:"authorization_endpoint"`
	TokenEndpoint                              string   `json:"token_endpoint"`
	UserinfoEndpoint                           string   `json:"userinfo_endpoint"`
	JWKSURI                                    string   `json:"jwks_uri"`
	RevocationEndpoint                         string   `json:"revocation_endpoint"`
	IntrospectionEndpoint                      string   `json:"introspection_endpoint"`
	DeviceAuthorizationEndpoint                string   `json:"device_authorization_endpoint,omitempty"`
	PushedAuthorizationRequestEndpoint         string   `json:"pushed_authorization_request_endpoint,omitempty"`
	RequirePushedAuthorizationRequests         bool     `json:"require_pushed_authorization_requests"`
	EndSessionEndpoint                         string   `json:"end_session_endpoint,omitempty"`
	RegistrationEndpoint                       string   `json:"registration_endpoint,omitempty"`
	ScopesSupported                            []string `json:"scopes_supported"`
	ResponseTypesSupported                     []string `json:"response_types_supported"`
	ResponseModesSupported                     []string `json:"response_modes_supported"`
	GrantTypesSupported                        []string `json:"grant_types_supported"`
	SubjectTypesSupported                      []string `json:"subject_types_supported"`
	IDTokenSigningAlgValuesSupported           []string `json:"id_token_signing_alg_values_supported"`
	TokenEndpointAuthMethodsSupported          []string `json:"token_endpoint_auth_methods_supported"`
	TokenEndpointAuthSigningAlgValuesSupported []string `json:"token_endpoint_auth_signing_alg_values_supported"`
	RevocationEndpointAuthMethodsSupported     []string `json:"revocation_endpoint_auth_methods_supported"`
	IntrospectionEndpointAuthMethodsSupported  []string `json:"introspection_endpoint_auth_methods_supported"`
	CodeChallengeMethodsSupported              []string `json:"code_challenge_methods_supported"`
	ClaimsSupported                            []string `json:"claims_supported"`
	PromptValuesSupported                      []string `json:"prompt_values_supported"`
	AuthorizationResponseIssParameterSupported bool     `json:"authorization_response_iss_parameter_supported"`
	RequestParameterSupported                  bool     `json:"request_parameter_supported"`
	RequestObjectSigningAlgValuesSupported     []string `json:"request_object_signing_alg_values_supported"`
	DPoPSigningAlgValuesSupported              []string `json:"dpop_signing_alg_values_supported"`
	BackchannelLogoutSupported                 bool     `json:"backchannel_logout_supported"`
	ClaimsParameterSupported                   bool     `json:"claims_parameter_supported"`
	ACRValuesSupported                         []string `json:"acr_values_supported"`
	BackchannelLogoutSessionSupported          bool     `json:"backchannel_logout_session_supported"`
	RequestURIParameterSupported               bool     `json:"request_uri_parameter_supported"`
	UILocalesSupported                         []string `json:"ui_locales_supported"`
}

// Provider serves discovery and userinfo.
type Provider struct {
	Issuer     *token.Issuer
	Store      storage.Storage
	GrantTypes []string
	UILocales  []string
	Log        *slog.Logger
	// Registration tells whether dynamic client registration is on.
	Registration bool
	// DPoP checks the proofs that come with DPoP-bound tokens.
	DPoP *dpop.Checker
}

// Metadata returns the server's metadata document.
func (p *Provider) Metadata() Metadata {
	iss := p.Issuer.URL
	claims := []string{"sub", "iss", "aud", "exp", "iat", "auth_time", "nonce", "at_hash", "azp", "amr", "acr"}
	for _, n := range p.Issuer.Scopes.Names() {
		s, _ := p.Issuer.Scopes.Get(n)
		for _, c := range s.Claims {
			if c != "sub" {
				claims = append(claims, c)
			}
		}
	}
	m := Metadata{
		Issuer: iss, AuthorizationEndpoint: iss + "/authorize", TokenEndpoint: iss + "/token", UserinfoEndpoint: iss + "/userinfo",
		JWKSURI: iss + "/jwks.json", RevocationEndpoint: iss + "/revoke", IntrospectionEndpoint: iss + "/introspect",
		DeviceAuthorizationEndpoint: iss + "/device_authorization", PushedAuthorizationRequestEndpoint: iss + "/par", EndSessionEndpoint: iss + "/end_session",
		ScopesSupported: p.Issuer.Scopes.Names(), ResponseTypesSupported: []string{"code"}, ResponseModesSupported: []string{"query"},
		GrantTypesSupported: p.GrantTypes, SubjectTypesSupported: []string{"public", "pairwise"},
		// Every alg a client may register as id_token_signed_response_alg;
		// RS256 first (Discovery §3: it MUST be included). Userinfo is
		// answered as plain JSON only, so userinfo_signing_alg_values_supported
		// is absent.
		IDTokenSigningAlgValuesSupported:           algNames(jwks.Algorithms),
		TokenEndpointAuthMethodsSupported:          clientauth.Methods,
		TokenEndpointAuthSigningAlgValuesSupported: append(algNames(clientauth.AssertionAlgorithms), algNames(clientauth.SecretAlgorithms)...),
		RevocationEndpointAuthMethodsSupported:     clientauth.Methods,
		IntrospectionEndpointAuthMethodsSupported:  clientauth.Methods,
		CodeChallengeMethodsSupported:              []string{token.PKCEMethodS256},
		ClaimsSupported:                            claims,
		PromptValuesSupported:                      []string{"none", "login", "consent", "select_account"},
		AuthorizationResponseIssParameterSupported: true,
		RequestParameterSupported:                  true,
		RequestObjectSigningAlgValuesSupported:     algNames(clientauth.AssertionAlgorithms),
		DPoPSigningAlgValuesSupported:              algNames(dpop.Algorithms),
		BackchannelLogoutSupported:                 true,
		ClaimsParameterSupported:                   true,
		ACRValuesSupported:                         []string{token.ACR, token.ACRMFA},
		UILocalesSupported:                         p.UILocales,
	}
	if p.Registration {
		m.RegistrationEndpoint = iss + "/register"
	}
	return m
}

// Register adds the discovery documents and userinfo to mux.
func (p *Provider) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /.well-known/openid-configuration", p.discovery)
	mux.HandleFunc("GET /.well-known/oauth-authorization-server", p.discovery)
	mux.HandleFunc("GET /userinfo", p.userinfo)
	mux.HandleFunc("POST /userinfo", p.userinfo)
}

func (p *Provider) discovery(w http.ResponseWriter, r *http.Request) {
	w.Header().Set("Content-Type", "application/json")
	w.Header().Set("Cache-Control", "public, max-age=300")
	w.Header().Set("Access-Control-Allow-Origin", "*")
	_ = json.NewEncoder(w).Encode(p.Metadata())
}

func (p *Provider) userinfo(w http.ResponseWriter, r *http.Request) {
	ctx := r.Context()
	raw, dpopScheme, err := accessToken(r)
	writeErr := func(err error) {
		if oautherr.Code(err) == oautherr.ServerError {
			p.Log.ErrorContext(ctx, "userinfo failed", "err", err)
		}
		p.DPoP.WriteError(w, err, dpopScheme, p.Issuer.URL, "")
	}
	if err != nil {
		writeErr(err)
		return
	}
	c, err := p.Issuer.ValidateAccess(ctx, raw)
	if err != nil {
		writeErr(err)
		return
	}
	jkt := ""
	if c.Cnf != nil {
		jkt = c.Cnf.JKT
	}
	if err := p.DPoP.Bound(ctx, r, p.Issuer.URL+"/userinfo", raw, jkt, dpopScheme); err != nil {
		writeErr(err)
		return
	}
	scopes := strings.Fields(c.Scope)
	if !slices.Contains(scopes, scope.OpenID) || c.Subject == c.ClientID && c.GrantID == "" {
		p.DPoP.WriteError(w, oautherr.New(oautherr.InsufficientScope, "the access token was not granted the openid scope"), dpopScheme, p.Issuer.URL, scope.OpenID)
		return
	}
	u := c.User   // the grant's user, as ValidateAccess read it: a pairwise sub does not name it
	if u == nil { // a token of no grant names no user
		writeErr(oautherr.New(oautherr.InvalidToken, "the user of this token no longer exists"))
		return
	}
	if dpopScheme {
		p.DPoP.SetNonce(w) // the next proof's nonce (RFC 9449 §9)
	}
	claims := token.UserClaims(p.Issuer.Scopes, u, scopes)
	maps.Copy(claims, token.ClaimValues(u, c.Released.UserInfo)) // OpenID Connect Core §5.5
	claims["sub"] = c.Subject
	p.Issuer.Used(ctx, u.ID, c.ClientID)
	oautherr.WriteJSON(w, claims)
}

// accessToken reads the access token of a userinfo request: from the
// Authorization header (RFC 6750 §2.1, RFC 9449 §7.1) or, for a POST, from
// the access_token member of a form body (RFC 6750 §2.2). A request that
// uses both methods is refused, as RFC 6750 §2 and §3.1 require; the
// query string (§2.3) is never read.
func accessToken(r *http.Request) (tok string, dpopScheme bool, err error) {
	tok, dpopScheme, err = dpop.AccessToken(r)
	if r.Method != http.MethodPost {
		return tok, dpopScheme, err
	}
	mt, _, _ := mime.ParseMediaType(r.Header.Get("Content-Type"))
	if mt != "application/x-www-form-urlencoded" {
		return tok, dpopScheme, err
	}
	r.Body = http.MaxBytesReader(nil, r.Body, token.MaxFormBytes)
	if perr := r.ParseForm(); perr != nil {
		return "", false, oautherr.New(oautherr.InvalidRequest, "the request body is not a valid form")
	}
	form, ok := r.PostForm["access_token"]
	switch {
	case !ok:
		return tok, dpopScheme, err
	case len(form) != 1 || form[0] == "":
		return "", false, oautherr.New(oautherr.InvalidRequest, "access_token must appear once in the form body")
	case !errors.Is(err, oautherr.ErrMissingToken):
		return "", false, oautherr.New(oautherr.InvalidRequest, "send the access token in the Authorization header or in the form body, not both (RFC 6750 section 2)")
	}
	return form[0], false, nil
}

func algNames(algs []jose.SignatureAlgorithm) []string {
	out := make([]string, len(algs))
	for i, a := range algs {
		out[i] = string(a)
	}
	return out
}
