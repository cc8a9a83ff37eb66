package storagetest

import (
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// testTOTP: an enrolment is replaced until confirmed, confirmed only with
// the secret whose code was checked, and never replaced once active.
func testTOTP(t *testing.T, s storage.Storage) {
	_, err := s.GetTOTP(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "no TOTP yet")
	mustNil(t, s.SaveTOTP(ctx, storage.TOTP{UserID: "u1", SecretSealed: "sealed-a", CreatedAt: now()}), "enrol")
	mustNil(t, s.SaveTOTP(ctx, storage.TOTP{UserID: "u1", SecretSealed: "sealed-b", CreatedAt: now()}), "enrol again before confirming")
	wantErr(t, s.ConfirmTOTP(ctx, "u1", "sealed-a", now()), storage.ErrNotFound, "confirm a replaced secret")
	got, err := s.GetTOTP(ctx, "u1")
	mustNil(t, err, "get")
	if got.SecretSealed != "sealed-b" || !got.ConfirmedAt.IsZero() {
		t.Fatalf("pending enrolment: %+v", got)
	}
	mustNil(t, s.ConfirmTOTP(ctx, "u1", "sealed-b", now()), "confirm")
	wantErr(t, s.ConfirmTOTP(ctx, "u1", "sealed-b", now()), storage.ErrNotFound, "confirm twice")
	wantErr(t, s.SaveTOTP(ctx, storage.TOTP{UserID: "u1", SecretSealed: "sealed-c", CreatedAt: now()}), storage.ErrAlreadyExists, "enrol over an active TOTP")
	got, err = s.GetTOTP(ctx, "u1")
	mustNil(t, err, "get")
	if got.SecretSealed != "sealed-b" || got.ConfirmedAt.IsZero() {
		t.Fatalf("active TOTP changed: %+v", got)
	}
	mustNil(t, s.DeleteTOTP(ctx, "u1"), "turn off")
	wantErr(t, s.DeleteTOTP(ctx, "u1"), storage.ErrNotFound, "turn off twice")
	mustNil(t, s.SaveTOTP(ctx, storage.TOTP{UserID: "u1", SecretSealed: "sealed-d", CreatedAt: now()}), "enrol after turning off")
}

// testRecoveryCodes: codes are per user, spent once, and replaced whole.
func testRecoveryCodes(t *testing.T, s storage.Storage) {
	mustNil(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"h1", "h2", "h3"}, now()), "store")
	mustNil(t, s.ReplaceRecoveryCodes(ctx, "u2", []string{"h1", "x2"}, now()), "store another user's")
	n, err := s.CountRecoveryCodes(ctx, "u1")
	mustNil(t, err, "count")
	if n != 3 {
		t.Fatalf("count = %d, want 3", n)
	}
	mustNil(t, s.UseRecoveryCode(ctx, "u1", "h1", now()), "use")
	wantErr(t, s.UseRecoveryCode(ctx, "u1", "h1", now()), storage.ErrAlreadyUsed, "use twice")
	wantErr(t, s.UseRecoveryCode(ctx, "u1", "x2", now()), storage.ErrNotFound, "use another user's code")
	wantErr(t, s.UseRecoveryCode(ctx, "u1", "nope", now()), storage.ErrNotFound, "use an unknown code")
	mustNil(t, s.UseRecoveryCode(ctx, "u2", "h1", now()), "the same hash of another user is its own")
	if n, _ := s.CountRecoveryCodes(ctx, "u1"); n != 2 {
		t.Fatalf("count after use = %d, want 2", n)
	}
	mustNil(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"h4", "h5"}, now()), "regenerate")
	wantErr(t, s.UseRecoveryCode(ctx, "u1", "h2", now()), storage.ErrNotFound, "use a code replaced")
	if n, _ := s.CountRecoveryCodes(ctx, "u1"); n != 2 {
		t.Fatalf("count after regenerating = %d, want 2", n)
	}
	mustNil(t, s.DeleteRecoveryCodes(ctx, "u1"), "delete")
	if n, _ := s.CountRecoveryCodes(ctx, "u1"); n != 0 {
		t.Fatalf("count after delete = %d", n)
	}
	if n, _ := s.CountRecoveryCodes(ctx, "u2"); n != 1 {
		t.Fatalf("another user's codes touched: %d", n)
	}
}

