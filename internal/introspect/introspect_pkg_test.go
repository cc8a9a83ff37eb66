package introspect

import (
	"context"
	"log/slog"
	"net/url"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token/tokentest"
)

// newEnv is /token and /introspect on SQLite (package tokentest).
func newEnv(t *testing.T) *tokentest.Env {
	t.Helper()
	e := tokentest.New(t)
	(&Endpoint{Auth: e.Auth, Issuer: e.Issuer, Log: slog.New(slog.DiscardHandler)}).Register(e.Mux)
	return e
}

// TestIntrospect pins RFC 7662 §2.2: each row a token and who asks, and
// whether it is active; any token that is not, for whatever reason, is
// just {"active":false}, never an error.
func TestIntrospect(t *testing.T) {
	e := newEnv(t)
	ctx := context.Background()
	access, refresh := e.UserTokens()
	_, cc := e.Post("/token", "other", url.Values{"grant_type": {"client_credentials"}})
	otherToken := cc["access_token"].(string)
	revokedAccess, _ := e.UserTokens()
	c, err := e.Issuer.ValidateAccess(ctx, revokedAccess)
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.RevokeToken(ctx, c.ID, c.Expiry.Time()); err != nil {
		t.Fatal(err)
	}
	_, rotated := e.UserTokens()
	if code, body := e.Post("/token", "web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rotated}}); code != 200 {
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
			code, body := e.Post("/introspect", tt.client, url.Values{"token": {tt.token}})
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
	e.Now = e.Now.Add(2 * time.Minute)
	if _, body := e.Post("/introspect", "web", url.Values{"token": {access}}); body["active"] != false {
		t.Fatalf("expired access token: %v", body)
	}
	if _, body := e.Post("/introspect", "web", url.Values{"token": {refresh}}); body["active"] != true {
		t.Fatalf("refresh token within its lifetime: %v", body)
	}
	g, err := e.Store.GetRefreshToken(ctx, storage.Hash(refresh))
	if err != nil {
		t.Fatal(err)
	}
	if err := e.Store.RevokeGrant(ctx, g.GrantID, e.Now); err != nil {
		t.Fatal(err)
	}
	if _, body := e.Post("/introspect", "web", url.Values{"token": {refresh}}); body["active"] != false {
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
			code, body := e.Post("/introspect", tt.client, tt.form)
			if code != tt.wantStatus || body["error"] != tt.wantErr {
				t.Fatalf("got %d %v, want %d %s", code, body, tt.wantStatus, tt.wantErr)
			}
		})
	}
}
