package authorize

import (
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// TestValidateConcerns pins each concern of request validation on its own:
// the error code and description of every branch, and what passes.
func TestValidateConcerns(t *testing.T) {
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM"
	const jkt = "0ZcOCORZNYy-DWpqq30jZyJGHTN0d2HglBV3uiguA4I"
	web := &storage.Client{ID: "web", GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.example/cb"},
		Scopes: []string{"openid", "profile"}}
	strict := &storage.Client{ID: "strict", GrantTypes: []string{"authorization_code"}, RequirePAR: true}
	service := &storage.Client{ID: "svc", GrantTypes: []string{"client_credentials"}}
	nonceInstead := &storage.Client{ID: "conf", GrantTypes: []string{"authorization_code"}, PKCEPolicy: storage.PKCENonceInstead}
	h := &Handler{Scopes: scope.Default(), Audiences: []string{"https://api.example"}}
	scopes := func(c *storage.Client, raw string) func() *oautherr.Error {
		return func() *oautherr.Error { _, e := h.checkScopes(c, raw); return e }
	}
	maxAge := func(s string) func() *oautherr.Error {
		return func() *oautherr.Error { _, e := parseMaxAge(s); return e }
	}
	tests := []struct {
		name     string
		check    func() *oautherr.Error
		wantCode string
		wantDesc string
	}{
		{"redirect_uri missing", func() *oautherr.Error { return checkRedirectURI(web, "") }, oautherr.InvalidRequest, "redirect_uri is missing"},
		{"redirect_uri not registered", func() *oautherr.Error { return checkRedirectURI(web, "https://app.example/cb2") }, oautherr.InvalidRequest, "does not exactly match"},
		{"redirect_uri registered", func() *oautherr.Error { return checkRedirectURI(web, "https://app.example/cb") }, "", ""},
		{"grant: code flow allowed", func() *oautherr.Error { return checkGrant(web, false) }, "", ""},
		{"grant: not allowed", func() *oautherr.Error { return checkGrant(service, false) }, oautherr.UnauthorizedClient, "not allowed the authorization code flow"},
		{"grant: must push", func() *oautherr.Error { return checkGrant(strict, false) }, oautherr.InvalidRequest, "must push"},
		{"grant: pushed", func() *oautherr.Error { return checkGrant(strict, true) }, "", ""},
		{"response_type code", func() *oautherr.Error { return checkResponseType("code", "") }, "", ""},
		{"response_type missing", func() *oautherr.Error { return checkResponseType("", "") }, oautherr.InvalidRequest, "response_type is missing"},
		{"response_type token", func() *oautherr.Error { return checkResponseType("token", "") }, oautherr.UnsupportedResponseType, "only response_type=code"},
		{"response_type hybrid", func() *oautherr.Error { return checkResponseType("code id_token", "") }, oautherr.UnsupportedResponseType, "only response_type=code"},
		{"response_mode query", func() *oautherr.Error { return checkResponseType("code", "query") }, "", ""},
		{"response_mode fragment", func() *oautherr.Error { return checkResponseType("code", "fragment") }, oautherr.InvalidRequest, "response_mode=query"},
		{"request left over", func() *oautherr.Error { return checkLeftovers(url.Values{"request": {"x"}}) }, oautherr.InvalidRequest, "left over"},
		{"request_uri not pushed", func() *oautherr.Error { return checkLeftovers(url.Values{"request_uri": {"x"}}) }, oautherr.RequestURINotSupported, "pushed to /par"},
		{"no leftovers", func() *oautherr.Error { return checkLeftovers(url.Values{"scope": {"openid"}}) }, "", ""},
		{"state missing", func() *oautherr.Error { return checkState("") }, oautherr.InvalidRequest, "state is required"},
		{"state present", func() *oautherr.Error { return checkState("xyz") }, "", ""},
		{"PKCE required", func() *oautherr.Error { return checkPKCEFirst(web, "", "") }, oautherr.InvalidRequest, "code_challenge is required"},
		{"PKCE plain", func() *oautherr.Error { return checkPKCEFirst(web, challenge, "plain") }, oautherr.InvalidRequest, "plain is not allowed"},
		{"PKCE S256", func() *oautherr.Error { return checkPKCEFirst(web, challenge, token.PKCEMethodS256) }, "", ""},
		{"PKCE left to the nonce policy", func() *oautherr.Error { return checkPKCEFirst(nonceInstead, "", "") }, "", ""},
		{"PKCE sent under the nonce policy is checked", func() *oautherr.Error { return checkPKCEFirst(nonceInstead, "short", token.PKCEMethodS256) }, oautherr.InvalidRequest, "code_challenge must be"},
		{"acr_values absent", func() *oautherr.Error { return checkACRValues("") }, "", ""},
		{"acr_values mfa", func() *oautherr.Error { return checkACRValues("urn:bawwab:acr:mfa") }, "", ""},
		{"acr_values two, unknown one voluntary", func() *oautherr.Error { return checkACRValues("urn:other:gold  urn:bawwab:acr:mfa") }, "", ""},
		{"acr_values only spaces", func() *oautherr.Error { return checkACRValues("   ") }, oautherr.InvalidRequest, "from 1 to 10 values"},
		{"acr_values too many", func() *oautherr.Error { return checkACRValues(strings.Repeat("a ", 11)) }, oautherr.InvalidRequest, "from 1 to 10 values"},
		{"acr_values quote", func() *oautherr.Error { return checkACRValues(`urn:x" error="x`) }, oautherr.InvalidRequest, "visible ASCII"},
		{"acr_values backslash", func() *oautherr.Error { return checkACRValues(`urn:x\`) }, oautherr.InvalidRequest, "visible ASCII"},
		{"acr_values non-ASCII", func() *oautherr.Error { return checkACRValues("urn:ذهب") }, oautherr.InvalidRequest, "visible ASCII"},
		{"acr_values control", func() *oautherr.Error { return checkACRValues("urn:x\x00") }, oautherr.InvalidRequest, "visible ASCII"},
		{"scope missing", scopes(web, ""), oautherr.InvalidScope, "scope is required"},
		{"scope unknown", scopes(web, "openid nosuch"), oautherr.InvalidScope, "unknown scope nosuch"},
		{"scope not the client's", scopes(web, "openid email"), oautherr.InvalidScope, "may not ask for scope email"},
		{"scope allowed", scopes(web, "openid profile"), "", ""},
		{"prompt values", func() *oautherr.Error { return checkPrompt("login consent select_account") }, "", ""},
		{"prompt unknown", func() *oautherr.Error { return checkPrompt("create") }, oautherr.InvalidRequest, "prompt may only contain"},
		{"prompt none alone", func() *oautherr.Error { return checkPrompt("none") }, "", ""},
		{"prompt none combined", func() *oautherr.Error { return checkPrompt("none login") }, oautherr.InvalidRequest, "cannot be combined"},
		{"claims absent", func() *oautherr.Error { return checkClaimsRequest("") }, "", ""},
		{"claims not JSON", func() *oautherr.Error { return checkClaimsRequest("{") }, oautherr.InvalidRequest, "JSON object"},
		{"claims other member", func() *oautherr.Error { return checkClaimsRequest(`{"access_token":{}}`) }, oautherr.InvalidRequest, "userinfo and id_token"},
		{"claims essential acr unmet", func() *oautherr.Error {
			return checkClaimsRequest(`{"id_token":{"acr":{"essential":true,"value":"urn:other"}}}`)
		}, oautherr.AccessDenied, "cannot be met"},
		{"claims essential acr met", func() *oautherr.Error {
			return checkClaimsRequest(`{"id_token":{"acr":{"essential":true,"values":["urn:other","` + token.ACR + `"]}}}`)
		}, "", ""},
		{"dpop_jkt absent", func() *oautherr.Error { return checkDPoPJKT("") }, "", ""},
		{"dpop_jkt thumbprint", func() *oautherr.Error { return checkDPoPJKT(jkt) }, "", ""},
		{"dpop_jkt short", func() *oautherr.Error { return checkDPoPJKT("abc") }, oautherr.InvalidRequest, "dpop_jkt must be"},
		{"dpop_jkt not base64url", func() *oautherr.Error { return checkDPoPJKT(strings.Repeat("+", 43)) }, oautherr.InvalidRequest, "dpop_jkt must be"},
		{"resource known", func() *oautherr.Error { return h.checkResources([]string{"https://api.example"}) }, "", ""},
		{"resource unknown", func() *oautherr.Error {
			return h.checkResources([]string{"https://api.example", "https://evil.example"})
		}, oautherr.InvalidTarget, "unknown resource"},
		{"max_age absent", maxAge(""), "", ""},
		{"max_age zero", maxAge("0"), "", ""},
		{"max_age negative", maxAge("-1"), oautherr.InvalidRequest, "max_age must be"},
		{"max_age not a number", maxAge("1h"), oautherr.InvalidRequest, "max_age must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := tt.check()
			if tt.wantCode == "" {
				if e != nil {
					t.Fatalf("got %s: %s, want no error", e.Code, e.Description)
				}
				return
			}
			if e == nil || e.Code != tt.wantCode || !strings.Contains(e.Description, tt.wantDesc) {
				t.Fatalf("got %v, want %s mentioning %q", e, tt.wantCode, tt.wantDesc)
			}
		})
	}
}

func TestParseMaxAge(t *testing.T) {
	for in, want := range map[string]int{"": -1, "0": 0, "3600": 3600} {
		if got, e := parseMaxAge(in); e != nil || got != want {
			t.Errorf("parseMaxAge(%q) = %d, %v; want %d", in, got, e, want)
		}
	}
}
