package storagetest

import (
	"errors"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

func newIAT(id string, maxUses int) storage.InitialAccessToken {
	return storage.InitialAccessToken{ID: id, Hash: storage.Hash("token " + id), Label: "for " + id, CreatedBy: "alice",
		CreatedAt: now(), MaxUses: maxUses}
}

// testInitialAccessTokens: a token is stored by hash, listed newest first,
// counts its uses up to its maximum, and stops at its expiry or its
// revocation, each told apart by State.
func testInitialAccessTokens(t *testing.T, s storage.Storage) {
	a := newIAT("a", 2)
	a.CreatedAt = now().Add(-time.Hour)
	mustNil(t, s.CreateInitialAccessToken(ctx, a), "create")
	wantErr(t, s.CreateInitialAccessToken(ctx, a), storage.ErrAlreadyExists, "same id again")
	dupHash := newIAT("other", 0)
	dupHash.Hash = a.Hash
	wantErr(t, s.CreateInitialAccessToken(ctx, dupHash), storage.ErrAlreadyExists, "same hash again")

	got, err := s.GetInitialAccessToken(ctx, a.Hash)
	mustNil(t, err, "get")
	if got.ID != "a" || got.Label != "for a" || got.CreatedBy != "alice" || got.MaxUses != 2 || got.Uses != 0 ||
		!got.ExpiresAt.IsZero() || !got.RevokedAt.IsZero() || got.State(now()) != storage.TokenLive {
		t.Fatalf("get: %+v", *got)
	}
	sameTime(t, got.CreatedAt, a.CreatedAt, "created")
	_, err = s.GetInitialAccessToken(ctx, storage.Hash("nosuch"))
	wantErr(t, err, storage.ErrNotFound, "get unknown")

	for want := 1; want <= 2; want++ {
		got, err = s.UseInitialAccessToken(ctx, a.Hash, now())
		mustNil(t, err, "use")
		if got.Uses != want {
			t.Fatalf("after use %d: uses=%d", want, got.Uses)
		}
	}
	got, err = s.UseInitialAccessToken(ctx, a.Hash, now())
	wantErr(t, err, storage.ErrAlreadyUsed, "use beyond the maximum")
	if got == nil || got.Uses != 2 || got.State(now()) != storage.TokenUsedUp {
		t.Fatalf("used up: %+v", got)
	}
	_, err = s.UseInitialAccessToken(ctx, storage.Hash("nosuch"), now())
	wantErr(t, err, storage.ErrNotFound, "use unknown")

	exp := newIAT("exp", 0)
	exp.ExpiresAt = now().Add(time.Minute)
	mustNil(t, s.CreateInitialAccessToken(ctx, exp), "create expiring")
	got, err = s.UseInitialAccessToken(ctx, exp.Hash, now())
	mustNil(t, err, "use before expiry")
	sameTime(t, got.ExpiresAt, exp.ExpiresAt, "expires")
	got, err = s.UseInitialAccessToken(ctx, exp.Hash, exp.ExpiresAt)
	wantErr(t, err, storage.ErrAlreadyUsed, "use at expiry")
	if got.Uses != 1 || got.State(exp.ExpiresAt) != storage.TokenExpired {
		t.Fatalf("expired: %+v", *got)
	}

	unl := newIAT("unlimited", 0)
	mustNil(t, s.CreateInitialAccessToken(ctx, unl), "create unlimited")
	for range 3 {
		_, err = s.UseInitialAccessToken(ctx, unl.Hash, now())
		mustNil(t, err, "use unlimited")
	}
	revoked := now().Add(-time.Second)
	mustNil(t, s.RevokeInitialAccessToken(ctx, "unlimited", revoked), "revoke")
	mustNil(t, s.RevokeInitialAccessToken(ctx, "unlimited", now()), "revoke again")
	got, err = s.UseInitialAccessToken(ctx, unl.Hash, now())
	wantErr(t, err, storage.ErrAlreadyUsed, "use revoked")
	if got.Uses != 3 || got.State(now()) != storage.TokenRevoked {
		t.Fatalf("revoked: %+v", *got)
	}
	sameTime(t, got.RevokedAt, revoked, "revoked at (the first revocation)")
	wantErr(t, s.RevokeInitialAccessToken(ctx, "nosuch", now()), storage.ErrNotFound, "revoke unknown")

	all, err := s.ListInitialAccessTokens(ctx)
	mustNil(t, err, "list")
	if len(all) != 3 || all[2].ID != "a" || all[2].Uses != 2 {
		t.Fatalf("list, newest first: %+v", all)
	}
}

// testInitialAccessTokenRace: concurrent registrations with a token of
// one use register exactly one client; with three uses, exactly three.
func testInitialAccessTokenRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateInitialAccessToken(ctx, newIAT("once", 1)), "create")
	onlyOneWins(t, 24, func(int) error {
		_, err := s.UseInitialAccessToken(ctx, storage.Hash("token once"), now())
		return err
	})
	mustNil(t, s.CreateInitialAccessToken(ctx, newIAT("thrice", 3)), "create")
	var wins, losses atomic.Int32
	var wg sync.WaitGroup
	for range 24 {
		wg.Go(func() {
			_, err := s.UseInitialAccessToken(ctx, storage.Hash("token thrice"), now())
			switch {
			case err == nil:
				wins.Add(1)
			case errors.Is(err, storage.ErrAlreadyUsed):
				losses.Add(1)
			default:
				t.Errorf("use: %v", err)
			}
		})
	}
	wg.Wait()
	got, err := s.GetInitialAccessToken(ctx, storage.Hash("token thrice"))
	mustNil(t, err, "get")
	if wins.Load() != 3 || losses.Load() != 21 || got.Uses != 3 {
		t.Fatalf("wins=%d losses=%d uses=%d, want 3, 21, 3", wins.Load(), losses.Load(), got.Uses)
	}
}