// testRecoveryCodeRace: of many concurrent uses of one code, one wins.
func testRecoveryCodeRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"race"}, now()), "store")
	onlyOneWins(t, 24, func(int) error { return s.UseRecoveryCode(ctx, "u1", "race", now()) })
}

// testPasskeys: several per user, named, deleted only by their owner,
// credential ids unique across users.
func testPasskeys(t *testing.T, s storage.Storage) {
	for i, id := range []string{"cred-a", "cred-b"} {
		p := storage.Passkey{ID: id, UserID: "u1", Name: "key " + id, Credential: `{"id":"` + id + `"}`, SignCount: 5,
			CreatedAt: now().Add(time.Duration(i) * time.Second)}
		mustNil(t, s.CreatePasskey(ctx, p), "create "+id)
	}
	wantErr(t, s.CreatePasskey(ctx, storage.Passkey{ID: "cred-a", UserID: "u2", CreatedAt: now()}), storage.ErrAlreadyExists, "register a known credential id to another user")
	l, err := s.ListPasskeys(ctx, "u1")
	mustNil(t, err, "list")
	if len(l) != 2 || l[0].ID != "cred-a" || l[1].ID != "cred-b" || l[0].SignCount != 5 || l[0].Credential != `{"id":"cred-a"}` {
		t.Fatalf("list: %+v", l)
	}
	if l, _ := s.ListPasskeys(ctx, "u2"); len(l) != 0 {
		t.Fatalf("another user's list: %+v", l)
	}
	wantErr(t, s.RenamePasskey(ctx, "u2", "cred-a", "mine"), storage.ErrNotFound, "rename another user's passkey")
	mustNil(t, s.RenamePasskey(ctx, "u1", "cred-a", "Laptop"), "rename")
	p, err := s.GetPasskey(ctx, "cred-a")
	mustNil(t, err, "get")
	if p.Name != "Laptop" || p.UserID != "u1" || !p.LastUsedAt.IsZero() {
		t.Fatalf("get: %+v", p)
	}
	wantErr(t, s.DeletePasskey(ctx, "u2", "cred-b"), storage.ErrNotFound, "delete another user's passkey")
	mustNil(t, s.DeletePasskey(ctx, "u1", "cred-b"), "delete")
	_, err = s.GetPasskey(ctx, "cred-b")
	wantErr(t, err, storage.ErrNotFound, "deleted passkey")
}

// testPasskeyCounter: the signature counter must grow (WebAuthn §6.1.1);
// a count that does not is refused and changes nothing.
func testPasskeyCounter(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "c", UserID: "u1", Credential: "v0", SignCount: 10, CreatedAt: now()}), "create")
	mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "zero", UserID: "u1", Credential: "v0", CreatedAt: now()}), "create counterless")
	tests := []struct {
		name  string
		id    string
		count uint32
		want  error
	}{
		{"grows", "c", 11, nil},
		{"same count again", "c", 11, storage.ErrAlreadyUsed},
		{"goes back", "c", 3, storage.ErrAlreadyUsed},
		{"back to zero", "c", 0, storage.ErrAlreadyUsed},
		{"jumps", "c", 4_000_000_000, nil},
		{"counterless authenticator", "zero", 0, nil},
		{"counterless again", "zero", 0, nil},
		{"counter starts", "zero", 1, nil},
		{"counter back to zero", "zero", 0, storage.ErrAlreadyUsed},
		{"unknown", "nope", 1, storage.ErrNotFound},
	}
	for i, tc := range tests {
		err := s.UsePasskey(ctx, tc.id, tc.count, fmt.Sprintf("v%d", i+1), now())
		if tc.want == nil {
			mustNil(t, err, tc.name)
		} else {
			wantErr(t, err, tc.want, tc.name)
		}
	}
	p, err := s.GetPasskey(ctx, "c")
	mustNil(t, err, "get")
	if p.SignCount != 4_000_000_000 || p.Credential != "v5" || p.LastUsedAt.IsZero() {
		t.Fatalf("after uses: %+v", p)
	}
}

// testPasskeyRace: concurrent sign-ins reporting the same count (one
// assertion replayed) move the counter once.
func testPasskeyRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "c", UserID: "u1", SignCount: 1, CreatedAt: now()}), "create")
	onlyOneWins(t, 24, func(int) error { return s.UsePasskey(ctx, "c", 2, "", now()) })
}

