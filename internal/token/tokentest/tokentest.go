// Package tokentest runs the token endpoint on SQLite for the package
// tests of the endpoints that take its tokens (introspection, revocation):
// clients "web" and "other" with the code, refresh and client credentials
// grants, "rs" a resource server the access tokens are meant for (aud),
// user "u1", and a clock the test moves. It is for tests only.
package tokentest

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
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
)

// Verifier is the PKCE verifier of the codes UserTokens redeems (RFC 7636
// appendix B).
const Verifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk"

// Env is /token on SQLite. Register the endpoint under test on Mux with
// Auth and Issuer.
type Env struct {
	T       *testing.T
	Mux     *http.ServeMux
	Store   storage.Storage
	Issuer  *token.Issuer
	Auth    *clientauth.Authenticator
	Now     time.Time
	Secrets map[string]string
}

// New starts an Env whose store lives in t's temporary directory.
func New(t *testing.T) *Env {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &Env{T: t, Store: s, Now: time.Now().Truncate(time.Second), Secrets: map[string]string{}}
	clock := func() time.Time { return e.Now }
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.Issuer = &token.Issuer{URL: "https://issuer.example", Audience: []string{"rs"}, Keys: keys, Store: s, Scopes: scope.Default(),
		AccessTTL: time.Minute, RefreshTTL: time.Hour, GrantTTL: 24 * time.Hour, IDTokenTTL: time.Minute, Now: clock}
	grants := []string{granttype.AuthorizationCode, granttype.RefreshToken, granttype.ClientCredentials}
	for _, c := range []storage.Client{
		{ID: "web", GrantTypes: grants, RedirectURIs: []string{"https://app.example/cb"}, Scopes: []string{"openid", "files.read"}},
		{ID: "other", GrantTypes: grants, Scopes: []string{"files.read"}},
		{ID: "rs", GrantTypes: []string{granttype.ClientCredentials}},
	} {
		e.Secrets[c.ID], c.SecretHash = clientauth.NewSecret()
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", CreatedAt: e.Now}); err != nil {
		t.Fatal(err)
	}
	e.Auth = &clientauth.Authenticator{Store: s, Now: clock}
	e.Mux = http.NewServeMux()
	token.NewEndpoint(e.Auth, slog.New(slog.DiscardHandler), token.AuthorizationCode{Issuer: e.Issuer}, token.RefreshToken{Issuer: e.Issuer},
		token.ClientCredentials{Issuer: e.Issuer}).Register(e.Mux)
	return e
}

// Post sends form to path as client (Basic authentication; none when
// client is empty) and returns the status and the JSON body, if any.
func (e *Env) Post(path, client string, form url.Values) (int, map[string]any) {
	e.T.Helper()
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if client != "" {
		r.SetBasicAuth(client, e.Secrets[client])
	}
	rec := httptest.NewRecorder()
	e.Mux.ServeHTTP(rec, r)
	var body map[string]any
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			e.T.Fatalf("%s answered %d %q", path, rec.Code, rec.Body)
		}
	}
	return rec.Code, body
}

// UserTokens redeems a fresh code of web for u1 and returns the tokens.
func (e *Env) UserTokens() (access, refresh string) {
	e.T.Helper()
	code := token.NewOpaque()
	if err := e.Store.CreateAuthCode(context.Background(), storage.AuthCode{Hash: storage.Hash(code), GrantID: token.NewID(), ClientID: "web",
		UserID: "u1", RedirectURI: "https://app.example/cb", Scopes: []string{"openid", "files.read"}, CodeChallenge: token.S256(Verifier),
		CodeChallengeMethod: "S256", AuthTime: e.Now, CreatedAt: e.Now, ExpiresAt: e.Now.Add(time.Minute)}); err != nil {
		e.T.Fatal(err)
	}
	_, body := e.Post("/token", "web", url.Values{"grant_type": {granttype.AuthorizationCode}, "code": {code},
		"redirect_uri": {"https://app.example/cb"}, "code_verifier": {Verifier}})
	access, _ = body["access_token"].(string)
	refresh, _ = body["refresh_token"].(string)
	if access == "" || refresh == "" {
		e.T.Fatalf("token response %v", body)
	}
	return access, refresh
}
