package admin

import (
	"errors"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestCheckGrants: the grant type rules, one row per branch; a public
// client may not use a grant that needs client authentication.
func TestCheckGrants(t *testing.T) {
	cb := []string{"https://a.example/cb"}
	for _, tt := range []struct {
		name    string
		spec    ClientSpec
		wantErr string
	}{
		{"code with redirect", ClientSpec{GrantTypes: []string{"authorization_code", "refresh_token"}, RedirectURIs: cb}, ""},
		{"unknown grant", ClientSpec{GrantTypes: []string{"password"}}, `grant type "password" is not supported`},
		{"implicit", ClientSpec{GrantTypes: []string{"implicit"}, RedirectURIs: cb}, `grant type "implicit" is not supported`},
		{"public client_credentials", ClientSpec{Public: true, GrantTypes: []string{"client_credentials"}}, "a public client cannot use client_credentials"},
		{"public token exchange", ClientSpec{Public: true, GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}}, "a public client cannot use token exchange"},
		{"confidential token exchange", ClientSpec{GrantTypes: []string{"urn:ietf:params:oauth:grant-type:token-exchange"}}, ""},
		{"public device", ClientSpec{Public: true, GrantTypes: []string{"urn:ietf:params:oauth:grant-type:device_code"}}, ""},
		{"code without redirect", ClientSpec{GrantTypes: []string{"authorization_code"}}, "needs at least one redirect URI"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantRuleErr(t, checkGrants(tt.spec), tt.wantErr)
		})
	}
}

// TestCheckAuthMethod: the token endpoint auth method and its keys; the
// secret-based methods are stored as "" except client_secret_jwt.
func TestCheckAuthMethod(t *testing.T) {
	const jwks = `{"keys":[]}`
	for _, tt := range []struct {
		name       string
		spec       ClientSpec
		wantMethod string
		wantErr    string
	}{
		{"basic", ClientSpec{AuthMethod: "client_secret_basic"}, "", ""},
		{"post", ClientSpec{AuthMethod: "client_secret_post"}, "", ""},
		{"none", ClientSpec{AuthMethod: "none", Public: true}, "", ""},
		{"secret jwt", ClientSpec{AuthMethod: "client_secret_jwt"}, "client_secret_jwt", ""},
		{"public secret jwt", ClientSpec{AuthMethod: "client_secret_jwt", Public: true}, "", "client_secret_jwt clients are confidential"},
		{"secret with keys", ClientSpec{AuthMethod: "client_secret_basic", JWKS: jwks}, "", "jwks and jwks_uri belong to private_key_jwt clients"},
		{"public private key", ClientSpec{AuthMethod: "private_key_jwt", Public: true, JWKS: jwks}, "", "a public client has no keys"},
		{"private key without keys", ClientSpec{AuthMethod: "private_key_jwt"}, "", "needs exactly one of jwks and jwks_uri"},
		{"private key with both", ClientSpec{AuthMethod: "private_key_jwt", JWKS: jwks, JWKSURI: "https://a.example/jwks"}, "", "needs exactly one of jwks and jwks_uri"},
		{"private key bad jwks", ClientSpec{AuthMethod: "private_key_jwt", JWKS: "{"}, "", "jwks: "},
		{"unknown", ClientSpec{AuthMethod: "tls_client_auth"}, "", `auth method "tls_client_auth" is not supported`},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := withDefaults(tt.spec)
			wantRuleErr(t, checkAuthMethod(&spec), tt.wantErr)
			if tt.wantErr == "" && spec.AuthMethod != tt.wantMethod {
				t.Fatalf("auth method stored as %q, want %q", spec.AuthMethod, tt.wantMethod)
			}
		})
	}
}

// TestCheckPKCEPolicy: only a confidential client may send a nonce
// instead of PKCE (RFC 9700 §2.1.1).
func TestCheckPKCEPolicy(t *testing.T) {
	for _, tt := range []struct {
		name       string
		spec       ClientSpec
		wantPolicy string
		wantErr    string
	}{
		{"short name", ClientSpec{PKCEPolicy: "required"}, storage.PKCERequired, ""},
		{"required", ClientSpec{PKCEPolicy: storage.PKCERequired, Public: true}, storage.PKCERequired, ""},
		{"nonce instead", ClientSpec{PKCEPolicy: storage.PKCENonceInstead}, storage.PKCENonceInstead, ""},
		{"public nonce instead", ClientSpec{PKCEPolicy: storage.PKCENonceInstead, Public: true}, "", "a public client always uses PKCE"},
		{"empty is required", ClientSpec{}, storage.PKCERequired, ""},
		{"unknown", ClientSpec{PKCEPolicy: "plain"}, "", "pkce_policy must be required or nonce_instead"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			spec := tt.spec
			wantRuleErr(t, checkPKCEPolicy(&spec), tt.wantErr)
			if tt.wantErr == "" && spec.PKCEPolicy != tt.wantPolicy {
				t.Fatalf("policy %q, want %q", spec.PKCEPolicy, tt.wantPolicy)
			}
		})
	}
}

// TestCheckInfoURLs: what is shown to people must be https (or loopback
// http) without credentials.
func TestCheckInfoURLs(t *testing.T) {
	for _, tt := range []struct {
		name    string
		info    storage.ClientInfo
		wantErr string
	}{
		{"none", storage.ClientInfo{}, ""},
		{"https", storage.ClientInfo{ClientURI: "https://a.example", LogoURI: "https://a.example/logo.png"}, ""},
		{"loopback http", storage.ClientInfo{PolicyURI: "http://127.0.0.1:8080/policy"}, ""},
		{"javascript", storage.ClientInfo{LogoURI: "javascript:alert(1)"}, "logo_uri must be an https URL"},
		{"credentials", storage.ClientInfo{TOSURI: "https://u:p@a.example/tos"}, "tos_uri must be an https URL"},
		{"plain http", storage.ClientInfo{ClientURI: "http://a.example"}, "client_uri must be an https URL"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantRuleErr(t, checkInfoURLs(tt.info), tt.wantErr)
		})
	}
}

// wantRuleErr checks that a rule returned an *InvalidError containing
// want, or nil when want is empty.
func wantRuleErr(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	var inv *InvalidError
	if !errors.As(err, &inv) || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want an InvalidError containing %q", err, want)
	}
}
