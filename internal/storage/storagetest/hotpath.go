package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// The token endpoint's combined store calls: one read of a refresh token
// with its grant and user, one atomic write of a grant with its first
// refresh token, a rotation with its audit event.

func event(id, typ string) storage.AuditEvent {
	return storage.AuditEvent{ID: id, Time: now(), Type: typ, UserID: "u1", ClientID: "notes", Detail: "scope=openid",
		ExpiresAt: now().Add(time.Hour)}
}

// eventCount is how many stored events are of type typ.
func eventCount(t *testing.T, s storage.Storage, typ string) int {
	t.Helper()
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Type: typ, Limit: 1000})
	mustNil(t, err, "list events")
	return len(evs)
}

func testRefreshTokenChain(t *testing.T, s storage.Storage) {
	u := storage.User{ID: "u1", Username: "amal", Name: "Amal", Email: "amal@example.com", CreatedAt: now(),
		Profile: storage.Profile{Locale: "ar-JO", UpdatedAt: now()}}
	mustNil(t, s.CreateUser(ctx, u), "user")
	g := storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", Scopes: []string{"openid"}, AuthTime: now(), CreatedAt: now(),
		ExpiresAt: now().Add(time.Hour), Claims: `{"id_token":{"name":null}}`, AMR: []string{"pwd", "otp"}}
	mustNil(t, s.CreateGrant(ctx, g), "grant")
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("r1")), "token")

	c, err := s.GetRefreshTokenChain(ctx, "r1")
	mustNil(t, err, "chain")
	want, _ := s.GetRefreshToken(ctx, "r1")
	if !slices.Equal(c.Scopes, want.Scopes) || c.Hash != "r1" || c.GrantID != "g1" || c.JKT != want.JKT || !c.ExpiresAt.Equal(want.ExpiresAt) {
		t.Fatalf("chain token %+v, want %+v", c.RefreshToken, *want)
	}
	if c.Grant == nil || c.Grant.ID != "g1" || !slices.Equal(c.Grant.AMR, g.AMR) || c.Grant.Claims != g.Claims || !c.Grant.RevokedAt.IsZero() {
		t.Fatalf("chain grant %+v, want %+v", c.Grant, g)
	}
	if c.User == nil || c.User.Username != "amal" || c.User.Profile.Locale != "ar-JO" || c.User.Disabled {
		t.Fatalf("chain user %+v", c.User)
	}

	// Nothing is checked: a revoked grant and a disabled user come as
	// they are, for the caller to refuse.
	mustNil(t, s.RevokeGrant(ctx, "g1", now()), "revoke")
	mustNil(t, s.SetUserDisabled(ctx, "u1", true), "disable")
	c, err = s.GetRefreshTokenChain(ctx, "r1")
	mustNil(t, err, "chain after revocation")
	if c.Grant == nil || c.Grant.RevokedAt.IsZero() || c.User == nil || !c.User.Disabled {
		t.Fatalf("chain after revocation: grant %+v user %+v", c.Grant, c.User)
	}

	// A grant or user that no longer exists is nil.
	orphan := newRefresh("r2")
	orphan.GrantID, orphan.UserID = "gone", "gone"
	mustNil(t, s.CreateRefreshToken(ctx, orphan), "orphan token")
	c, err = s.GetRefreshTokenChain(ctx, "r2")
	mustNil(t, err, "orphan chain")
	if c.Grant != nil || c.User != nil || c.Hash != "r2" {
		t.Fatalf("orphan chain: token %+v grant %+v user %+v", c.RefreshToken, c.Grant, c.User)
	}
	mustNil(t, s.DeleteUser(ctx, "u1", now()), "delete user")
	c, err = s.GetRefreshTokenChain(ctx, "r1")
	if err == nil && c.User != nil {
		t.Fatalf("chain of a deleted user's token has user %+v", c.User)
	}

	_, err = s.GetRefreshTokenChain(ctx, "missing")
	wantErr(t, err, storage.ErrNotFound, "unknown token")
}

