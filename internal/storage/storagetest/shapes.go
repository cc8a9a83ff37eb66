package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// testAtomicShapes runs StartGrant and RotateRefreshToken with every mix
// of a first refresh token and zero to two events, in turn on one store,
// so that a statement built for one mix and reused for another (its
// parameters numbered for other statements) shows as a row stored with
// another row's values, or not at all.
func testAtomicShapes(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", CreatedAt: now()}), "client")
	events := func(prefix string, n int) []storage.AuditEvent {
		var evs []storage.AuditEvent
		for i := range n {
			e := event(fmt.Sprintf("%s-e%d", prefix, i), "shape")
			e.Detail, e.IP, e.UserID = prefix+fmt.Sprint(i), "192.0.2."+fmt.Sprint(i+1), "u-"+prefix
			evs = append(evs, e)
		}
		return evs
	}
	stored := 0
	for round := range 2 {
		for _, withFirst := range []bool{true, false} {
			for n := range 3 {
				id := fmt.Sprintf("g-%d-%t-%d", round, withFirst, n)
				g := storage.Grant{ID: id, ClientID: "notes", UserID: "u-" + id, Scopes: []string{"openid", id}, AuthTime: now().Add(-time.Minute),
					CreatedAt: now(), ExpiresAt: now().Add(time.Hour), Claims: `{"c":"` + id + `"}`, AMR: []string{"pwd", "otp"}}
				var first *storage.RefreshToken
				if withFirst {
					rt := newRefresh("rt-" + id)
					rt.GrantID, rt.UserID, rt.Scopes = id, "u-"+id, []string{id}
					first = &rt
				}
				evs := events(id, n) // built once: their times are compared
				mustNil(t, s.StartGrant(ctx, g, first, evs...), "start "+id)
				stored += n
				checkGrant(t, s, g)
				if first != nil {
					checkRefresh(t, s, *first)
				}
				checkEvents(t, s, evs)
			}
		}
	}
	if got := eventCount(t, s, "shape"); got != stored {
		t.Fatalf("%d events stored, want %d", got, stored)
	}

	// Rotations, each mix twice; and a rotation of the used token, whose
	// events are not stored.
	prev := newRefresh("chain-0")
	mustNil(t, s.CreateRefreshToken(ctx, prev), "first of chain")
	for i := 1; i <= 6; i++ {
		next := newRefresh(fmt.Sprintf("chain-%d", i))
		next.Scopes, next.JKT = []string{next.Hash}, "jkt-"+next.Hash
		prefix := fmt.Sprintf("rot%d", i)
		evs := events(prefix, i%3)
		mustNil(t, s.RotateRefreshToken(ctx, prev.Hash, next, now(), evs...), "rotate "+prefix)
		checkRefresh(t, s, next)
		checkEvents(t, s, evs)
		old, err := s.GetRefreshToken(ctx, prev.Hash)
		mustNil(t, err, "rotated")
		if old.NextHash != next.Hash || old.UsedAt.IsZero() {
			t.Fatalf("rotated %s: next %q used %v", prev.Hash, old.NextHash, old.UsedAt)
		}
		again := newRefresh(fmt.Sprintf("again-%d", i))
		wantErr(t, s.RotateRefreshToken(ctx, prev.Hash, again, now(), events("again"+prefix, i%3)...), storage.ErrAlreadyUsed, "rotate used "+prefix)
		_, err = s.GetRefreshToken(ctx, again.Hash)
		wantErr(t, err, storage.ErrNotFound, "successor of a used token")
		prev = next
	}
	if got := eventCount(t, s, "shape"); got != stored+1+2+0+1+2+0 {
		t.Fatalf("%d events after rotations, want %d", got, stored+6)
	}
}

func checkGrant(t *testing.T, s storage.Storage, want storage.Grant) {
	t.Helper()
	got, err := s.GetGrant(ctx, want.ID)
	mustNil(t, err, "grant "+want.ID)
	if got.ClientID != want.ClientID || got.UserID != want.UserID || !slices.Equal(got.Scopes, want.Scopes) || got.Claims != want.Claims ||
		!slices.Equal(got.AMR, want.AMR) || !got.AuthTime.Equal(want.AuthTime) || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.RevokedAt.IsZero() {
		t.Fatalf("grant %+v, want %+v", got, want)
	}
}

func checkRefresh(t *testing.T, s storage.Storage, want storage.RefreshToken) {
	t.Helper()
	got, err := s.GetRefreshToken(ctx, want.Hash)
	mustNil(t, err, "refresh token "+want.Hash)
	if got.GrantID != want.GrantID || got.ClientID != want.ClientID || got.UserID != want.UserID || !slices.Equal(got.Scopes, want.Scopes) ||
		got.JKT != want.JKT || !got.ExpiresAt.Equal(want.ExpiresAt) || !got.AuthTime.Equal(want.AuthTime) || !got.UsedAt.IsZero() || got.NextHash != "" {
		t.Fatalf("refresh token %+v, want %+v", got, want)
	}
}

func checkEvents(t *testing.T, s storage.Storage, want []storage.AuditEvent) {
	t.Helper()
	for _, w := range want {
		evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Type: "shape", UserID: w.UserID, Limit: 100})
		mustNil(t, err, "events")
		found := false
		for _, e := range evs {
			if e.ID == w.ID {
				found = e.Detail == w.Detail && e.IP == w.IP && e.ClientID == w.ClientID && e.Time.UnixMilli() == w.Time.UnixMilli()
				if !found {
					t.Fatalf("event %+v, want %+v", e, w)
				}
			}
		}
		if !found {
			t.Fatalf("event %s not stored", w.ID)
		}
	}
}
