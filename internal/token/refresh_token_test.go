package token

import (
	"context"
	"log/slog"
	"net/url"
	"path/filepath"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// refreshFixture is an Issuer on a SQLite store with a user, two clients,
// one grant and a refresh token of it, and a clock the test moves.
type refreshFixture struct {
	i      *Issuer
	store  storage.Storage
	now    time.Time
	app    *storage.Client
	other  *storage.Client
	grant  string
	first  string // the raw refresh token the grant starts with
	tokens []string
}

func newRefreshFixture(t *testing.T, jkt string) *refreshFixture {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	f := &refreshFixture{store: s, now: time.Now().Truncate(time.Second), grant: "g1", first: NewOpaque()}
	clock := func() time.Time { return f.now }
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	f.i = &Issuer{URL: "https://issuer.example", Audience: []string{"api"}, Keys: keys, Store: s,
		AccessTTL: time.Minute, RefreshTTL: time.Hour, GrantTTL: 24 * time.Hour, Now: clock}
	f.app = &storage.Client{ID: "app", Public: true, GrantTypes: []string{"refresh_token"}, Scopes: []string{"offline_access"}}
	f.other = &storage.Client{ID: "other", Public: true, GrantTypes: []string{"refresh_token"}, Scopes: []string{"offline_access"}}
	for _, err := range []error{
		s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", CreatedAt: f.now}),
		s.CreateClient(ctx, *f.app),
		s.CreateClient(ctx, *f.other),
		s.CreateGrant(ctx, storage.Grant{ID: f.grant, ClientID: "app", UserID: "u1", Scopes: []string{"offline_access"},
			AuthTime: f.now, CreatedAt: f.now, ExpiresAt: f.now.Add(24 * time.Hour)}),
		s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: storage.Hash(f.first), GrantID: f.grant, ClientID: "app", UserID: "u1",
			Scopes: []string{"offline_access"}, AuthTime: f.now, CreatedAt: f.now, ExpiresAt: f.now.Add(time.Hour), JKT: jkt}),
	} {
		if err != nil {
			t.Fatal(err)
		}
	}
	return f
}

// refresh presents raw as client c, with a DPoP proof of key jkt when set.
func (f *refreshFixture) refresh(g RefreshToken, c *storage.Client, raw, jkt string) (*Response, error) {
	req := &Request{GrantType: "refresh_token", Form: url.Values{"refresh_token": {raw}}, Client: c}
	if jkt != "" {
		req.Proof = &dpop.Proof{JKT: jkt}
	}
	g.Issuer = f.i
	resp, err := g.Exchange(context.Background(), req)
	if resp != nil {
		f.tokens = append(f.tokens, resp.RefreshToken)
	}
	return resp, err
}

func (f *refreshFixture) revoked(t *testing.T) bool {
	t.Helper()
	g, err := f.store.GetGrant(context.Background(), f.grant)
	if err != nil {
		t.Fatal(err)
	}
	return !g.RevokedAt.IsZero()
}

