package introspect

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
)

const verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

// env is /token and /introspect on SQLite; "rs" is a resource server the
// access tokens are meant for (aud).
type env struct {
	t       *testing.T
	mux     *http.ServeMux
	store   storage.Storage
	issuer  *token.Issuer
	now     time.Time
	secrets map[string]string
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
		{ID: "web", GrantTypes: grants, RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "files.read"}},
		{ID: "other", GrantTypes: grants, Scopes: []string{"files.read"}},
		{ID: "rs", GrantTypes: []string{"client_credentials"}},
	} {
		c.SecretHash = ""
		e.secrets[c.ID], c.SecretHash = clientauth.NewSecret()
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	auth := &clientauth.Authenticator{Store: s, Now: clock}
	e.mux = http.NewServeMux()
	token.NewEndpoint(auth, slog.New(slog.DiscardHandler), token.AuthorizationCode{Issuer: e.issuer}, token.RefreshToken{Issuer: e.issuer},
		token.ClientCredentials{Issuer: e.issuer}).Register(e.mux)
	(&Endpoint{Auth: auth, Issuer: e.issuer, Log: slog.New(slog.DiscardHandler)}).Register(e.mux)
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
func (e *env) userTokens() (access, refresh string) {
	e.t.Helper()
	code := token.NewOpaque()
	if err := e.store.CreateAuthCode(context.Background(), storage.AuthCode{Hash: storage.Hash(code), GrantID: token.NewID(), ClientID: "web",
		UserID: "u1", RedirectURI: "https://app.example/cb", Scopes: []string{"openid", "files.read"}, CodeChallenge: token.S256(verifier),
		CodeChallengeMethod: "S256", AuthTime: e.now, CreatedAt: e.now, ExpiresAt: e.now.Add(time.Minute)}); err != nil {
		e.t.Fatal(err)
	}
	_, body := e.post("/token", "web", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {"https://app.example/cb"},
		"code_verifier": {verifier}})
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if access == "" || refresh == "" {
		e.t.Fatalf("token response %v", body)
	}
	return access, refresh
}

// TestIntrospect pins RFC 7662 §2.2: each row a token and who asks, and
// whether it is active; any token that is not, for whatever reason, is
// just {"active":false}, never an error.
func TestIntrospect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	access, refresh := e.userTokens()
	_, cc := e.post("/token", "other", url.Values{"grant_type": {"client_credentials"}})
	otherToken := cc["access_token"].(string)
	revokedAccess, _ := e.userTokens()
	c, err := e.issuer.ValidateAccess(ctx, revokedAccess)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeToken(ctx, c.ID, c.Expiry.Time()); err != nil {
		t.Fatal(err)
	}
	_, rotated := e.userTokens()
	if code, body := e.post("/token", "web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated}}); code != 200 {
		t.Fatalf("refresh: %v", body)
	}
	tests := []struct {
		name       string
		client     string
		token      string
		wantActive bool
		wantType   string
	}{
		{"own access token", "web", access, true, "Bearer"},
		{"access token, by its audience", "rs", access, true, "Bearer"},
		{"access token, by another client", "other", access, false, ""},
		{"own refresh token", "web", refresh, true, "refresh_token"},
		{"refresh token, by another client", "rs", refresh, false, ""},
		{"rotated refresh token", "web", rotated, false, ""},
		{"client_credentials token", "other", otherToken, true, "Bearer"},
		{"revoked access token", "web", revokedAccess, false, ""},
		{"unknown opaque token", "web", "opaque", false, ""},
		{"garbage JWT", "web", "a.b.c", false, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.post("/introspect", tt.client, url.Values{"token": {tt.token}})
			if code != 200 || body["active"] != tt.wantActive {
				t.Fatalf("got %d %v, want active %v", code, body, tt.wantActive)
			}
			if !tt.wantActive {
				if len(body) != 1 {
					t.Fatalf("an inactive answer says more than active: %v (RFC 7662 section 2.2)", body)
				}
				return
			}
			if body["token_type"] != tt.wantType || body["iss"] != "https://issuer.example" || body["exp"] == nil || body["client_id"] == nil {
				t.Fatalf("active answer %v", body)
			}
			if tt.wantType != "refresh_token" && body["jti"] == nil {
				t.Fatalf("access token answer without jti: %v", body)
			}
		})
	}

	// Expiry and the end of the grant make tokens inactive.
	e.now = e.now.Add(2 * time.Minute)
	if _, body := e.post("/introspect", "web", url.Values{"token": {access}}); body["active"] != false {
		t.Fatalf("expired access token: %v", body)
	}
	if _, body := e.post("/introspect", "web", url.Values{"token": {refresh}}); body["active"] != true {
		t.Fatalf("refresh token within its lifetime: %v", body)
	}
	g, err := e.store.GetRefreshToken(ctx, storage.Hash(refresh))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.store.RevokeGrant(ctx, g.GrantID, e.now); err != nil {
		t.Fatal(err)
	}
	if _, body := e.post("/introspect", "web", url.Values{"token": {refresh}}); body["active"] != false {
		t.Fatalf("refresh token of a revoked grant: %v", body)
	}
}

func TestIntrospectErrors(t *testing.T) {
	e := newEnv(t)
	tests := []struct {
		name       string
		client     string
		form       url.Values
		wantStatus int
		wantErr    string
	}{
		{"no client authentication", "", url.Values{"token": {"x"}}, 401, oautherr.InvalidClient},
		{"no token", "web", url.Values{}, 400, oautherr.InvalidRequest},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code, body := e.post("/introspect", tt.client, tt.form)
			if code != tt.wantStatus || body["error"] != tt.wantErr {
				t.Fatalf("got %d %v, want %d %s", code, body, tt.wantStatus, tt.wantErr)
			}
		})
	}
}