// testDeleteUserFactors: deleting a user removes its factors, and only its.
func testDeleteUserFactors(t *testing.T, s storage.Storage) {
	for _, u := range []string{"u1", "u2"} {
		mustNil(t, s.CreateUser(ctx, storage.User{ID: u, Username: "name-" + u, CreatedAt: now()}), "user")
		mustNil(t, s.SaveTOTP(ctx, storage.TOTP{UserID: u, SecretSealed: "s", CreatedAt: now()}), "totp")
		mustNil(t, s.ReplaceRecoveryCodes(ctx, u, []string{"h"}, now()), "codes")
		mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "cred-" + u, UserID: u, CreatedAt: now()}), "passkey")
	}
	mustNil(t, s.DeleteUser(ctx, "u1", now()), "delete user")
	_, err := s.GetTOTP(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "TOTP of a deleted user")
	_, err = s.GetPasskey(ctx, "cred-u1")
	wantErr(t, err, storage.ErrNotFound, "passkey of a deleted user")
	if n, _ := s.CountRecoveryCodes(ctx, "u1"); n != 0 {
		t.Fatalf("recovery codes of a deleted user: %d", n)
	}
	if _, err := s.GetTOTP(ctx, "u2"); err != nil {
		t.Fatalf("another user's TOTP: %v", err)
	}
	if _, err := s.GetPasskey(ctx, "cred-u2"); err != nil {
		t.Fatalf("another user's passkey: %v", err)
	}
}

// testUserSessions: a user's sessions, newest first, and only its.
func testUserSessions(t *testing.T, s storage.Storage) {
	at := now() // once: a second may turn between calls
	for i, id := range []string{"s1", "s2"} {
		mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: id, UserID: "u1", AuthTime: at, CreatedAt: at.Add(time.Duration(i) * time.Second),
			ExpiresAt: at.Add(time.Hour)}), "session")
	}
	mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "other", UserID: "u2", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}), "session")
	l, err := s.ListUserSessions(ctx, "u1")
	mustNil(t, err, "list")
	if len(l) != 2 || l[0].IDHash != "s2" || l[1].IDHash != "s1" || l[0].UserID != "u1" {
		t.Fatalf("sessions: %+v", l)
	}
	sameTime(t, l[1].ExpiresAt, at.Add(time.Hour), "expires")
	if l, _ := s.ListUserSessions(ctx, "nobody"); len(l) != 0 {
		t.Fatalf("sessions of nobody: %+v", l)
	}
}

// testAMR: the authentication methods of a sign-in travel from the
// session to the code and the grant.
func testAMR(t *testing.T, s storage.Storage) {
	amr := []string{"pwd", "otp", "mfa"}
	mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "s", UserID: "u1", AMR: amr, CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}), "session")
	se, err := s.GetSession(ctx, "s")
	mustNil(t, err, "get session")
	if !slices.Equal(se.AMR, amr) {
		t.Fatalf("session amr %v", se.AMR)
	}
	c := storage.AuthCode{Hash: "c", GrantID: "g", ClientID: "notes", UserID: "u1", AMR: amr, CreatedAt: now(), ExpiresAt: now().Add(time.Minute)}
	mustNil(t, s.CreateAuthCode(ctx, c), "code")
	got, _, err := s.ConsumeAuthCode(ctx, "c", now())
	mustNil(t, err, "consume")
	if !slices.Equal(got.AMR, amr) {
		t.Fatalf("code amr %v", got.AMR)
	}
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g", ClientID: "notes", UserID: "u1", AMR: amr, ExpiresAt: now().Add(time.Hour)}), "grant")
	g, err := s.GetGrant(ctx, "g")
	mustNil(t, err, "grant")
	if !slices.Equal(g.AMR, amr) {
		t.Fatalf("grant amr %v", g.AMR)
	}
	mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "plain", UserID: "u1", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}), "session")
	if se, _ := s.GetSession(ctx, "plain"); se == nil || len(se.AMR) != 0 {
		t.Fatalf("session without amr: %+v", se)
	}
}

