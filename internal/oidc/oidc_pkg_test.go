package oidc

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

// env is /token, discovery and /userinfo on SQLite; "rs" is a resource server the
// access tokens are meant for (aud).
type env struct {
	t        *testing.T
	mux      *http.ServeMux
	store    storage.Storage
	issuer   *token.Issuer
	now      time.Time
	secrets  map[string]string
	provider *Provider
}

func newEnv(t *testing.T) *env {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &env{t: t, store: s, now: time.Now().Truncate(time.Second), secrets: map[string]string{}}
	clock := func() time.Time { return e.now }
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = &token.Issuer{URL: "https://issuer.example", Audience: []string{"rs"}, Keys: keys, Store: s, Scopes: scope.Default(),
		AccessTTL: time.Minute, RefreshTTL: time.Hour, GrantTTL: 24 * time.Hour, IDTokenTTL: time.Minute, Now: clock}
	grants := []string{"authorization_code", "refresh_token", "client_credentials"}
	for _, c := range []storage.Client{
		{ID: "web", GrantTypes: grants, RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "profile", "email", "files.read"}},
		{ID: "other", GrantTypes: grants, Scopes: []string{"files.read"}},
		{ID: "rs", GrantTypes: []string{"client_credentials"}},
	} {
		c.SecretHash = ""
		e.secrets[c.ID], c.SecretHash = clientauth.NewSecret()
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", Name: "Amal", Email: "amal@example.com", EmailVerified: true, CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	auth := &clientauth.Authenticator{Store: s, Now: clock}
	e.mux = http.NewServeMux()
	token.NewEndpoint(auth, slog.New(slog.DiscardHandler), token.AuthorizationCode{Issuer: e.issuer}, token.RefreshToken{Issuer: e.issuer},
		token.ClientCredentials{Issuer: e.issuer}).Register(e.mux)
	e.provider = &Provider{Issuer: e.issuer, Store: s, GrantTypes: []string{"authorization_code", "refresh_token", "client_credentials"},
		UILocales: []string{"en", "ar"}, Log: slog.New(slog.DiscardHandler), DPoP: &dpop.Checker{Replays: s, Now: clock}}
	e.provider.Register(e.mux)
	return e
}

func (e *env) post(path, client string, form url.Values) (int, map[string]any) {
	e.t.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client != "" {
		r.SetBasicAuth(client, e.secrets[client])
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	var body map[string]any
	if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
		e.t.Fatalf("%s answered %d %q", path, rec.Code, rec.Body)
	}
	return rec.Code, body
}

// userTokens redeems a fresh code of web for u1 and returns the tokens.
func (e *env) userTokens(scopes ...string) (access, refresh string) {
	e.t.Helper()
	code := token.NewOpaque()
	if err := e.store.CreateAuthCode(context.Background(), storage.AuthCode{Hash: storage.Hash(code), GrantID: token.NewID(), ClientID: "web",
		UserID: "u1", RedirectURI: "https://app.example/cb", Scopes: scopes, CodeChallenge: token.S256(verifier),
		CodeChallengeMethod: "S256", AuthTime: e.now, CreatedAt: e.now, ExpiresAt: e.now.Add(time.Minute)}); err != nil {
		e.t.Fatal(err)
	}
	_, body := e.post("/token", "web", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"},
		"code_verifier": {verifier}})
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if access == "" {
		e.t.Fatalf("token response %v", body)
	}
	return access, refresh
}