// TestRefreshRetry pins each branch of the rotation grace period: the
// first token is rotated once, then presented again after a while by some
// client with some key.
func TestRefreshRetry(t *testing.T) {
	const grace = 30 * time.Second
	tests := []struct {
		name        string
		grace       time.Duration
		bound       string // the key the first token is bound to
		after       time.Duration
		useNext     bool // the client used the successor before the retry
		retryAs     string
		retryKey    string
		wantErr     string // "" for a new rotation
		wantRevoked bool
	}{
		{name: "within the window, same client", grace: grace, after: 10 * time.Second, retryAs: "app"},
		{name: "within the window, same DPoP key", grace: grace, bound: "keyA", after: 10 * time.Second, retryAs: "app", retryKey: "keyA"},
		{name: "within the window, another client", grace: grace, after: 10 * time.Second, retryAs: "other",
			wantErr: oautherr.InvalidGrant, wantRevoked: true},
		{name: "within the window, another DPoP key", grace: grace, bound: "keyA", after: 10 * time.Second, retryAs: "app", retryKey: "keyB",
			wantErr: oautherr.InvalidGrant, wantRevoked: true},
		{name: "within the window, no DPoP proof for a bound token", grace: grace, bound: "keyA", after: 10 * time.Second, retryAs: "app",
			wantErr: oautherr.InvalidGrant, wantRevoked: true},
		{name: "after the window", grace: grace, after: 31 * time.Second, retryAs: "app",
			wantErr: oautherr.InvalidGrant, wantRevoked: true},
		{name: "grace turned off", grace: 0, after: time.Second, retryAs: "app",
			wantErr: oautherr.InvalidGrant, wantRevoked: true},
		{name: "within the window, successor already used", grace: grace, after: 10 * time.Second, useNext: true, retryAs: "app",
			wantErr: oautherr.InvalidGrant, wantRevoked: true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := newRefreshFixture(t, tt.bound)
			g := RefreshToken{Grace: tt.grace}
			first, err := f.refresh(g, f.app, f.first, tt.bound)
			if err != nil {
				t.Fatalf("first rotation: %v", err)
			}
			if tt.useNext {
				if _, err := f.refresh(g, f.app, first.RefreshToken, tt.bound); err != nil {
					t.Fatalf("rotating the successor: %v", err)
				}
			}
			f.now = f.now.Add(tt.after)
			client := map[string]*storage.Client{"app": f.app, "other": f.other}[tt.retryAs]
			retry, err := f.refresh(g, client, f.first, tt.retryKey)
			if got := oautherr.Code(err); got != tt.wantErr {
				t.Fatalf("retry: error %v, want code %q", err, tt.wantErr)
			}
			if got := f.revoked(t); got != tt.wantRevoked {
				t.Fatalf("grant revoked = %v, want %v", got, tt.wantRevoked)
			}
			if tt.wantErr != "" {
				return
			}
			if retry.RefreshToken == "" || retry.RefreshToken == first.RefreshToken || retry.AccessToken == "" {
				t.Fatalf("retry returned %+v, want a new refresh and access token", retry)
			}
			// The chain goes on from the retry's token ...
			if _, err := f.refresh(g, f.app, retry.RefreshToken, tt.retryKey); err != nil {
				t.Fatalf("the retried successor does not rotate: %v", err)
			}
			if f.revoked(t) {
				t.Fatal("rotating the retried successor revoked the grant")
			}
			// ... and the successor the lost response carried is spent:
			// presenting it is reuse.
			if _, err := f.refresh(g, f.app, first.RefreshToken, tt.retryKey); oautherr.Code(err) != oautherr.InvalidGrant || !f.revoked(t) {
				t.Fatalf("the replaced successor was accepted or did not revoke: %v", err)
			}
		})
	}
}

// TestRefreshUnusedWrongKey: an unused token presented with the wrong key
// is refused without revoking, as before (it is not reuse).
func TestRefreshUnusedWrongKey(t *testing.T) {
	f := newRefreshFixture(t, "keyA")
	_, err := f.refresh(RefreshToken{Grace: 30 * time.Second}, f.app, f.first, "keyB")
	if oautherr.Code(err) != oautherr.InvalidGrant || f.revoked(t) {
		t.Fatalf("got %v, revoked %v; want invalid_grant and the grant alive", err, f.revoked(t))
	}
}

// TestRefreshRetryConcurrent: several requests with one refresh token at
// once, before its first rotation or after it (a client retrying in
// parallel, or an attacker racing it). Requests that overlap race on the
// store: one wins, the others get the race error; a request that starts
// after another committed is a retry and replaces its token. Either way
// the grant lives on with exactly one usable refresh token.
func TestRefreshRetryConcurrent(t *testing.T) {
	for _, rotatedFirst := range []bool{false, true} {
		t.Run(map[bool]string{false: "first rotation", true: "retries"}[rotatedFirst], func(t *testing.T) {
			f := newRefreshFixture(t, "")
			g := RefreshToken{Issuer: f.i, Grace: 30 * time.Second}
			if rotatedFirst {
				if _, err := f.refresh(g, f.app, f.first, ""); err != nil {
					t.Fatal(err)
				}
			}
			const n = 8
			errs := make([]error, n)
			resps := make([]*Response, n)
			var wg sync.WaitGroup
			for k := range n {
				wg.Go(func() {
					resps[k], errs[k] = g.Exchange(context.Background(), &Request{GrantType: "refresh_token", Form: url.Values{"refresh_token": {f.first}}, Client: f.app})
				})
			}
			wg.Wait()
			var issued []string
			for k, err := range errs {
				switch {
				case err == nil:
					issued = append(issued, resps[k].RefreshToken)
				case err != errRefreshRaced:
					t.Fatalf("request %d: %v, want a rotation or the race error", k, err)
				}
			}
			if len(issued) == 0 || f.revoked(t) {
				t.Fatalf("%d rotations, revoked %v; want at least one and the grant alive", len(issued), f.revoked(t))
			}
			live := 0
			for _, raw := range issued {
				rt, err := f.store.GetRefreshToken(context.Background(), storage.Hash(raw))
				if err != nil {
					t.Fatal(err)
				}
				if rt.UsedAt.IsZero() {
					live++
					if _, err := f.refresh(g, f.app, raw, ""); err != nil {
						t.Fatalf("the live token does not rotate: %v", err)
					}
				}
			}
			if live != 1 {
				t.Fatalf("%d live refresh tokens after %d rotations, want 1", live, len(issued))
			}
		})
	}
}

