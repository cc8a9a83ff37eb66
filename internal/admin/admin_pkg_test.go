package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
)

const jwksDoc = `{"keys":[{"kty":"EC","crv":"P-256","x":"f83OJ3D2xF1Bg8vub9tLe1gHMzV76e8Tus9uPHvRVEU","y":"x_FEzRu9m36HLN_tue659LNpXW6pCyStikYjKIWI5a0"}]}`

// TestBuildClient pins what a client registration may say: each row a
// spec and the refusal it gets (an *InvalidError naming the problem), or
// the client built from it.
func TestBuildClient(t *testing.T) {
	ctx := context.Background()
	sectorDoc := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/good":
			_, _ = w.Write([]byte(`["https://a.example/cb","https://b.example/cb"]`))
		case "/short":
			_, _ = w.Write([]byte(`["https://a.example/cb"]`))
		default:
			_, _ = w.Write([]byte(`{"not":"an array"}`))
		}
	}))
	defer sectorDoc.Close()
	loopback := outbound.New(outbound.Options{Allow: outbound.Allow{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}})
	web := func(mod func(*ClientSpec)) ClientSpec {
		s := ClientSpec{Name: "Notes", RedirectURIs: []string{"https://a.example/cb"}, Scopes: []string{"openid"}, Outbound: loopback}
		if mod != nil {
			mod(&s)
		}
		return s
	}
	tests := []struct {
		name    string
		spec    ClientSpec
		wantErr string // part of the refusal; "" to build
	}{
		{"defaults", web(nil), ""},
		{"unknown grant type", web(func(s *ClientSpec) { s.GrantTypes = []string{"password"} }), `grant type "password" is not supported`},
		{"implicit", web(func(s *ClientSpec) { s.GrantTypes = []string{"implicit"} }), "is not supported"},
		{"public client_credentials", web(func(s *ClientSpec) { s.Public, s.GrantTypes = true, []string{"client_credentials"} }), "public client cannot use client_credentials"},
		{"public token exchange", web(func(s *ClientSpec) { s.Public, s.GrantTypes = true, []string{token.TokenExchangeGrantType} }), "public client cannot use token exchange"},
		{"code flow without redirect URI", web(func(s *ClientSpec) { s.RedirectURIs = nil }), "needs at least one redirect URI"},
		{"client_credentials without redirect URI", web(func(s *ClientSpec) { s.RedirectURIs, s.GrantTypes = nil, []string{"client_credentials"} }), ""},
		{"http redirect URI", web(func(s *ClientSpec) { s.RedirectURIs = []string{"http://a.example/cb"} }), "is not allowed"},
		{"redirect URI with a fragment", web(func(s *ClientSpec) { s.RedirectURIs = []string{"https://a.example/cb#x"} }), "is not allowed"},
		{"loopback redirect URI", web(func(s *ClientSpec) { s.RedirectURIs = []string{"http://127.0.0.1/cb"} }), ""},
		{"unknown scope", web(func(s *ClientSpec) { s.Scopes = []string{"openid", "admin"} }), `unknown scope "admin"`},
		{"unknown auth method", web(func(s *ClientSpec) { s.AuthMethod = "tls_client_auth" }), "is not supported"},
		{"public client_secret_jwt", web(func(s *ClientSpec) { s.Public, s.AuthMethod = true, clientauth.MethodSecretJWT }), "are confidential"},
		{"jwks for a secret client", web(func(s *ClientSpec) { s.JWKS = jwksDoc }), "belong to private_key_jwt clients"},
		{"public private_key_jwt", web(func(s *ClientSpec) { s.Public, s.AuthMethod, s.JWKS = true, clientauth.MethodPrivateKeyJWT, jwksDoc }), "public client has no keys"},
		{"private_key_jwt without keys", web(func(s *ClientSpec) { s.AuthMethod = clientauth.MethodPrivateKeyJWT }), "exactly one of jwks and jwks_uri"},
		{"private_key_jwt with both", web(func(s *ClientSpec) {
			s.AuthMethod, s.JWKS, s.JWKSURI = clientauth.MethodPrivateKeyJWT, jwksDoc, "https://a.example/jwks"
		}), "exactly one of jwks and jwks_uri"},
		{"bad jwks", web(func(s *ClientSpec) { s.AuthMethod, s.JWKS = clientauth.MethodPrivateKeyJWT, `{"keys":[]}` }), "jwks: the JWK Set has no keys"},
		{"jwks_uri at an internal address", web(func(s *ClientSpec) {
			s.AuthMethod, s.JWKSURI, s.Outbound = clientauth.MethodPrivateKeyJWT, "https://10.0.0.1/jwks", outbound.New(outbound.Options{})
		}), "jwks_uri"},
		{"private_key_jwt", web(func(s *ClientSpec) { s.AuthMethod, s.JWKS = clientauth.MethodPrivateKeyJWT, jwksDoc }), ""},
		{"backchannel logout at an internal address", web(func(s *ClientSpec) {
			s.BackchannelLogoutURI, s.Outbound = "https://169.254.169.254/logout", outbound.New(outbound.Options{})
		}), "backchannel_logout_uri"},
		{"pairwise on two hosts", web(func(s *ClientSpec) {
			s.Pairwise, s.RedirectURIs = true, []string{"https://a.example/cb", "https://b.example/cb"}
		}), "must share one host"},
		{"pairwise on one host", web(func(s *ClientSpec) {
			s.Pairwise, s.RedirectURIs = true, []string{"https://a.example/cb", "https://a.example/cb2"}
		}), ""},
		{"sector document listing every redirect URI", web(func(s *ClientSpec) {
			s.Pairwise, s.RedirectURIs, s.SectorIdentifierURI = true, []string{"https://a.example/cb", "https://b.example/cb"}, sectorDoc.URL+"/good"
		}), ""},
		{"sector document missing one", web(func(s *ClientSpec) {
			s.Pairwise, s.RedirectURIs, s.SectorIdentifierURI = true, []string{"https://a.example/cb", "https://b.example/cb"}, sectorDoc.URL+"/short"
		}), "does not list the redirect URI"},
		{"sector document not an array", web(func(s *ClientSpec) { s.Pairwise, s.SectorIdentifierURI = true, sectorDoc.URL+"/object" }), "JSON array"},
		{"sector document at an internal address", web(func(s *ClientSpec) {
			s.Pairwise, s.SectorIdentifierURI, s.Outbound = true, sectorDoc.URL+"/good", outbound.New(outbound.Options{})
		}), "sector_identifier_uri"},
		{"HS256 ID tokens", web(func(s *ClientSpec) { s.IDTokenAlg = "HS256" }), "id_token_signed_response_alg"},
		{"ES256 ID tokens", web(func(s *ClientSpec) { s.IDTokenAlg = "ES256" }), ""},
		{"unknown PKCE policy", web(func(s *ClientSpec) { s.PKCEPolicy = "never" }), "pkce_policy"},
		{"public client without PKCE", web(func(s *ClientSpec) { s.Public, s.PKCEPolicy = true, storage.PKCENonceInstead }), "always uses PKCE"},
		{"confidential client with nonce instead", web(func(s *ClientSpec) { s.PKCEPolicy = storage.PKCENonceInstead }), ""},
		{"http logo", web(func(s *ClientSpec) { s.Info.LogoURI = "http://a.example/logo.png" }), "logo_uri must be an https URL"},
		{"javascript policy", web(func(s *ClientSpec) { s.Info.PolicyURI = "javascript:alert(1)" }), "policy_uri"},
		{"https info", web(func(s *ClientSpec) {
			s.Info = storage.ClientInfo{ClientURI: "https://a.example", TOSURI: "https://a.example/tos"}
		}), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, secret, err := BuildClient(ctx, tt.spec, scope.Default())
			if tt.wantErr != "" {
				var ie *InvalidError
				if !errors.As(err, &ie) || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("BuildClient = %v, want an InvalidError mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatalf("BuildClient = %v", err)
			}
			if c.ID == "" || c.ID != strings.ToLower(c.ID) || c.Name != "Notes" || len(c.GrantTypes) == 0 {
				t.Fatalf("client %+v", c)
			}
			keyed := c.AuthMethod == clientauth.MethodPrivateKeyJWT
			if c.Public || keyed {
				if secret != "" || c.SecretHash != "" {
					t.Fatalf("a public or private_key_jwt client got a secret")
				}
			} else if secret == "" || c.SecretHash != storage.Hash(secret) {
				t.Fatalf("confidential client: secret %q, hash %q", secret, c.SecretHash)
			}
		})
	}
	c, _, err := BuildClient(ctx, web(nil), scope.Default())
	if err != nil || strings.Join(c.GrantTypes, " ") != "authorization_code refresh_token" {
		t.Fatalf("default grant types %v (%v)", c.GrantTypes, err)
	}
	c, secret, err := BuildClient(ctx, web(func(s *ClientSpec) { s.Secret = "chosen" }), scope.Default())
	if err != nil || secret != "chosen" || c.SecretHash != storage.Hash("chosen") {
		t.Fatalf("a chosen secret: %q %q %v", secret, c.SecretHash, err)
	}
}

