package authorize

import (
	"context"
	"encoding/json"
	"errors"
	"net/url"
	"slices"
	"strconv"
	"strings"

	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/redirecturi"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// Validation of an authorization request (RFC 6749 §4.1.1, OpenID Connect
// Core §3.1.2.1), one concern per function, in the order the errors are
// reported: first the client and its redirect URI, whose errors are shown
// and never redirected (RFC 6749 §4.1.2.1), then the rest, whose errors go
// back to the client.

// validate checks an authorization request. A plain *oautherr.Error means the
// client or redirect URI cannot be trusted: show it. A *redirectError may be
// sent to the client.
func (h *Handler) validate(ctx context.Context, v url.Values, pushed bool) (*storage.AuthRequest, *storage.Client, error) {
	client, err := h.checkClient(ctx, v.Get("client_id"))
	if err != nil {
		return nil, nil, err
	}
	redirectURI := v.Get("redirect_uri")
	if e := checkRedirectURI(client, redirectURI); e != nil {
		return nil, nil, e
	}
	scopes, maxAge, e := h.checkRest(client, v, pushed)
	if e != nil {
		return nil, client, &redirectError{err: e, redirectURI: redirectURI, state: v.Get("state")}
	}
	now := h.Now()
	return &storage.AuthRequest{
		ID: token.NewID(), ClientID: client.ID, RedirectURI: redirectURI, Scopes: scopes, State: v.Get("state"), Nonce: v.Get("nonce"),
		CodeChallenge: v.Get("code_challenge"), CodeChallengeMethod: v.Get("code_challenge_method"), Prompt: v.Get("prompt"), MaxAge: maxAge,
		DPoPJKT: v.Get("dpop_jkt"), Resources: v["resource"], UILocales: v.Get(ui.LocalesParam), Claims: v.Get("claims"),
		ACRValues: strings.Join(strings.Fields(v.Get("acr_values")), " "), CreatedAt: now, ExpiresAt: now.Add(h.RequestTTL),
	}, client, nil
}

// checkClient returns the client named by client_id (RFC 6749 §4.1.1).
func (h *Handler) checkClient(ctx context.Context, clientID string) (*storage.Client, error) {
	if clientID == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "client_id is missing")
	}
	client, err := h.Store.GetClient(ctx, clientID)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.New(oautherr.InvalidClient, "no client is registered with this client_id")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	return client, nil
}

// checkRedirectURI requires a redirect_uri that exactly matches one the
// client registered (RFC 9700 §2.1, §4.1.3).
func checkRedirectURI(client *storage.Client, redirectURI string) *oautherr.Error {
	if redirectURI == "" {
		return oautherr.New(oautherr.InvalidRequest, "redirect_uri is missing")
	}
	if !redirecturi.Match(client.RedirectURIs, redirectURI) {
		return oautherr.New(oautherr.InvalidRequest, "redirect_uri does not exactly match a URI registered for this client")
	}
	return nil
}

// checkRest checks what follows a trusted redirect URI, each concern in
// turn, and returns the scopes and max_age (-1 when absent).
func (h *Handler) checkRest(client *storage.Client, v url.Values, pushed bool) ([]string, int, *oautherr.Error) {
	challenge, method, nonce := v.Get("code_challenge"), v.Get("code_challenge_method"), v.Get("nonce")
	for _, check := range []func() *oautherr.Error{
		func() *oautherr.Error { return checkGrant(client, pushed) },
		func() *oautherr.Error { return checkResponseType(v.Get("response_type"), v.Get("response_mode")) },
		func() *oautherr.Error { return checkLeftovers(v) },
		func() *oautherr.Error { return checkState(v.Get("state")) },
		func() *oautherr.Error { return checkPKCEFirst(client, challenge, method) },
	} {
		if e := check(); e != nil {
			return nil, 0, e
		}
	}
	scopes, e := h.checkScopes(client, v.Get("scope"))
	if e != nil {
		return nil, 0, e
	}
	for _, check := range []func() *oautherr.Error{
		func() *oautherr.Error { return token.CheckChallenge(client, challenge, method, scopes, nonce) },
		func() *oautherr.Error { return checkPrompt(v.Get("prompt")) },
		func() *oautherr.Error { return checkClaimsRequest(v.Get("claims")) },
		func() *oautherr.Error { return checkACRValues(v.Get("acr_values")) },
		func() *oautherr.Error { return checkDPoPJKT(v.Get("dpop_jkt")) },
		func() *oautherr.Error { return h.checkResources(v["resource"]) },
	} {
		if e := check(); e != nil {
			return nil, 0, e
		}
	}
	maxAge, e := parseMaxAge(v.Get("max_age"))
	return scopes, maxAge, e
}