func testStartGrant(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", CreatedAt: now()}), "client")
	g := storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", Scopes: []string{"openid"}, AuthTime: now(), CreatedAt: now(),
		ExpiresAt: now().Add(time.Hour), AMR: []string{"hwk"}}
	first := newRefresh("r1")
	mustNil(t, s.StartGrant(ctx, g, &first, event("e1", "token_issued")), "start")
	got, err := s.GetGrant(ctx, "g1")
	mustNil(t, err, "grant")
	if got.UserID != "u1" || !slices.Equal(got.AMR, g.AMR) || !got.RevokedAt.IsZero() {
		t.Fatalf("grant %+v", got)
	}
	_, err = s.GetRefreshToken(ctx, "r1")
	mustNil(t, err, "first token")
	if n := eventCount(t, s, "token_issued"); n != 1 {
		t.Fatalf("%d events, want 1", n)
	}

	// Without a refresh token or event: the grant alone.
	mustNil(t, s.StartGrant(ctx, storage.Grant{ID: "g2", ClientID: "notes", UserID: "u1", ExpiresAt: now().Add(time.Hour)}, nil), "start bare")
	_, err = s.GetGrant(ctx, "g2")
	mustNil(t, err, "bare grant")

	// A grant a replay created revoked stays revoked; the token is stored
	// under it, dead on arrival.
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g3", CreatedAt: now(), ExpiresAt: now().Add(time.Hour), RevokedAt: now()}), "revoked grant")
	late := newRefresh("r3")
	late.GrantID = "g3"
	mustNil(t, s.StartGrant(ctx, storage.Grant{ID: "g3", ClientID: "notes", UserID: "u1", ExpiresAt: now().Add(time.Hour)}, &late), "start late")
	got, _ = s.GetGrant(ctx, "g3")
	if got.RevokedAt.IsZero() {
		t.Fatal("StartGrant un-revoked a grant")
	}
	_, err = s.GetRefreshToken(ctx, "r3")
	mustNil(t, err, "token under the revoked grant")

	// All or nothing: a token hash taken fails the whole change.
	dup := newRefresh("r1")
	dup.GrantID = "g4"
	err = s.StartGrant(ctx, storage.Grant{ID: "g4", ClientID: "notes", UserID: "u1", ExpiresAt: now().Add(time.Hour)}, &dup, event("e4", "half"))
	wantErr(t, err, storage.ErrAlreadyExists, "start with a taken token hash")
	_, err = s.GetGrant(ctx, "g4")
	wantErr(t, err, storage.ErrNotFound, "grant of a failed start")
	if n := eventCount(t, s, "half"); n != 0 {
		t.Fatalf("failed start stored %d events", n)
	}
}

// testCodeRedemptionRace redeems one code many times at once, as the
// token endpoint does: the one that consumes it starts the grant, every
// other revokes it (creating it revoked if it is not there yet). Exactly
// one grant results, with exactly one refresh token, and it is revoked
// whichever order the writes came in.
func testCodeRedemptionRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateClient(ctx, storage.Client{ID: newCode("race").ClientID, Name: "Racer", CreatedAt: now()}), "client")
	mustNil(t, s.CreateAuthCode(ctx, newCode("race")), "code")
	const n = 12
	var wg sync.WaitGroup
	var mu sync.Mutex
	wins := 0
	for i := range n {
		wg.Go(func() {
			c, _, err := s.ConsumeAuthCode(ctx, "race", now())
			switch {
			case err == nil:
				mu.Lock()
				wins++
				mu.Unlock()
				first := newRefresh(fmt.Sprintf("rt%d", i))
				first.GrantID = c.GrantID
				err = s.StartGrant(ctx, storage.Grant{ID: c.GrantID, ClientID: c.ClientID, UserID: c.UserID, CreatedAt: now(),
					ExpiresAt: now().Add(time.Hour)}, &first, event(fmt.Sprintf("e%d", i), "token_issued"))
			case errors.Is(err, storage.ErrAlreadyUsed):
				err = revokeOrCreateRevoked(s, c.GrantID)
			}
			if err != nil {
				t.Errorf("redemption %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 {
		t.Fatalf("%d redemptions won, want 1", wins)
	}
	g, err := s.GetGrant(ctx, "g-race")
	mustNil(t, err, "grant")
	if g.RevokedAt.IsZero() {
		t.Fatal("grant of a replayed code is not revoked")
	}
	tokens := 0
	for i := range n {
		if _, err := s.GetRefreshToken(ctx, fmt.Sprintf("rt%d", i)); err == nil {
			tokens++
		}
	}
	if tokens != 1 || eventCount(t, s, "token_issued") != 1 {
		t.Fatalf("%d refresh tokens, %d events, want 1 and 1", tokens, eventCount(t, s, "token_issued"))
	}
}

// revokeOrCreateRevoked is what the token endpoint does on a replay.
func revokeOrCreateRevoked(s storage.Storage, id string) error {
	err := s.RevokeGrant(ctx, id, now())
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	err = s.CreateGrant(ctx, storage.Grant{ID: id, CreatedAt: now(), ExpiresAt: now().Add(time.Hour), RevokedAt: now()})
	if errors.Is(err, storage.ErrAlreadyExists) {
		return s.RevokeGrant(ctx, id, now())
	}
	return err
}

// testRotationEvents checks that a rotation's events are stored with it
// and only with it: of concurrent rotations of one token, exactly one
// successor and one event.
func testRotationEvents(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("r1")), "create")
	mustNil(t, s.RotateRefreshToken(ctx, "r1", newRefresh("r2"), now(), event("e1", "token_refreshed")), "rotate")
	if n := eventCount(t, s, "token_refreshed"); n != 1 {
		t.Fatalf("%d events after a rotation, want 1", n)
	}
	wantErr(t, s.RotateRefreshToken(ctx, "r1", newRefresh("r3"), now(), event("e2", "token_refreshed")), storage.ErrAlreadyUsed, "reuse")
	wantErr(t, s.RotateRefreshToken(ctx, "nope", newRefresh("r4"), now(), event("e3", "token_refreshed")), storage.ErrNotFound, "unknown")
	if n := eventCount(t, s, "token_refreshed"); n != 1 {
		t.Fatalf("%d events after failed rotations, want 1", n)
	}
	for _, h := range []string{"r3", "r4"} {
		_, err := s.GetRefreshToken(ctx, h)
		wantErr(t, err, storage.ErrNotFound, "successor of a failed rotation")
	}

	const n = 16
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("old")), "create")
	onlyOneWins(t, n, func(i int) error {
		return s.RotateRefreshToken(ctx, "old", newRefresh(fmt.Sprintf("new%d", i)), now(), event(fmt.Sprintf("race%d", i), "raced"))
	})
	stored := 0
	for i := range n {
		if _, err := s.GetRefreshToken(ctx, fmt.Sprintf("new%d", i)); err == nil {
			stored++
		}
	}
	if stored != 1 || eventCount(t, s, "raced") != 1 {
		t.Fatalf("%d successors and %d events stored, want 1 and 1", stored, eventCount(t, s, "raced"))
	}
}