// testPruneInitialAccessTokens: tokens revoked or expired longer ago than
// the audit retention go; live ones, used-up ones and those that ended
// within the retention stay; without a retention every token stays.
func testPruneInitialAccessTokens(t *testing.T, s storage.Storage) {
	at, day := now(), 24*time.Hour
	retention := 30 * day
	add := func(id string, expires, revoked time.Time, maxUses, uses int) {
		tok := newIAT(id, maxUses)
		tok.CreatedAt, tok.ExpiresAt, tok.RevokedAt, tok.Uses = at.Add(-100*day), expires, revoked, uses
		mustNil(t, s.CreateInitialAccessToken(ctx, tok), "create "+id)
	}
	var never time.Time
	add("live", never, never, 0, 0)
	add("live-expiring", at.Add(day), never, 0, 0)
	add("used-up-long-ago", never, never, 1, 1)
	add("expired-long-ago", at.Add(-31*day), never, 0, 0)
	add("expired-recently", at.Add(-29*day), never, 0, 0)
	add("revoked-long-ago", never, at.Add(-31*day), 0, 0)
	add("expired-long-ago-revoked-since", at.Add(-40*day), at.Add(-day), 0, 0) // it ended at its expiry
	add("revoked-recently", never, at.Add(-29*day), 0, 0)

	n, err := s.Prune(ctx, storage.Prune{Now: at})
	mustNil(t, err, "prune without a retention")
	if n != 0 {
		t.Fatalf("pruning without a retention removed %d rows, want 0", n)
	}
	n, err = s.Prune(ctx, storage.Prune{Now: at, AuditRetention: retention, Batch: 1})
	mustNil(t, err, "prune")
	if n != 3 {
		t.Errorf("pruned %d rows, want 3", n)
	}
	for id, want := range map[string]error{
		"live": nil, "live-expiring": nil, "used-up-long-ago": nil, "expired-recently": nil, "revoked-recently": nil,
		"expired-long-ago": storage.ErrNotFound, "revoked-long-ago": storage.ErrNotFound, "expired-long-ago-revoked-since": storage.ErrNotFound,
	} {
		if _, err := s.GetInitialAccessToken(ctx, storage.Hash("token "+id)); !errors.Is(err, want) {
			t.Errorf("token %s after pruning: got %v, want %v", id, err, want)
		}
	}
}