// checkGrant requires a client allowed the code flow, and a pushed request
// from a client that must push (RFC 9126 §6).
func checkGrant(client *storage.Client, pushed bool) *oautherr.Error {
	if !slices.Contains(client.GrantTypes, granttype.AuthorizationCode) {
		return oautherr.New(oautherr.UnauthorizedClient, "this client is not allowed the authorization code flow")
	}
	if client.RequirePAR && !pushed {
		return oautherr.New(oautherr.InvalidRequest, "this client must push its authorization requests to /par first (RFC 9126)")
	}
	return nil
}

// checkResponseType allows response_type=code in the query only (RFC 9700
// §2.1.2: no implicit or hybrid flow).
func checkResponseType(rt, rm string) *oautherr.Error {
	switch rt {
	case "code":
	case "":
		return oautherr.New(oautherr.InvalidRequest, "response_type is missing; use response_type=code")
	default:
		return oautherr.New(oautherr.UnsupportedResponseType, "only response_type=code is supported (the implicit and hybrid flows are unsafe, RFC 9700 section 2.1.2)")
	}
	if rm != "" && rm != "query" {
		return oautherr.New(oautherr.InvalidRequest, "only response_mode=query is supported")
	}
	return nil
}

// checkLeftovers refuses a request object or request_uri still among the
// parameters: both are resolved before validation (RFC 9101 §5, RFC 9126
// §4), so one left here was nested or came where it does not belong.
func checkLeftovers(v url.Values) *oautherr.Error {
	if v.Has("request") {
		return oautherr.New(oautherr.InvalidRequest, "request objects are read before validation; this one was left over")
	}
	if v.Has("request_uri") {
		return oautherr.New(oautherr.RequestURINotSupported, "request_uri is supported only for requests pushed to /par")
	}
	return nil
}

// checkState requires state, bawwab's CSRF defence for the client (RFC
// 6749 §10.12).
func checkState(state string) *oautherr.Error {
	if state == "" {
		return oautherr.New(oautherr.InvalidRequest, "state is required: it lets your client match the response to its request (RFC 6749 section 10.12)")
	}
	return nil
}

// checkPKCEFirst checks PKCE (RFC 7636 §4.3) before the scope, as always,
// unless the client's policy makes the outcome depend on the scope and
// nonce (token.CheckChallenge, run again after the scope).
func checkPKCEFirst(client *storage.Client, challenge, method string) *oautherr.Error {
	if challenge == "" && method == "" && client.PKCEPolicy == storage.PKCENonceInstead {
		return nil
	}
	return token.CheckChallenge(client, challenge, method, nil, "")
}

// checkScopes parses scope and requires known scopes the client may ask
// for (RFC 6749 §3.3).
func (h *Handler) checkScopes(client *storage.Client, raw string) ([]string, *oautherr.Error) {
	scopes, err := scope.Parse(raw)
	if err != nil {
		return nil, oautherr.New(oautherr.InvalidScope, err.Error())
	}
	if len(scopes) == 0 {
		return nil, oautherr.New(oautherr.InvalidScope, "scope is required")
	}
	for _, s := range scopes {
		if _, ok := h.Scopes.Get(s); !ok {
			return nil, oautherr.New(oautherr.InvalidScope, "unknown scope "+oautherr.Clip(s))
		}
		if !slices.Contains(client.Scopes, s) {
			return nil, oautherr.New(oautherr.InvalidScope, "this client may not ask for scope "+oautherr.Clip(s))
		}
	}
	return scopes, nil
}

// checkPrompt allows the prompt values of OpenID Connect Core §3.1.2.1,
// none alone.
func checkPrompt(prompt string) *oautherr.Error {
	for _, p := range strings.Fields(prompt) {
		switch p {
		case "none", "login", "consent", "select_account":
		default:
			return oautherr.New(oautherr.InvalidRequest, "prompt may only contain none, login, consent or select_account")
		}
	}
	if hasPrompt(prompt, "none") && len(strings.Fields(prompt)) > 1 {
		return oautherr.New(oautherr.InvalidRequest, "prompt=none cannot be combined with other values")
	}
	return nil
}

