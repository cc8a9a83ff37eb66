package registration

import (
	"errors"
	"slices"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
)

// TestSpec pins every rule a self-registering client's metadata meets
// (RFC 7591 §2, §3.2.2), one row per branch, and the defaults it fills in.
func TestSpec(t *testing.T) {
	cb := []string{"https://a.example/cb"}
	for _, tt := range []struct {
		name         string
		m            Metadata
		nonce        bool
		wantCode     string
		wantDesc     string
		wantGrants   []string
		wantMethod   string
		wantScopes   []string
		wantPublic   bool
		wantPairwise bool
	}{
		{name: "defaults", m: Metadata{RedirectURIs: cb},
			wantGrants: []string{"authorization_code"}, wantMethod: "client_secret_basic", wantScopes: []string{"openid"}},
		{name: "public device client", m: Metadata{GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code"}, TokenEndpointAuthMethod: "none", Scope: "openid email"},
			wantGrants: []string{"urn:ietf:params:oauth:grant-type:device_code"}, wantMethod: "none", wantScopes: []string{"openid", "email"}, wantPublic: true},
		{name: "pairwise", m: Metadata{RedirectURIs: cb, SubjectType: "pairwise"},
			wantGrants: []string{"authorization_code"}, wantMethod: "client_secret_basic", wantScopes: []string{"openid"}, wantPairwise: true},
		{name: "client_credentials", m: Metadata{GrantTypes: []string{"client_credentials"}}, wantCode: InvalidClientMetadata, wantDesc: "grant type client_credentials cannot be registered"},
		{name: "token exchange", m: Metadata{GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}}, wantCode: InvalidClientMetadata, wantDesc: "cannot be registered"},
		{name: "implicit response", m: Metadata{RedirectURIs: cb, ResponseTypes: []string{"token"}}, wantCode: InvalidClientMetadata, wantDesc: "only the code response type"},
		{name: "auth method", m: Metadata{RedirectURIs: cb, TokenEndpointAuthMethod: "tls_client_auth"}, wantCode: InvalidClientMetadata, wantDesc: "token_endpoint_auth_method must be"},
		{name: "fragment", m: Metadata{RedirectURIs: []string{"https://a.example/cb#x"}}, wantCode: InvalidRedirectURI, wantDesc: "is not allowed"},
		{name: "http elsewhere", m: Metadata{RedirectURIs: []string{"http://a.example/cb"}}, wantCode: InvalidRedirectURI, wantDesc: "is not allowed"},
		{name: "code without redirect", m: Metadata{}, wantCode: InvalidRedirectURI, wantDesc: "needs redirect_uris"},
		{name: "subject type", m: Metadata{RedirectURIs: cb, SubjectType: "global"}, wantCode: InvalidClientMetadata, wantDesc: "subject_type must be public or pairwise"},
		{name: "alg", m: Metadata{RedirectURIs: cb, IDTokenAlg: "none"}, wantCode: InvalidClientMetadata, wantDesc: "id_token_signed_response_alg must be"},
		{name: "nonce instead not allowed", m: Metadata{RedirectURIs: cb, PKCEPolicy: "nonce_instead"}, wantCode: InvalidClientMetadata, wantDesc: "nonce_instead is not allowed here"},
		{name: "nonce instead public", nonce: true, m: Metadata{RedirectURIs: cb, PKCEPolicy: "nonce_instead", TokenEndpointAuthMethod: "none"}, wantCode: InvalidClientMetadata, wantDesc: "a public client always uses PKCE"},
		{name: "nonce instead allowed", nonce: true, m: Metadata{RedirectURIs: cb, PKCEPolicy: "nonce_instead"},
			wantGrants: []string{"authorization_code"}, wantMethod: "client_secret_basic", wantScopes: []string{"openid"}},
		{name: "pkce policy", m: Metadata{RedirectURIs: cb, PKCEPolicy: "plain"}, wantCode: InvalidClientMetadata, wantDesc: "pkce_policy must be required or nonce_instead"},
		{name: "unknown scope", m: Metadata{RedirectURIs: cb, Scope: "openid admin"}, wantCode: InvalidClientMetadata, wantDesc: "unknown scope admin"},
		{name: "bad scope", m: Metadata{RedirectURIs: cb, Scope: "open\"id"}, wantCode: InvalidClientMetadata},
	} {
		t.Run(tt.name, func(t *testing.T) {
			e := &Endpoint{Scopes: scope.NewCatalog(scope.Scope{Name: "openid"}, scope.Scope{Name: "email"}), AllowNonceInstead: tt.nonce}
			m := tt.m
			spec, err := e.spec(&m)
			if tt.wantCode != "" {
				var oe *oautherr.Error
				if !errors.As(err, &oe) || oe.Code != tt.wantCode || !strings.Contains(oe.Description, tt.wantDesc) {
					t.Fatalf("error %v, want %s containing %q", err, tt.wantCode, tt.wantDesc)
				}
				return
			}
			if err != nil {
				t.Fatalf("unexpected error: %v", err)
			}
			if !slices.Equal(spec.GrantTypes, tt.wantGrants) || spec.AuthMethod != tt.wantMethod || !slices.Equal(spec.Scopes, tt.wantScopes) ||
				spec.Public != tt.wantPublic || spec.Pairwise != tt.wantPairwise {
				t.Fatalf("spec %+v", spec)
			}
		})
	}
}