// testEnrolment: one read says which second factors a user enrolled; an
// unconfirmed TOTP enrolment proves nothing, and another user's factors
// do not count.
func testEnrolment(t *testing.T, s storage.Storage) {
	want := func(user string, w storage.Enrolment, what string) {
		t.Helper()
		got, err := s.Enrolment(ctx, user)
		mustNil(t, err, what)
		if got != w {
			t.Fatalf("%s: enrolment %+v, want %+v", what, got, w)
		}
	}
	want("u1", storage.Enrolment{}, "nothing")
	mustNil(t, s.SaveTOTP(ctx, storage.TOTP{UserID: "u1", SecretSealed: "sealed", CreatedAt: now()}), "enrol")
	want("u1", storage.Enrolment{}, "unconfirmed TOTP")
	mustNil(t, s.ConfirmTOTP(ctx, "u1", "sealed", now()), "confirm")
	want("u1", storage.Enrolment{TOTP: true}, "confirmed TOTP")
	mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "cred", UserID: "u2", Credential: "{}", CreatedAt: now()}), "passkey")
	want("u2", storage.Enrolment{Passkeys: true}, "passkey")
	want("u1", storage.Enrolment{TOTP: true}, "another's passkey")
	mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "cred1", UserID: "u1", Credential: "{}", CreatedAt: now()}), "passkey of u1")
	want("u1", storage.Enrolment{TOTP: true, Passkeys: true}, "both")
	mustNil(t, s.DeleteTOTP(ctx, "u1"), "TOTP off")
	want("u1", storage.Enrolment{Passkeys: true}, "TOTP off")
}

// testConsumeAuthCodeUser: a consumed code comes with its user as stored
// (disabled included, for the caller to refuse), nil when the user is
// gone; a replay comes without one.
func testConsumeAuthCodeUser(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", Email: "amal@example.com", CreatedAt: now(),
		Profile: storage.Profile{Zoneinfo: "Asia/Amman", UpdatedAt: now()}}), "user")
	for _, h := range []string{"c1", "c2", "c3"} {
		mustNil(t, s.CreateAuthCode(ctx, newCode(h)), "code "+h)
	}
	c, u, err := s.ConsumeAuthCode(ctx, "c1", now())
	mustNil(t, err, "consume")
	if c.Hash != "c1" || u == nil || u.ID != "u1" || u.Username != "amal" || u.Profile.Zoneinfo != "Asia/Amman" || u.Disabled {
		t.Fatalf("consume: code %+v user %+v", c, u)
	}
	c, u, err = s.ConsumeAuthCode(ctx, "c1", now())
	wantErr(t, err, storage.ErrAlreadyUsed, "replay")
	if c == nil || u != nil {
		t.Fatalf("replay: code %+v user %+v", c, u)
	}
	mustNil(t, s.SetUserDisabled(ctx, "u1", true), "disable")
	_, u, err = s.ConsumeAuthCode(ctx, "c2", now())
	mustNil(t, err, "consume a disabled user's code")
	if u == nil || !u.Disabled {
		t.Fatalf("disabled user read as %+v", u)
	}
	mustNil(t, s.DeleteUser(ctx, "u1", now()), "delete user")
	c, u, err = s.ConsumeAuthCode(ctx, "c3", now())
	mustNil(t, err, "consume a deleted user's code")
	if c.Hash != "c3" || u != nil {
		t.Fatalf("deleted user's code: code %+v user %+v", c, u)
	}
}
