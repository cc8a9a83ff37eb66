package token

import (
	"context"
	"net/url"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// newPostgresTokenEnv is newTokenEnv on a PostgreSQL schema of its own,
// where the hot paths' writes are single statements (writable WITH) and
// concurrent requests really overlap in the database.
func newPostgresTokenEnv(t *testing.T) *tokenEnv {
	t.Helper()
	dsn, schema := testenv.PostgresSchema(t)
	s, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newTokenEnvOn(t, s)
}

// burst sends form as client n times at once and returns the answers.
func (e *tokenEnv) burst(n int, client string, form url.Values) []tokenReply {
	replies := make([]tokenReply, n)
	var wg sync.WaitGroup
	for k := range n {
		wg.Go(func() { replies[k] = e.post(client, form, "") })
	}
	wg.Wait()
	return replies
}

// TestHotPathRacesPostgres attacks the combined statements of code
// redemption and refresh on PostgreSQL: a code replayed while its first
// redemption runs, and a refresh token presented many times at once,
// leave one answer with tokens at most and the grant revoked, so that
// nothing the leaked credential issued works (RFC 9700 §4.5.3.1,
// §4.14.2).
func TestHotPathRacesPostgres(t *testing.T) {
	const n = 8
	t.Run("code replayed racing its redemption", func(t *testing.T) {
		e := newPostgresTokenEnv(t)
		grant := NewID()
		replies := e.burst(n, "web", codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant; c.Scopes = []string{"openid", "offline_access"} })))
		var won []tokenReply
		for _, r := range replies {
			switch {
			case r.Status == 200:
				won = append(won, r)
			case r.Error != oautherr.InvalidGrant:
				t.Fatalf("a concurrent redemption got %d %s: %s", r.Status, r.Error, r.ErrorDescription)
			}
		}
		if len(won) != 1 || won[0].RefreshToken == "" {
			t.Fatalf("%d redemptions got tokens, want 1 with a refresh token", len(won))
		}
		if !e.grantRevoked(grant) {
			t.Fatal("the replays did not revoke the code's grant")
		}
		if _, err := e.issuer.ValidateAccess(context.Background(), won[0].AccessToken); err == nil {
			t.Fatal("the winner's access token survived the replays")
		}
		refreshed := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {won[0].RefreshToken}}, "")
		if refreshed.Error != oautherr.InvalidGrant {
			t.Fatalf("the winner's refresh token after the replays: %d %s, want invalid_grant", refreshed.Status, refreshed.Error)
		}
	})
	t.Run("refresh token presented at once", func(t *testing.T) {
		e := newPostgresTokenEnv(t)
		grant := NewID()
		first := e.post("web", codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant; c.Scopes = []string{"openid", "offline_access"} })), "")
		if first.RefreshToken == "" {
			t.Fatalf("no refresh token: %+v", first)
		}
		replies := e.burst(n, "web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}})
		var won []tokenReply
		for _, r := range replies {
			switch {
			case r.Status == 200:
				won = append(won, r)
			case r.Error != oautherr.InvalidGrant:
				t.Fatalf("a concurrent refresh got %d %s: %s", r.Status, r.Error, r.ErrorDescription)
			}
		}
		if len(won) > 1 {
			t.Fatalf("%d concurrent refreshes of one token got tokens, want at most 1", len(won))
		}
		if !e.grantRevoked(grant) {
			t.Fatal("reuse of the refresh token did not revoke its grant")
		}
		for _, r := range won {
			again := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}, "")
			if again.Error != oautherr.InvalidGrant {
				t.Fatalf("the successor after the reuse: %d %s, want invalid_grant", again.Status, again.Error)
			}
			if _, err := e.issuer.ValidateAccess(context.Background(), r.AccessToken); err == nil {
				t.Fatal("an access token of the reused chain survived")
			}
		}
	})
	t.Run("rotated token presented again", func(t *testing.T) {
		e := newPostgresTokenEnv(t)
		grant := NewID()
		first := e.post("web", codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant; c.Scopes = []string{"openid", "offline_access"} })), "")
		next := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, "")
		if next.Status != 200 || e.grantRevoked(grant) {
			t.Fatalf("rotation: %d %s", next.Status, next.Error)
		}
		if r := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, ""); r.Error != oautherr.InvalidGrant {
			t.Fatalf("reuse: %d %s, want invalid_grant", r.Status, r.Error)
		}
		if !e.grantRevoked(grant) {
			t.Fatal("reuse did not revoke the grant")
		}
		if r := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}}, ""); r.Error != oautherr.InvalidGrant {
			t.Fatalf("the successor after reuse: %d %s, want invalid_grant", r.Status, r.Error)
		}
	})
}

// TestEndedChainsRefused: on both stores, a refresh token whose user was
// disabled or deleted, whose grant was revoked, or whose client was
// deleted, read with its grant and user in one joined lookup, neither
// refreshes nor reads as a live chain (introspection), and is not spent.
func TestEndedChainsRefused(t *testing.T) {
	ends := []struct {
		name string
		end  func(e *tokenEnv, grant string) error
	}{
		{"user disabled", func(e *tokenEnv, _ string) error { return e.store.SetUserDisabled(context.Background(), "u1", true) }},
		{"user deleted", func(e *tokenEnv, _ string) error { return e.store.DeleteUser(context.Background(), "u1", e.now) }},
		{"grant revoked", func(e *tokenEnv, grant string) error { return e.store.RevokeGrant(context.Background(), grant, e.now) }},
		{"client deleted", func(e *tokenEnv, _ string) error { return e.store.DeleteClient(context.Background(), "web", e.now) }},
	}
	stores := []struct {
		name string
		env  func(t *testing.T) *tokenEnv
	}{{"sqlite", newTokenEnv}, {"postgres", newPostgresTokenEnv}}
	for _, st := range stores {
		for _, tt := range ends {
			t.Run(st.name+"/"+tt.name, func(t *testing.T) {
				e := st.env(t)
				ctx := context.Background()
				grant := NewID()
				first := e.post("web", codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant; c.Scopes = []string{"openid", "offline_access"} })), "")
				if first.RefreshToken == "" {
					t.Fatalf("no refresh token: %+v", first)
				}
				if err := tt.end(e, grant); err != nil {
					t.Fatal(err)
				}
				chain, err := e.store.GetRefreshTokenChain(ctx, storage.Hash(first.RefreshToken))
				if err != nil {
					t.Fatal(err)
				}
				if !ChainEnded(chain) {
					t.Fatalf("chain reads live: grant %+v user %+v", chain.Grant, chain.User)
				}
				// The client as a node whose client cache still holds it
				// after its deletion authenticates it.
				client := &storage.Client{ID: "web", GrantTypes: []string{"refresh_token"}}
				_, err = RefreshToken{Issuer: e.issuer}.Exchange(ctx, &Request{GrantType: "refresh_token",
					Form: url.Values{"refresh_token": {first.RefreshToken}}, Client: client})
				if oautherr.Code(err) != oautherr.InvalidGrant {
					t.Fatalf("refresh: %v, want invalid_grant", err)
				}
				if rt, err := e.store.GetRefreshToken(ctx, storage.Hash(first.RefreshToken)); err != nil || !rt.UsedAt.IsZero() {
					t.Fatalf("the refused token was spent: %+v %v", rt, err)
				}
			})
		}
	}
}