// TestDiscovery: the metadata a client relies on (RFC 8414 §2, OpenID
// Connect Discovery §3) names this issuer's endpoints and only what bawwab
// does: the code flow, query responses, S256.
func TestDiscovery(t *testing.T) {
	e := newEnv(t)
	for _, path := range []string{"/.well-known/openid-configuration", "/.well-known/oauth-authorization-server"} {
		t.Run(path, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, httptest.NewRequest("GET", path, nil))
			var m Metadata
			if err := json.Unmarshal(rec.Body.Bytes(), &m); err != nil || rec.Code != 200 {
				t.Fatalf("%d %v", rec.Code, err)
			}
			const iss = "https://issuer.example"
			checks := []struct {
				name string
				ok   bool
			}{
				{"issuer", m.Issuer == iss},
				{"endpoints", m.AuthorizationEndpoint == iss+"/authorize" && m.TokenEndpoint == iss+"/token" && m.JWKSURI == iss+"/jwks.json" &&
					m.UserinfoEndpoint == iss+"/userinfo" && m.RevocationEndpoint == iss+"/revoke" && m.IntrospectionEndpoint == iss+"/introspect"},
				{"no registration endpoint when off", m.RegistrationEndpoint == ""},
				{"code only", strings.Join(m.ResponseTypesSupported, " ") == "code" && strings.Join(m.ResponseModesSupported, " ") == "query"},
				{"S256 only", strings.Join(m.CodeChallengeMethodsSupported, " ") == "S256"},
				{"grant types", strings.Join(m.GrantTypesSupported, " ") == "authorization_code refresh_token client_credentials"},
				{"iss in responses", m.AuthorizationResponseIssParameterSupported},
				{"no none alg", !slices.Contains(m.IDTokenSigningAlgValuesSupported, "none") && slices.Contains(m.IDTokenSigningAlgValuesSupported, "RS256")},
				{"claims of the scopes", slices.Contains(m.ClaimsSupported, "email") && slices.Contains(m.ClaimsSupported, "name")},
				{"scopes", slices.Contains(m.ScopesSupported, "openid") && slices.Contains(m.ScopesSupported, "offline_access")},
				{"locales", strings.Join(m.UILocalesSupported, " ") == "en ar"},
				{"cacheable by anyone", rec.Header().Get("Access-Control-Allow-Origin") == "*" && strings.Contains(rec.Header().Get("Cache-Control"), "max-age")},
			}
			for _, c := range checks {
				if !c.ok {
					t.Errorf("%s: metadata %+v", c.name, m)
				}
			}
		})
	}
	e.provider.Registration = true
	if got := e.provider.Metadata().RegistrationEndpoint; got != "https://issuer.example/register" {
		t.Fatalf("registration_endpoint %q with registration on", got)
	}
}

// TestUserinfo pins the UserInfo endpoint (OpenID Connect Core §5.3,
// RFC 6750 §3.1): each row a request and the status, error and claims.
func TestUserinfo(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	profile, _ := e.userTokens("openid", "profile")
	emailOnly, _ := e.userTokens("openid", "email")
	noOpenID, _ := e.userTokens("files.read")
	_, cc := e.post("/token", "web", url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}})
	clientToken := cc["access_token"].(string)
	revoked, _ := e.userTokens("openid")
	c, err := e.issuer.ValidateAccess(ctx, revoked)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeToken(ctx, c.ID, c.Expiry.Time()); err != nil {
		t.Fatal(err)
	}
	bearer := func(tok string) *http.Request {
		r := httptest.NewRequest("GET", "/userinfo", nil)
		r.Header.Set("Authorization", "Bearer "+tok)
		return r
	}
	tests := []struct {
		name       string
		req        *http.Request
		wantStatus int
		wantErr    string // in the WWW-Authenticate challenge
		want       map[string]any
	}{
		{"no token", httptest.NewRequest("GET", "/userinfo", nil), 401, "", nil},
		{"garbage", bearer("a.b.c"), 401, oautherr.InvalidToken, nil},
		{"revoked", bearer(revoked), 401, oautherr.InvalidToken, nil},
		{"no openid scope", bearer(noOpenID), 403, oautherr.InsufficientScope, nil},
		{"a client's own token", bearer(clientToken), 403, oautherr.InsufficientScope, nil},
		{"profile", bearer(profile), 200, "", map[string]any{"sub": "u1", "name": "Amal", "preferred_username": "amal"}},
		{"email", bearer(emailOnly), 200, "", map[string]any{"sub": "u1", "email": "amal@example.com", "email_verified": true}},
		{"POST with the token in the header", func() *http.Request {
			r := httptest.NewRequest("POST", "/userinfo", nil)
			r.Header.Set("Authorization", "Bearer "+profile)
			return r
		}(), 200, "", map[string]any{"sub": "u1", "name": "Amal", "preferred_username": "amal"}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, tt.req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.wantStatus)
			}
			if tt.wantStatus != 200 {
				ch := rec.Header().Get("WWW-Authenticate")
				if !strings.HasPrefix(ch, "Bearer ") || tt.wantErr != "" && !strings.Contains(ch, `error="`+tt.wantErr+`"`) ||
					tt.wantErr == "" && strings.Contains(ch, "error=") {
					t.Fatalf("challenge %q, want Bearer with error %q", ch, tt.wantErr)
				}
				return
			}
			var got map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &got); err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("claims %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("claim %s = %v, want %v (all: %v)", k, got[k], v, got)
				}
			}
		})
	}

	// A user deleted since the token was issued.
	if err := e.store.DeleteUser(ctx, "u1", e.now); err != nil {
		t.Fatal(err)
	}
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, bearer(profile))
	if rec.Code != 401 && rec.Code != 403 {
		t.Fatalf("token of a deleted user: %d %s", rec.Code, rec.Body)
	}
}