// maxACRValues bounds the values of acr_values.
const maxACRValues = 10

// checkACRValues requires acr_values, when present, to be a list of
// values separated by spaces (OpenID Connect Core §3.1.2.1), each a
// StringOrURI of visible ASCII without quotes or backslashes (they go
// back into WWW-Authenticate challenges, RFC 9470 §3). Values bawwab does
// not know are voluntary requests it may not meet: no error.
func checkACRValues(raw string) *oautherr.Error {
	if raw == "" {
		return nil
	}
	values := strings.Fields(raw)
	if len(values) == 0 || len(values) > maxACRValues {
		return oautherr.Newf(oautherr.InvalidRequest, "acr_values must hold from 1 to %d values separated by spaces", maxACRValues)
	}
	for _, a := range values {
		if strings.ContainsFunc(a, func(r rune) bool { return r < 0x21 || r > 0x7e || r == '"' || r == '\\' }) {
			return oautherr.New(oautherr.InvalidRequest, "acr_values may hold only visible ASCII characters other than quotes and backslashes")
		}
	}
	return nil
}

// checkDPoPJKT requires dpop_jkt, when present, to look like a JWK SHA-256
// thumbprint (RFC 9449 §10).
func checkDPoPJKT(jkt string) *oautherr.Error {
	if jkt != "" && (len(jkt) != 43 || strings.Trim(jkt, "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_") != "") {
		return oautherr.New(oautherr.InvalidRequest, "dpop_jkt must be the base64url SHA-256 thumbprint of a JWK (RFC 9449 section 10)")
	}
	return nil
}

// checkResources requires every resource to be an audience bawwab serves
// (RFC 8707 §2).
func (h *Handler) checkResources(resources []string) *oautherr.Error {
	for _, res := range resources {
		if !slices.Contains(h.Audiences, res) {
			return oautherr.New(oautherr.InvalidTarget, "unknown resource "+oautherr.Clip(res)+" (RFC 8707)")
		}
	}
	return nil
}

// parseMaxAge reads max_age (OpenID Connect Core §3.1.2.1): -1 when absent.
func parseMaxAge(s string) (int, *oautherr.Error) {
	if s == "" {
		return -1, nil
	}
	n, err := strconv.Atoi(s)
	if err != nil || n < 0 {
		return 0, oautherr.New(oautherr.InvalidRequest, "max_age must be a non-negative number of seconds")
	}
	return n, nil
}

// checkClaimsRequest validates the claims parameter (OpenID Connect Core
// §5.5). A user claim asked for on its own, that no requested scope
// releases but one of the client's scopes could, is a consent item of its
// own (token.ConsentItems) and, once allowed, is returned where it was
// asked for; an essential acr bawwab cannot meet is refused (§5.5.1.1),
// one it can is met at sign-in (package signin: a second factor for mfa).
func checkClaimsRequest(raw string) *oautherr.Error {
	if raw == "" {
		return nil
	}
	var req map[string]map[string]*struct {
		Essential bool     `json:"essential"`
		Value     string   `json:"value"`
		Values    []string `json:"values"`
	}
	if err := json.Unmarshal([]byte(raw), &req); err != nil {
		return oautherr.New(oautherr.InvalidRequest, "claims must be a JSON object of userinfo and id_token claim requests (OpenID Connect Core section 5.5)")
	}
	for target, claims := range req {
		if target != "userinfo" && target != "id_token" {
			return oautherr.New(oautherr.InvalidRequest, "claims may only have the members userinfo and id_token")
		}
		if acr := claims["acr"]; acr != nil && acr.Essential {
			wanted := append(slices.Clone(acr.Values), acr.Value)
			if !slices.Contains(wanted, token.ACR) && !slices.Contains(wanted, token.ACRMFA) {
				return oautherr.New(oautherr.AccessDenied, "the essential acr asked for cannot be met: bawwab signs users in with "+token.ACR+" or "+token.ACRMFA)
			}
		}
	}
	return nil
}