// TestRefreshBindsUnboundChain: a public client's refresh token got
// without a proof is bound by the first refresh that sends one (RFC 9449
// §5): its successor refreshes only with that key. One refreshed without
// a proof stays unbound; a confidential client's chain is never bound.
func TestRefreshBindsUnboundChain(t *testing.T) {
	f := newRefreshFixture(t, "")
	next, err := f.refresh(RefreshToken{}, f.app, f.first, "")
	if err != nil {
		t.Fatal(err)
	}
	if rt, err := f.store.GetRefreshToken(context.Background(), storage.Hash(next.RefreshToken)); err != nil || rt.JKT != "" {
		t.Fatalf("a refresh without a proof bound the successor: %+v %v", rt, err)
	}
	next, err = f.refresh(RefreshToken{}, f.app, next.RefreshToken, "keyA")
	if err != nil {
		t.Fatal(err)
	}
	if rt, err := f.store.GetRefreshToken(context.Background(), storage.Hash(next.RefreshToken)); err != nil || rt.JKT != "keyA" {
		t.Fatalf("the first refresh with a proof left the successor unbound: %+v %v", rt, err)
	}
	for _, key := range []string{"", "keyB"} {
		if _, err := f.refresh(RefreshToken{}, f.app, next.RefreshToken, key); oautherr.Code(err) != oautherr.InvalidGrant {
			t.Fatalf("the bound successor refreshed with key %q: %v", key, err)
		}
	}
	if _, err := f.refresh(RefreshToken{}, f.app, next.RefreshToken, "keyA"); err != nil {
		t.Fatalf("the bound successor with its key: %v", err)
	}

	conf := newRefreshFixture(t, "")
	conf.app.Public = false
	next, err = conf.refresh(RefreshToken{}, conf.app, conf.first, "keyA")
	if err != nil {
		t.Fatal(err)
	}
	if rt, err := conf.store.GetRefreshToken(context.Background(), storage.Hash(next.RefreshToken)); err != nil || rt.JKT != "" {
		t.Fatalf("a confidential client's chain was bound: %+v %v", rt, err)
	}
}

// TestRefreshRetryKeepsBinding: once the first refresh with a proof bound
// a public client's chain (RFC 9449 §5), the unbound token it rotated is
// no way around the key: within the grace period a retry of it must prove
// the key its successor is bound to. A thief presenting it without the
// key, or with another, is reuse and revokes the grant; the client that
// lost its response retries with its key and gets a new rotation.
func TestRefreshRetryKeepsBinding(t *testing.T) {
	g := RefreshToken{Grace: 30 * time.Second}
	for _, key := range []string{"", "keyB"} {
		t.Run("thief with key "+key, func(t *testing.T) {
			f := newRefreshFixture(t, "")
			if _, err := f.refresh(g, f.app, f.first, "keyA"); err != nil {
				t.Fatal(err)
			}
			f.now = f.now.Add(5 * time.Second)
			resp, err := f.refresh(g, f.app, f.first, key)
			if oautherr.Code(err) != oautherr.InvalidGrant || !f.revoked(t) {
				t.Fatalf("the rotated unbound token retried with key %q: %+v %v, revoked %v; want reuse", key, resp, err, f.revoked(t))
			}
		})
	}
	t.Run("the client with its key", func(t *testing.T) {
		f := newRefreshFixture(t, "")
		if _, err := f.refresh(g, f.app, f.first, "keyA"); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(5 * time.Second)
		resp, err := f.refresh(g, f.app, f.first, "keyA")
		if err != nil || f.revoked(t) {
			t.Fatalf("the client's retry with its key: %v, revoked %v", err, f.revoked(t))
		}
		if rt, err := f.store.GetRefreshToken(context.Background(), storage.Hash(resp.RefreshToken)); err != nil || rt.JKT != "keyA" {
			t.Fatalf("the retried successor: %+v %v, want bound to keyA", rt, err)
		}
	})
	t.Run("a chain refreshed without a proof", func(t *testing.T) {
		f := newRefreshFixture(t, "")
		if _, err := f.refresh(g, f.app, f.first, ""); err != nil {
			t.Fatal(err)
		}
		f.now = f.now.Add(5 * time.Second)
		if _, err := f.refresh(g, f.app, f.first, ""); err != nil || f.revoked(t) {
			t.Fatalf("a retry of an unbound chain: %v, revoked %v", err, f.revoked(t))
		}
	})
}