// testUserDisabled: a user is created disabled or not as given, disabled
// and enabled by SetUserDisabled, and UpdateUser leaves the flag alone.
func testUserDisabled(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", PasswordHash: "$argon2id$x", CreatedAt: now()}), "create")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "badr", PasswordHash: "$argon2id$x", CreatedAt: now(), Disabled: true}), "create disabled")
	disabled := func(id string) bool {
		t.Helper()
		u, err := s.GetUser(ctx, id)
		mustNil(t, err, "get "+id)
		return u.Disabled
	}
	if disabled("u1") || !disabled("u2") {
		t.Fatalf("created: u1 disabled %v, u2 disabled %v", disabled("u1"), disabled("u2"))
	}
	mustNil(t, s.SetUserDisabled(ctx, "u1", true), "disable")
	u, _ := s.GetUser(ctx, "u1")
	u.Name, u.Disabled = "Amal", false
	mustNil(t, s.UpdateUser(ctx, *u), "update profile")
	if !disabled("u1") {
		t.Fatal("UpdateUser enabled a disabled user")
	}
	users, err := s.ListUsers(ctx)
	mustNil(t, err, "list")
	for _, u := range users {
		if !u.Disabled {
			t.Fatalf("list: %s not disabled", u.ID)
		}
	}
	mustNil(t, s.SetUserDisabled(ctx, "u2", false), "enable")
	if disabled("u2") || !disabled("u1") {
		t.Fatal("enabling one user changed another, or did not enable")
	}
	wantErr(t, s.SetUserDisabled(ctx, "nobody", true), storage.ErrNotFound, "disable an unknown user")
}

// testListRecoveryCodes: the hashes of the unused codes of one user.
func testListRecoveryCodes(t *testing.T, s storage.Storage) {
	got, err := s.ListRecoveryCodes(ctx, "u1")
	mustNil(t, err, "list none")
	if len(got) != 0 {
		t.Fatalf("no codes: got %v", got)
	}
	mustNil(t, s.ReplaceRecoveryCodes(ctx, "u1", []string{"h3", "h1", "h2"}, now()), "store")
	mustNil(t, s.ReplaceRecoveryCodes(ctx, "u2", []string{"x1"}, now()), "store another user's")
	mustNil(t, s.UseRecoveryCode(ctx, "u1", "h2", now()), "use")
	got, err = s.ListRecoveryCodes(ctx, "u1")
	mustNil(t, err, "list")
	if !slices.Equal(got, []string{"h1", "h3"}) {
		t.Fatalf("unused codes = %v, want [h1 h3]", got)
	}
}

// testUserAdmin: a user is created admin or not as given, made and unmade
// admin by SetUserAdmin, UpdateUser leaves the role alone, and an
// upstream user is created with the role as given.
func testUserAdmin(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", PasswordHash: "$argon2id$x", CreatedAt: now(), Admin: true}), "create admin")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "badr", PasswordHash: "$argon2id$x", CreatedAt: now()}), "create")
	isAdmin := func(id string) bool {
		t.Helper()
		u, err := s.GetUser(ctx, id)
		mustNil(t, err, "get "+id)
		return u.Admin
	}
	if !isAdmin("u1") || isAdmin("u2") {
		t.Fatalf("created: u1 admin %v, u2 admin %v", isAdmin("u1"), isAdmin("u2"))
	}
	u, _ := s.GetUser(ctx, "u1")
	u.Name, u.Admin = "Amal", false
	mustNil(t, s.UpdateUser(ctx, *u), "update profile")
	if !isAdmin("u1") {
		t.Fatal("UpdateUser took the admin role")
	}
	mustNil(t, s.SetUserAdmin(ctx, "u2", true), "make admin")
	mustNil(t, s.SetUserAdmin(ctx, "u1", false), "unmake admin")
	if isAdmin("u1") || !isAdmin("u2") {
		t.Fatalf("after SetUserAdmin: u1 admin %v, u2 admin %v", isAdmin("u1"), isAdmin("u2"))
	}
	byName, err := s.GetUserByUsername(ctx, "badr")
	mustNil(t, err, "get by username")
	if !byName.Admin {
		t.Fatal("GetUserByUsername lost the admin role")
	}
	users, err := s.ListUsers(ctx)
	mustNil(t, err, "list")
	if len(users) != 2 || users[0].Admin || !users[1].Admin {
		t.Fatalf("list: %+v", users)
	}
	mustNil(t, s.CreateUpstreamUser(ctx, storage.User{ID: "u3", Username: "up", CreatedAt: now(), Admin: true},
		storage.UpstreamLink{Upstream: "gh", Subject: "1", CreatedAt: now(), LastUsedAt: now()}), "create upstream user")
	if !isAdmin("u3") {
		t.Fatal("CreateUpstreamUser lost the admin role")
	}
	wantErr(t, s.SetUserAdmin(ctx, "nobody", true), storage.ErrNotFound, "make an unknown user admin")
}