func TestValidInfoURL(t *testing.T) {
	for u, want := range map[string]bool{
		"https://a.example/x": true, "http://localhost:8080/": true, "http://127.0.0.1/": true, "http://[::1]/": true,
		"http://a.example/": false, "https://user@a.example/": false, "ftp://a.example/": false, "/relative": false, "": false,
	} {
		if got := ValidInfoURL(u); got != want {
			t.Errorf("ValidInfoURL(%q) = %v, want %v", u, got, want)
		}
	}
}

// TestAddUserAndClient: the store gets what was validated; a duplicate
// is an error that errors.Is(storage.ErrAlreadyExists) without the
// driver's words; a client_secret_jwt client's secret is sealed.
func TestAddUserAndClient(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	cheap := password.Params{Memory: 1024, Time: 1, Threads: 1}
	users := []struct {
		name    string
		spec    UserSpec
		wantErr string
	}{
		{"valid", UserSpec{Username: "amal", Password: "a long and unusual passphrase"}, ""},
		{"duplicate", UserSpec{Username: "amal", Password: "another long passphrase here"}, `a user named "amal", or a name that differs from it only in case`},
		{"duplicate in upper case", UserSpec{Username: "Amal", Password: "another long passphrase here"}, `a user named "Amal", or a name that differs`},
		{"duplicate in full width", UserSpec{Username: "ａｍａｌ", Password: "another long passphrase here"}, "exists already"},
		{"Unicode", UserSpec{Username: "أمل", Password: "a long and unusual passphrase"}, ""},
		{"no username", UserSpec{Password: "a long and unusual passphrase"}, "username is required"},
		{"space in username", UserSpec{Username: "a b", Password: "a long and unusual passphrase"}, "without spaces"},
		{"no-break space", UserSpec{Username: "a\u00a0b", Password: "a long and unusual passphrase"}, "without spaces"},
		{"zero-width space", UserSpec{Username: "om\u200bar", Password: "a long and unusual passphrase"}, "invisible"},
		{"right-to-left override", UserSpec{Username: "\u202enimda", Password: "a long and unusual passphrase"}, "invisible"},
		{"Hangul filler", UserSpec{Username: "omar\u3164", Password: "a long and unusual passphrase"}, "invisible"},
		{"control character", UserSpec{Username: "omar\x01", Password: "a long and unusual passphrase"}, "control"},
		{"Cyrillic a among Latin", UserSpec{Username: "\u0430dmin", Password: "a long and unusual passphrase"}, "one script"},
		{"weak password", UserSpec{Username: "omar", Password: "omar"}, "password"},
	}
	for _, tt := range users {
		t.Run("user "+tt.name, func(t *testing.T) {
			id, err := AddUser(ctx, s, tt.spec, cheap)
			if tt.wantErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.wantErr) {
					t.Fatalf("AddUser = %v, want %q", err, tt.wantErr)
				}
				if strings.Contains(tt.wantErr, "exists") && !errors.Is(err, storage.ErrAlreadyExists) {
					t.Fatalf("a duplicate is not ErrAlreadyExists: %v", err)
				}
				return
			}
			u, err := s.GetUser(ctx, id)
			if err != nil || u.Username != tt.spec.Username || u.Name != tt.spec.Username {
				t.Fatalf("stored %+v, %v", u, err)
			}
			if _, err := password.Verify(tt.spec.Password, u.PasswordHash, cheap); err != nil {
				t.Fatalf("stored hash does not verify: %v", err)
			}
		})
	}
	spec := ClientSpec{ID: "jwt", RedirectURIs: []string{"https://a.example/cb"}, AuthMethod: clientauth.MethodSecretJWT}
	secret, err := AddClient(ctx, s, spec, scope.Default())
	if err != nil {
		t.Fatal(err)
	}
	c, err := s.GetClient(ctx, "jwt")
	if err != nil || c.SecretSealed == "" {
		t.Fatalf("client_secret_jwt client %+v, %v: want its secret sealed", c, err)
	}
	sealer, err := clientauth.StoreSealer(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	if opened, err := sealer.Open(c.SecretSealed); err != nil || opened != secret {
		t.Fatalf("sealed secret opens to %q, %v", opened, err)
	}
	if _, err := AddClient(ctx, s, spec, scope.Default()); !errors.Is(err, storage.ErrAlreadyExists) || !strings.Contains(err.Error(), `"jwt" exists already`) {
		t.Fatalf("duplicate client: %v", err)
	}
	if _, err := AddClient(ctx, s, ClientSpec{GrantTypes: []string{"password"}}, scope.Default()); err == nil {
		t.Fatal("an invalid client was added")
	}
}
