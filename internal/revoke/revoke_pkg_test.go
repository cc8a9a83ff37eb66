package revoke

import (
	"context"
	"log/slog"
	"net/url"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/token/tokentest"
)

// newEnv is /token and /revoke on SQLite (package tokentest).
func newEnv(t *testing.T) *tokentest.Env {
	t.Helper()
	e := tokentest.New(t)
	(&Endpoint{Auth: e.Auth, Issuer: e.Issuer, Log: slog.New(slog.DiscardHandler)}).Register(e.Mux)
	return e
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
			c, err := e.Store.GetRefreshTokenChain(ctx, storage.Hash(raw))
			if err != nil {
				t.Fatal(err)
			}
			return !token.ChainEnded(c)
		}
		_, err := e.Issuer.ValidateAccess(ctx, raw)
		return err == nil
	}
	type tokens struct{ access, refresh string }
	fresh := func() tokens { a, r := e.UserTokens(); return tokens{a, r} }
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
			code, body := e.Post("/revoke", tt.client, tt.form(k))
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
		if code, body := e.Post("/revoke", "web", url.Values{"token": {k.access}}); code != 200 {
			t.Fatalf("revocation %d: %d %v", i+1, code, body)
		}
	}
}
