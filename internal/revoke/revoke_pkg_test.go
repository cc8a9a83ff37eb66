package revoke

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

// env is /token and /revoke on SQLite; "rs" is a resource server the
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
	if rec.Body.Len() > 0 {
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			e.t.Fatalf("%s answered %d %q", path, rec.Code, rec.Body)
		}
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

// TestRevoke pins RFC 7009 §2.1-2.2: each row a token, who revokes it,
// the answer, and whether the token still works after. Revoking a refresh
// token ends its grant and so every access token of it; an unknown or
// already dead token is a 200 with nothing done; another client's token
// is refused.
func TestRevoke(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	active := func(raw string) bool {
		if !token.IsJWT(raw) {
			rt, err := e.store.GetRefreshToken(ctx, storage.Hash(raw))
			if err != nil {
				t.Fatal(err)
			}
			ended, err := e.issuer.GrantEnded(ctx, rt.GrantID)
			if err != nil {
				t.Fatal(err)
			}
			return !ended
		}
		_, err := e.issuer.ValidateAccess(ctx, raw)
		return err == nil
	}
	type tokens struct{ access, refresh string }
	fresh := func() tokens { a, r := e.userTokens(); return tokens{a, r} }
	tests := []struct {
		name       string
		client     string
		form       func(tokens) url.Values
		wantStatus int
		wantErr    string
		// after the request:
		wantAccess, wantRefresh bool
	}{
		{"access token", "web", func(k tokens) url.Values { return url.Values{"token": {k.access}} }, 200, "", false, true},
		{"access token with its hint", "web", func(k tokens) url.Values {
			return url.Values{"token": {k.access}, "token_type_hint": {"access_token"}}
		}, 200, "", false, true},
		{"refresh token, ending the grant", "web", func(k tokens) url.Values { return url.Values{"token": {k.refresh}} }, 200, "", false, false},
		{"refresh token with the wrong hint", "web", func(k tokens) url.Values {
			return url.Values{"token": {k.refresh}, "token_type_hint": {"access_token"}}
		}, 200, "", false, false},
		{"unknown opaque token", "web", func(tokens) url.Values { return url.Values{"token": {"opaque"}} }, 200, "", true, true},
		{"garbage JWT", "web", func(tokens) url.Values { return url.Values{"token": {"a.b.c"}} }, 200, "", true, true},
		{"access token of another client", "other", func(k tokens) url.Values { return url.Values{"token": {k.access}} }, 400,
			oautherr.UnauthorizedClient, true, true},
		{"refresh token of another client", "other", func(k tokens) url.Values { return url.Values{"token": {k.refresh}} }, 400,
			oautherr.UnauthorizedClient, true, true},
		{"unsupported hint", "web", func(k tokens) url.Values {
			return url.Values{"token": {k.access}, "token_type_hint": {"id_token"}}
		}, 400, oautherr.UnsupportedTokenType, true, true},
		{"no token", "web", func(tokens) url.Values { return url.Values{} }, 400, oautherr.InvalidRequest, true, true},
		{"no client authentication", "", func(k tokens) url.Values { return url.Values{"token": {k.access}} }, 401, oautherr.InvalidClient, true, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := fresh()
			code, body := e.post("/revoke", tt.client, tt.form(k))
			if code != tt.wantStatus || tt.wantErr != "" && body["error"] != tt.wantErr {
				t.Fatalf("got %d %v, want %d %s", code, body, tt.wantStatus, tt.wantErr)
			}
			if got := active(k.access); got != tt.wantAccess {
				t.Fatalf("access token active %v after, want %v", got, tt.wantAccess)
			}
			if got := active(k.refresh); got != tt.wantRefresh {
				t.Fatalf("refresh token active %v after, want %v", got, tt.wantRefresh)
			}
		})
	}
	// Revoking twice is fine (RFC 7009 §2.2).
	k := fresh()
	for i := 0; i < 2; i++ {
		if code, body := e.post("/revoke", "web", url.Values{"token": {k.access}}); code != 200 {
			t.Fatalf("revocation %d: %d %v", i+1, code, body)
		}
	}
}
