// Package storagetest is the conformance suite every storage.Storage backend
// must pass: call Run from the backend's own test with a constructor that
// returns an empty, migrated store.
package storagetest

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Run runs every conformance test against stores made by newStore. Each
// subtest gets a fresh store; newStore should register its own cleanup.
func Run(t *testing.T, newStore func(t *testing.T) storage.Storage) {
	tests := []struct {
		name string
		fn   func(*testing.T, storage.Storage)
	}{
		{"Users", testUsers},
		{"Clients", testClients},
		{"Consents", testConsents},
		{"Grants", testGrants},
		{"AuthRequests", testAuthRequests},
		{"AuthCodes", testAuthCodes},
		{"AuthCodeRace", testAuthCodeRace},
		{"RefreshTokens", testRefreshTokens},
		{"RefreshRace", testRefreshRace},
		{"RefreshRetry", testRefreshRetry},
		{"RefreshRetryRace", testRefreshRetryRace},
		{"RefreshTokenChain", testRefreshTokenChain},
		{"StartGrant", testStartGrant},
		{"CodeRedemptionRace", testCodeRedemptionRace},
		{"RotationEvents", testRotationEvents},
		{"AtomicShapes", testAtomicShapes},
		{"Enrolment", testEnrolment},
		{"ConsumeAuthCodeUser", testConsumeAuthCodeUser},
		{"RevokedTokens", testRevokedTokens},
		{"Sessions", testSessions},
		{"SigningKeys", testSigningKeys},
		{"Secrets", testSecrets},
		{"Failures", testFailures},
		{"FailureRace", testFailureRace},
		{"Attempts", testAttempts},
		{"AttemptRace", testAttemptRace},
		{"AuditEvents", testAuditEvents},
		{"DeviceCodes", testDeviceCodes},
		{"DevicePollRace", testDevicePollRace},
		{"UseOnce", testUseOnce},
		{"Scopes", testScopes},
		{"DeleteUser", testDeleteUser},
		{"DeleteExpired", testDeleteExpired},
		{"Prune", testPrune},
		{"PruneBatches", testPruneBatches},
		{"Ping", testPing},
		{"UserEmails", testUserEmails},
		{"UserEmailsIDN", testUserEmailsIDN},
		{"UsernameKeys", testUsernameKeys},
		{"UsernameKeyRace", testUsernameKeyRace},
		{"RevokeUserGrants", testRevokeUserGrants},
		{"MailOutbox", testMailOutbox},
		{"MailClaimRace", testMailClaimRace},
		{"AccountTokens", testAccountTokens},
		{"ReplaceAccountToken", testReplaceAccountToken},
		{"ReplaceAccountTokenRace", testReplaceAccountTokenRace},
		{"TOTP", testTOTP},
		{"RecoveryCodes", testRecoveryCodes},
		{"RecoveryCodeRace", testRecoveryCodeRace},
		{"Passkeys", testPasskeys},
		{"PasskeyCounter", testPasskeyCounter},
		{"PasskeyRace", testPasskeyRace},
		{"DeleteUserFactors", testDeleteUserFactors},
		{"UserSessions", testUserSessions},
		{"AMR", testAMR},
		{"UserDisabled", testUserDisabled},
		{"UserAdmin", testUserAdmin},
		{"KeepingAdmin", testKeepingAdmin},
		{"KeepingAdminRace", testKeepingAdminRace},
		{"ListRecoveryCodes", testListRecoveryCodes},
		{"TouchConsent", testTouchConsent},
		{"DeleteUserEverything", testDeleteUserEverything},
		{"UpstreamLinks", testUpstreamLinks},
		{"UpstreamUserRace", testUpstreamUserRace},
		{"UnlinkUpstream", testUnlinkUpstream},
		{"UnlinkUpstreamRace", testUnlinkUpstreamRace},
		{"ClientGrant", testClientGrant},
		{"ClientGrantRace", testClientGrantRace},
		{"RemovePasskey", testRemovePasskey},
		{"RemovePasskeyRace", testRemovePasskeyRace},
		{"UpstreamSessions", testUpstreamSessions},
		{"Upstreams", testUpstreams},
		{"AuditByUpstream", testAuditByUpstream},
		{"InitialAccessTokens", testInitialAccessTokens},
		{"InitialAccessTokenRace", testInitialAccessTokenRace},
		{"PruneInitialAccessTokens", testPruneInitialAccessTokens},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) { tc.fn(t, newStore(t)) })
	}
}

var ctx = context.Background()

// now is a whole second, since stores keep unix seconds.
func now() time.Time { return time.Now().Truncate(time.Second).UTC() }

func mustNil(t *testing.T, err error, what string) {
	t.Helper()
	if err != nil {
		t.Fatalf("%s: %v", what, err)
	}
}

func wantErr(t *testing.T, err, want error, what string) {
	t.Helper()
	if !errors.Is(err, want) {
		t.Fatalf("%s: got error %v, want %v", what, err, want)
	}
}

func sameTime(t *testing.T, got, want time.Time, what string) {
	t.Helper()
	if !got.Equal(want) {
		t.Fatalf("%s: got %v, want %v", what, got, want)
	}
}

func testUsers(t *testing.T, s storage.Storage) {
	u := storage.User{ID: "u1", Username: "amal", PasswordHash: "$argon2id$x", Name: "Amal", Email: "amal@example.com", EmailVerified: true, Picture: "https://example.com/a.png", CreatedAt: now()}
	mustNil(t, s.CreateUser(ctx, u), "create")
	wantErr(t, s.CreateUser(ctx, u), storage.ErrAlreadyExists, "create same id")
	dup := u
	dup.ID = "u2"
	wantErr(t, s.CreateUser(ctx, dup), storage.ErrAlreadyExists, "create same username")

	got, err := s.GetUser(ctx, "u1")
	mustNil(t, err, "get")
	sameTime(t, got.CreatedAt, u.CreatedAt, "created_at")
	got.CreatedAt = u.CreatedAt
	if *got != u {
		t.Fatalf("get: got %+v, want %+v", *got, u)
	}
	got, err = s.GetUserByUsername(ctx, "amal")
	mustNil(t, err, "get by username")
	if got.ID != "u1" {
		t.Fatalf("get by username: got %q", got.ID)
	}
	_, err = s.GetUser(ctx, "nobody")
	wantErr(t, err, storage.ErrNotFound, "get missing")
	_, err = s.GetUserByUsername(ctx, "nobody")
	wantErr(t, err, storage.ErrNotFound, "get missing username")

	mustNil(t, s.UpdateUserPassword(ctx, "u1", "$argon2id$y"), "update password")
	got, _ = s.GetUser(ctx, "u1")
	if got.PasswordHash != "$argon2id$y" {
		t.Fatalf("password not updated: %q", got.PasswordHash)
	}
	wantErr(t, s.UpdateUserPassword(ctx, "nobody", "x"), storage.ErrNotFound, "update missing")

	// UpdateUser replaces the profile, and keeps username and password.
	upd := *got
	upd.Username, upd.PasswordHash = "ignored", "ignored"
	upd.Name, upd.Email, upd.EmailVerified, upd.Picture = "Amal H.", "amal@example.org", false, ""
	upd.Profile = storage.Profile{GivenName: "Amal", FamilyName: "Haddad", MiddleName: "N", Nickname: "Mimi", Website: "https://amal.example",
		Gender: "female", Birthdate: "1990-04-01", Zoneinfo: "Asia/Amman", Locale: "ar-JO", PhoneNumber: "+962791234567", PhoneNumberVerified: true,
		Address: storage.Address{Formatted: "1 Rainbow St\nAmman", StreetAddress: "1 Rainbow St", Locality: "Amman", Country: "JO"}, UpdatedAt: now()}
	mustNil(t, s.UpdateUser(ctx, upd), "update user")
	got, _ = s.GetUser(ctx, "u1")
	sameTime(t, got.Profile.UpdatedAt, upd.Profile.UpdatedAt, "updated_at")
	got.Profile.UpdatedAt = upd.Profile.UpdatedAt
	if got.Username != "amal" || got.PasswordHash != "$argon2id$y" || got.Name != upd.Name || got.Email != upd.Email || got.EmailVerified ||
		got.Picture != "" || got.Profile != upd.Profile {
		t.Fatalf("after UpdateUser: %+v", *got)
	}
	wantErr(t, s.UpdateUser(ctx, storage.User{ID: "nobody"}), storage.ErrNotFound, "update missing user")

	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u0", Username: "badr", CreatedAt: now()}), "create second")
	users, err := s.ListUsers(ctx)
	mustNil(t, err, "list")
	if len(users) != 2 || users[0].Username != "amal" || users[1].Username != "badr" {
		t.Fatalf("list: got %+v", users)
	}
}

func testClients(t *testing.T, s storage.Storage) {
	c := storage.Client{ID: "notes", Name: "Notes", SecretHash: "abc", RedirectURIs: []string{"https://notes.example/cb", "http://127.0.0.1/cb"},
		GrantTypes: []string{"authorization_code", "refresh_token"}, Scopes: []string{"openid", "email"}, RequirePAR: true,
		AuthMethod: "private_key_jwt", JWKS: `{"keys":[]}`, JWKSURI: "https://notes.example/jwks", BackchannelLogoutURI: "https://notes.example/bcl",
		Pairwise: true, SecretSealed: "sealed", SectorIdentifierURI: "https://notes.example/sector.json",
		IDTokenAlg: "PS256", PKCEPolicy: storage.PKCENonceInstead, Verified: true, SecondFactor: true, DPoPBound: true, CreatedAt: now(),
		ClientInfo: storage.ClientInfo{ClientURI: "https://notes.example", LogoURI: "https://notes.example/logo.png",
			PolicyURI: "https://notes.example/privacy", TOSURI: "https://notes.example/terms"}}
	mustNil(t, s.CreateClient(ctx, c), "create")
	wantErr(t, s.CreateClient(ctx, c), storage.ErrAlreadyExists, "create twice")
	got, err := s.GetClient(ctx, "notes")
	mustNil(t, err, "get")
	if !sameClient(*got, c) {
		t.Fatalf("get: got %+v, want %+v", *got, c)
	}
	pub := storage.Client{ID: "cli", Name: "CLI", Public: true, RedirectURIs: []string{"http://127.0.0.1/cb"}, CreatedAt: now()}
	mustNil(t, s.CreateClient(ctx, pub), "create public")
	got, _ = s.GetClient(ctx, "cli")
	if !got.Public || got.SecretHash != "" || len(got.GrantTypes) != 0 || got.DPoPBound {
		t.Fatalf("public client: %+v", got)
	}
	all, err := s.ListClients(ctx)
	mustNil(t, err, "list")
	if len(all) != 2 || all[0].ID != "cli" || all[1].ID != "notes" {
		t.Fatalf("list: %+v", all)
	}

	// Deleting a client drops its consents and revokes its grants.
	mustNil(t, s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"email"}, GrantedAt: now(), UpdatedAt: now()}), "consent")
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}), "grant")
	deleted := now().Add(-time.Minute)
	mustNil(t, s.DeleteClient(ctx, "notes", deleted), "delete")
	_, err = s.GetClient(ctx, "notes")
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	_, err = s.GetConsent(ctx, "u1", "notes")
	wantErr(t, err, storage.ErrNotFound, "consent of deleted client")
	g, err := s.GetGrant(ctx, "g1")
	mustNil(t, err, "grant of deleted client")
	if !g.RevokedAt.Equal(deleted) {
		t.Fatalf("grant of deleted client revoked at %v, want %v", g.RevokedAt, deleted)
	}
	wantErr(t, s.DeleteClient(ctx, "notes", now()), storage.ErrNotFound, "delete twice")
	// Update replaces everything but the creation time.
	got, err = s.GetClient(ctx, "cli")
	mustNil(t, err, "get cli")
	upd := *got
	upd.Name, upd.RedirectURIs, upd.Scopes, upd.RequirePAR, upd.RegistrationTokenHash = "Notes 2", []string{"https://notes.example/v2"}, []string{"openid"}, false, "rt"
	upd.CreatedAt = now().Add(time.Hour)
	upd.IDTokenAlg, upd.PKCEPolicy = "ES256", storage.PKCENonceInstead
	upd.LogoURI, upd.Verified, upd.SecondFactor, upd.DPoPBound = "https://cli.example/logo.png", true, true, true
	mustNil(t, s.UpdateClient(ctx, upd), "update")
	got, _ = s.GetClient(ctx, "cli")
	if !sameUpdate(*got, upd, pub.CreatedAt) {
		t.Fatalf("after update: %+v", *got)
	}
	// An update clears a flag as well as it sets one.
	upd.DPoPBound = false
	mustNil(t, s.UpdateClient(ctx, upd), "update clearing dpop_bound")
	if got, _ = s.GetClient(ctx, "cli"); got.DPoPBound {
		t.Fatalf("dpop_bound still set after the update cleared it: %+v", *got)
	}
	wantErr(t, s.UpdateClient(ctx, storage.Client{ID: "ghost"}), storage.ErrNotFound, "update unknown")
}

// sameClient reports whether the stored client got has every field of
// the notes client c that testClients creates.
func sameClient(got, c storage.Client) bool {
	return !slices.Contains([]bool{
		got.Name == c.Name, got.SecretHash == c.SecretHash, !got.Public, slices.Equal(got.RedirectURIs, c.RedirectURIs),
		slices.Equal(got.GrantTypes, c.GrantTypes), slices.Equal(got.Scopes, c.Scopes), got.CreatedAt.Equal(c.CreatedAt), got.RequirePAR,
		got.AuthMethod == c.AuthMethod, got.JWKS == c.JWKS, got.JWKSURI == c.JWKSURI, got.BackchannelLogoutURI == c.BackchannelLogoutURI,
		got.Pairwise, got.SecretSealed == "sealed", got.SectorIdentifierURI == c.SectorIdentifierURI,
		got.IDTokenAlg == "PS256", got.PKCEPolicy == storage.PKCENonceInstead,
		got.ClientInfo == c.ClientInfo, got.Verified, got.SecondFactor, got.DPoPBound,
	}, false)
}

// sameUpdate reports whether the client got has the fields testClients's
// update upd set, and still its creation time created.
func sameUpdate(got, upd storage.Client, created time.Time) bool {
	return !slices.Contains([]bool{
		got.IDTokenAlg == "ES256", got.PKCEPolicy == storage.PKCENonceInstead,
		got.Name == "Notes 2", slices.Equal(got.RedirectURIs, upd.RedirectURIs), slices.Equal(got.Scopes, upd.Scopes), !got.RequirePAR,
		got.RegistrationTokenHash == "rt", got.CreatedAt.Equal(created), got.LogoURI == upd.LogoURI, got.Verified, got.SecondFactor, got.DPoPBound,
	}, false)
}

func testConsents(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", CreatedAt: now()}), "client")
	t0 := now().Add(-time.Hour)
	c := storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"openid", "email"}, GrantedAt: t0, UpdatedAt: t0}
	mustNil(t, s.SaveConsent(ctx, c), "save")
	got, err := s.GetConsent(ctx, "u1", "notes")
	mustNil(t, err, "get")
	if !slices.Equal(got.Scopes, c.Scopes) || !got.GrantedAt.Equal(t0) {
		t.Fatalf("get: %+v", got)
	}
	// Saving again replaces the scopes but keeps the first grant time.
	mustNil(t, s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"email"}, GrantedAt: now(), UpdatedAt: now()}), "save again")
	got, _ = s.GetConsent(ctx, "u1", "notes")
	if !slices.Equal(got.Scopes, []string{"email"}) || !got.GrantedAt.Equal(t0) || !got.UpdatedAt.Equal(now()) && !got.UpdatedAt.After(t0) {
		t.Fatalf("save again: %+v", got)
	}
	mustNil(t, s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "gone", Scopes: []string{"x"}, GrantedAt: t0, UpdatedAt: t0}), "save for unknown client")
	views, err := s.ListConsents(ctx, "u1")
	mustNil(t, err, "list")
	if len(views) != 2 || views[0].ClientName != "Notes" || views[1].ClientName != "gone" {
		t.Fatalf("list: %+v", views)
	}
	if l, _ := s.ListConsents(ctx, "u2"); len(l) != 0 {
		t.Fatalf("list of other user: %+v", l)
	}
	_, err = s.GetConsent(ctx, "u2", "notes")
	wantErr(t, err, storage.ErrNotFound, "get missing")

	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", CreatedAt: t0, ExpiresAt: now().Add(time.Hour)}), "grant 1")
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g2", ClientID: "notes", UserID: "u1", CreatedAt: t0, ExpiresAt: now().Add(time.Hour)}), "grant 2")
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g3", ClientID: "other", UserID: "u1", CreatedAt: t0, ExpiresAt: now().Add(time.Hour)}), "grant 3")
	mustNil(t, s.RevokeConsent(ctx, "u1", "notes", now()), "revoke")
	_, err = s.GetConsent(ctx, "u1", "notes")
	wantErr(t, err, storage.ErrNotFound, "get revoked")
	for id, revoked := range map[string]bool{"g1": true, "g2": true, "g3": false} {
		g, err := s.GetGrant(ctx, id)
		mustNil(t, err, "grant "+id)
		if g.RevokedAt.IsZero() == revoked {
			t.Fatalf("grant %s revoked=%v, want %v", id, !g.RevokedAt.IsZero(), revoked)
		}
	}
	wantErr(t, s.RevokeConsent(ctx, "u1", "notes", now()), storage.ErrNotFound, "revoke twice")
}

func testGrants(t *testing.T, s storage.Storage) {
	g := storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", Scopes: []string{"openid"}, AuthTime: now().Add(-time.Minute), CreatedAt: now(), ExpiresAt: now().Add(time.Hour),
		Claims: `{"userinfo":["name"]}`}
	mustNil(t, s.CreateGrant(ctx, g), "create")
	wantErr(t, s.CreateGrant(ctx, g), storage.ErrAlreadyExists, "create twice")
	got, err := s.GetGrant(ctx, "g1")
	mustNil(t, err, "get")
	if got.ClientID != "notes" || got.UserID != "u1" || !slices.Equal(got.Scopes, g.Scopes) || !got.AuthTime.Equal(g.AuthTime) ||
		!got.ExpiresAt.Equal(g.ExpiresAt) || !got.RevokedAt.IsZero() || got.Claims != g.Claims {
		t.Fatalf("get: %+v", got)
	}
	first := now()
	mustNil(t, s.RevokeGrant(ctx, "g1", first), "revoke")
	mustNil(t, s.RevokeGrant(ctx, "g1", first.Add(time.Hour)), "revoke twice")
	got, _ = s.GetGrant(ctx, "g1")
	sameTime(t, got.RevokedAt, first, "revoked_at keeps the first time")
	wantErr(t, s.RevokeGrant(ctx, "nope", now()), storage.ErrNotFound, "revoke missing")
	_, err = s.GetGrant(ctx, "nope")
	wantErr(t, err, storage.ErrNotFound, "get missing")
}

func testAuthRequests(t *testing.T, s storage.Storage) {
	r := storage.AuthRequest{ID: "r1", ClientID: "notes", RedirectURI: "https://notes.example/cb", Scopes: []string{"openid", "email"}, State: "st", Nonce: "n",
		CodeChallenge: "cc", CodeChallengeMethod: "S256", Prompt: "consent", MaxAge: -1, DPoPJKT: "jkt", Resources: []string{"api"},
		UILocales: "ar en", Claims: `{"id_token":{"email":{"essential":true}}}`, ACRValues: "urn:bawwab:acr:mfa urn:bawwab:acr:password",
		CreatedAt: now(), ExpiresAt: now().Add(10 * time.Minute)}
	mustNil(t, s.CreateAuthRequest(ctx, r), "create")
	wantErr(t, s.CreateAuthRequest(ctx, r), storage.ErrAlreadyExists, "create twice")
	got, err := s.GetAuthRequest(ctx, "r1")
	mustNil(t, err, "get")
	if got.ClientID != r.ClientID || got.RedirectURI != r.RedirectURI || !slices.Equal(got.Scopes, r.Scopes) || got.State != r.State || got.Nonce != r.Nonce ||
		got.CodeChallenge != r.CodeChallenge || got.CodeChallengeMethod != r.CodeChallengeMethod || got.Prompt != r.Prompt || got.MaxAge != -1 || !got.ExpiresAt.Equal(r.ExpiresAt) ||
		got.DPoPJKT != "jkt" || !slices.Equal(got.Resources, r.Resources) || got.UILocales != r.UILocales || got.Claims != r.Claims ||
		got.ACRValues != r.ACRValues {
		t.Fatalf("get: %+v", got)
	}
	mustNil(t, s.DeleteAuthRequest(ctx, "r1"), "delete")
	_, err = s.GetAuthRequest(ctx, "r1")
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	wantErr(t, s.DeleteAuthRequest(ctx, "r1"), storage.ErrNotFound, "delete twice")
}

func newCode(hash string) storage.AuthCode {
	return storage.AuthCode{Hash: hash, GrantID: "g-" + hash, ClientID: "notes", UserID: "u1", RedirectURI: "https://notes.example/cb", Scopes: []string{"openid"},
		Nonce: "n", CodeChallenge: "cc", CodeChallengeMethod: "S256", DPoPJKT: "jkt", Resources: []string{"api", "files"}, AuthTime: now(),
		Claims: `{"id_token":["name"]}`, CreatedAt: now(), ExpiresAt: now().Add(time.Minute)}
}

func testAuthCodes(t *testing.T, s storage.Storage) {
	c := newCode("h1")
	mustNil(t, s.CreateAuthCode(ctx, c), "create")
	wantErr(t, s.CreateAuthCode(ctx, c), storage.ErrAlreadyExists, "create twice")
	used := now()
	got, _, err := s.ConsumeAuthCode(ctx, "h1", used)
	mustNil(t, err, "consume")
	if got.GrantID != "g-h1" || got.RedirectURI != c.RedirectURI || got.CodeChallenge != "cc" || got.Nonce != "n" || !slices.Equal(got.Scopes, c.Scopes) ||
		got.DPoPJKT != "jkt" || !slices.Equal(got.Resources, c.Resources) || got.Claims != c.Claims {
		t.Fatalf("consume: %+v", got)
	}
	sameTime(t, got.UsedAt, used, "used_at")
	got, _, err = s.ConsumeAuthCode(ctx, "h1", used.Add(time.Second))
	wantErr(t, err, storage.ErrAlreadyUsed, "consume twice")
	if got == nil || got.GrantID != "g-h1" {
		t.Fatalf("consume twice must return the code for revocation, got %+v", got)
	}
	sameTime(t, got.UsedAt, used, "used_at after replay")
	_, _, err = s.ConsumeAuthCode(ctx, "missing", now())
	wantErr(t, err, storage.ErrNotFound, "consume missing")
}

// testAuthCodeRace: many concurrent redemptions, exactly one wins.
func testAuthCodeRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateAuthCode(ctx, newCode("race")), "create")
	onlyOneWins(t, 24, func(int) error {
		_, _, err := s.ConsumeAuthCode(ctx, "race", now())
		return err
	})
}

// onlyOneWins runs try n times at once and checks that exactly one call
// succeeds and every other one fails with ErrAlreadyUsed.
func onlyOneWins(t *testing.T, n int, try func(i int) error) {
	t.Helper()
	var wins, losses int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			err := try(i)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				wins++
			case errors.Is(err, storage.ErrAlreadyUsed):
				losses++
			default:
				t.Errorf("attempt %d: %v", i, err)
			}
		})
	}
	wg.Wait()
	if wins != 1 || losses != n-1 {
		t.Fatalf("wins=%d already-used=%d, want 1 and %d", wins, losses, n-1)
	}
}

func newRefresh(hash string) storage.RefreshToken {
	return storage.RefreshToken{Hash: hash, GrantID: "g1", ClientID: "notes", UserID: "u1", Scopes: []string{"openid", "offline_access"},
		AuthTime: now(), CreatedAt: now(), ExpiresAt: now().Add(time.Hour), JKT: "jkt-" + hash}
}

func testRefreshTokens(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("r1")), "create")
	wantErr(t, s.CreateRefreshToken(ctx, newRefresh("r1")), storage.ErrAlreadyExists, "create twice")
	got, err := s.GetRefreshToken(ctx, "r1")
	mustNil(t, err, "get")
	if got.GrantID != "g1" || !slices.Equal(got.Scopes, []string{"openid", "offline_access"}) || !got.UsedAt.IsZero() || got.JKT != "jkt-r1" {
		t.Fatalf("get: %+v", got)
	}
	mustNil(t, s.RotateRefreshToken(ctx, "r1", newRefresh("r2"), now()), "rotate")
	got, _ = s.GetRefreshToken(ctx, "r1")
	if got.UsedAt.IsZero() {
		t.Fatal("old token not marked used")
	}
	if _, err := s.GetRefreshToken(ctx, "r2"); err != nil {
		t.Fatalf("new token not stored: %v", err)
	}
	wantErr(t, s.RotateRefreshToken(ctx, "r1", newRefresh("r3"), now()), storage.ErrAlreadyUsed, "rotate used")
	_, err = s.GetRefreshToken(ctx, "r3")
	wantErr(t, err, storage.ErrNotFound, "token from failed rotation")
	wantErr(t, s.RotateRefreshToken(ctx, "missing", newRefresh("r4"), now()), storage.ErrNotFound, "rotate missing")
	_, err = s.GetRefreshToken(ctx, "missing")
	wantErr(t, err, storage.ErrNotFound, "get missing")
}

func testRefreshRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("old")), "create")
	const n = 16
	onlyOneWins(t, n, func(i int) error {
		return s.RotateRefreshToken(ctx, "old", newRefresh(fmt.Sprintf("new%d", i)), now())
	})
	stored := 0
	for i := range n {
		if _, err := s.GetRefreshToken(ctx, fmt.Sprintf("new%d", i)); err == nil {
			stored++
		}
	}
	if stored != 1 {
		t.Fatalf("%d successor tokens stored, want 1", stored)
	}
}

// testRefreshRetry walks the rotation grace period: a retry of a
// just-rotated token gets a new successor and spends the old one; a retry
// outside the window, against a successor already used, or naming a stale
// successor changes nothing.
func testRefreshRetry(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("r1")), "create")
	rotated := now()
	mustNil(t, s.RotateRefreshToken(ctx, "r1", newRefresh("r2"), rotated), "rotate")
	got, err := s.GetRefreshToken(ctx, "r1")
	mustNil(t, err, "get rotated")
	if got.NextHash != "r2" {
		t.Fatalf("rotated token's NextHash = %q, want r2", got.NextHash)
	}
	since := rotated.Add(-30 * time.Second)
	wantErr(t, s.RetryRotation(ctx, "r1", "r2", newRefresh("late"), rotated.Add(time.Second), now()), storage.ErrAlreadyUsed, "retry after the window")
	wantErr(t, s.RetryRotation(ctx, "r1", "other", newRefresh("stale"), since, now()), storage.ErrAlreadyUsed, "retry naming another successor")
	wantErr(t, s.RetryRotation(ctx, "missing", "r2", newRefresh("x"), since, now()), storage.ErrNotFound, "retry unknown")
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("fresh")), "create unused")
	wantErr(t, s.RetryRotation(ctx, "fresh", "", newRefresh("y"), since, now()), storage.ErrAlreadyUsed, "retry an unused token")
	for _, h := range []string{"late", "stale", "x", "y"} {
		if _, err := s.GetRefreshToken(ctx, h); !errors.Is(err, storage.ErrNotFound) {
			t.Fatalf("a failed retry stored %s: %v", h, err)
		}
	}

	mustNil(t, s.RetryRotation(ctx, "r1", "r2", newRefresh("r3"), since, now()), "retry within the window")
	old, _ := s.GetRefreshToken(ctx, "r1")
	spent, _ := s.GetRefreshToken(ctx, "r2")
	next, err := s.GetRefreshToken(ctx, "r3")
	mustNil(t, err, "get retried successor")
	if old.NextHash != "r3" || !old.UsedAt.Equal(got.UsedAt) {
		t.Fatalf("after retry, old token = %+v, want NextHash r3 and its first UsedAt", old)
	}
	if spent.UsedAt.IsZero() || spent.NextHash != "" {
		t.Fatalf("replaced successor = %+v, want used with no NextHash", spent)
	}
	if !next.UsedAt.IsZero() {
		t.Fatalf("new successor already used: %+v", next)
	}
	// The spent successor cannot be rotated, nor retried.
	wantErr(t, s.RotateRefreshToken(ctx, "r2", newRefresh("z"), now()), storage.ErrAlreadyUsed, "rotate the spent successor")
	wantErr(t, s.RetryRotation(ctx, "r2", "", newRefresh("z"), since, now()), storage.ErrAlreadyUsed, "retry the spent successor")
	// Once the client used its successor, the old token cannot be retried.
	mustNil(t, s.RotateRefreshToken(ctx, "r3", newRefresh("r4"), now()), "rotate the new successor")
	wantErr(t, s.RetryRotation(ctx, "r1", "r3", newRefresh("r5"), since, now()), storage.ErrAlreadyUsed, "retry after the successor was used")
	if got, _ := s.GetRefreshToken(ctx, "r1"); got.NextHash != "r3" {
		t.Fatalf("a refused retry changed the old token: %+v", got)
	}
	if _, err := s.GetRefreshToken(ctx, "r5"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("a refused retry stored its token: %v", err)
	}
}

// testRefreshRetryRace retries one rotated token concurrently: one retry
// wins, one new successor is stored, and the chain keeps one live token.
func testRefreshRetryRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateRefreshToken(ctx, newRefresh("old")), "create")
	mustNil(t, s.RotateRefreshToken(ctx, "old", newRefresh("first"), now()), "rotate")
	const n = 16
	onlyOneWins(t, n, func(i int) error {
		return s.RetryRotation(ctx, "old", "first", newRefresh(fmt.Sprintf("retry%d", i)), now().Add(-time.Minute), now())
	})
	live := 0
	for _, h := range []string{"first", "retry0", "retry1", "retry2", "retry3", "retry4", "retry5", "retry6", "retry7",
		"retry8", "retry9", "retry10", "retry11", "retry12", "retry13", "retry14", "retry15"} {
		if rt, err := s.GetRefreshToken(ctx, h); err == nil && rt.UsedAt.IsZero() {
			live++
		}
	}
	if live != 1 {
		t.Fatalf("%d live tokens in the chain, want 1", live)
	}
}

func testRevokedTokens(t *testing.T, s storage.Storage) {
	ok, err := s.IsTokenRevoked(ctx, "j1")
	mustNil(t, err, "check")
	if ok {
		t.Fatal("fresh jti reported revoked")
	}
	mustNil(t, s.RevokeToken(ctx, "j1", now().Add(time.Hour)), "revoke")
	mustNil(t, s.RevokeToken(ctx, "j1", now().Add(time.Hour)), "revoke twice")
	ok, err = s.IsTokenRevoked(ctx, "j1")
	mustNil(t, err, "check revoked")
	if !ok {
		t.Fatal("revoked jti not reported")
	}
}

func testSessions(t *testing.T, s storage.Storage) {
	se := storage.Session{IDHash: "sh", UserID: "u1", AuthTime: now(), CreatedAt: now(), ExpiresAt: now().Add(time.Hour)}
	mustNil(t, s.CreateSession(ctx, se), "create")
	wantErr(t, s.CreateSession(ctx, se), storage.ErrAlreadyExists, "create twice")
	got, err := s.GetSession(ctx, "sh")
	mustNil(t, err, "get")
	if got.UserID != "u1" || !got.AuthTime.Equal(se.AuthTime) || !got.ExpiresAt.Equal(se.ExpiresAt) {
		t.Fatalf("get: %+v", got)
	}
	mustNil(t, s.DeleteSession(ctx, "sh"), "delete")
	_, err = s.GetSession(ctx, "sh")
	wantErr(t, err, storage.ErrNotFound, "get deleted")
	wantErr(t, s.DeleteSession(ctx, "sh"), storage.ErrNotFound, "delete twice")
	for _, id := range []string{"a1", "a2"} {
		mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: id, UserID: "everywhere", ExpiresAt: now().Add(time.Hour)}), "create")
	}
	mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "other", UserID: "someone", ExpiresAt: now().Add(time.Hour)}), "create")
	n, err := s.DeleteUserSessions(ctx, "everywhere")
	mustNil(t, err, "delete user sessions")
	if n != 2 {
		t.Fatalf("ended %d sessions, want 2", n)
	}
	if _, err := s.GetSession(ctx, "other"); err != nil {
		t.Fatalf("another user's session ended: %v", err)
	}
}

func testSigningKeys(t *testing.T, s storage.Storage) {
	old := storage.SigningKey{ID: "k1", Algorithm: "ES256", PrivateJWK: []byte(`{"kty":"EC"}`), CreatedAt: now().Add(-time.Hour)}
	fresh := storage.SigningKey{ID: "k2", Algorithm: "ES256", PrivateJWK: []byte(`{"kty":"EC","x":1}`), CreatedAt: now()}
	mustNil(t, s.CreateSigningKey(ctx, old), "create old")
	mustNil(t, s.CreateSigningKey(ctx, fresh), "create new")
	wantErr(t, s.CreateSigningKey(ctx, fresh), storage.ErrAlreadyExists, "create twice")
	keys, err := s.ListSigningKeys(ctx)
	mustNil(t, err, "list")
	if len(keys) != 2 || keys[0].ID != "k2" || keys[1].ID != "k1" || string(keys[0].PrivateJWK) != `{"kty":"EC","x":1}` || !keys[0].RetiredAt.IsZero() {
		t.Fatalf("list: %+v", keys)
	}
	mustNil(t, s.RetireSigningKey(ctx, "k1", now()), "retire")
	wantErr(t, s.RetireSigningKey(ctx, "k1", now()), storage.ErrNotFound, "retire twice")
	keys, _ = s.ListSigningKeys(ctx)
	if keys[1].RetiredAt.IsZero() {
		t.Fatal("retired key has no retired_at")
	}
	mustNil(t, s.DeleteSigningKey(ctx, "k1"), "delete")
	wantErr(t, s.DeleteSigningKey(ctx, "k1"), storage.ErrNotFound, "delete twice")
	keys, _ = s.ListSigningKeys(ctx)
	if len(keys) != 1 {
		t.Fatalf("after delete: %+v", keys)
	}
	// Two rotations within one second (stores keep seconds): the key that
	// signs still comes first, whatever the ids.
	for _, id := range []string{"zz", "aa"} {
		mustNil(t, s.CreateSigningKey(ctx, storage.SigningKey{ID: id, Algorithm: "ES256", PrivateJWK: []byte(`{}`), CreatedAt: now().Add(time.Hour)}), "create")
	}
	mustNil(t, s.RetireSigningKey(ctx, "zz", now().Add(time.Hour)), "retire")
	keys, _ = s.ListSigningKeys(ctx)
	if len(keys) != 3 || keys[0].ID != "aa" || keys[1].ID != "zz" {
		t.Fatalf("same-second keys not newest first: %+v", keys)
	}
}

func testSecrets(t *testing.T, s storage.Storage) {
	a, err := s.Secret(ctx, "csrf", []byte{1, 2, 3})
	mustNil(t, err, "first")
	b, err := s.Secret(ctx, "csrf", []byte{9, 9, 9})
	mustNil(t, err, "second")
	if string(a) != string([]byte{1, 2, 3}) || string(b) != string(a) {
		t.Fatalf("secret: first %v, second %v", a, b)
	}
	// Any bytes come back as they went in, and twice the same.
	every := make([]byte, 256)
	for i := range every {
		every[i] = byte(i)
	}
	for name, v := range map[string][]byte{"every byte": every, "zeros": make([]byte, 32), "empty": {}} {
		for range 2 {
			got, err := s.Secret(ctx, name, v)
			mustNil(t, err, name)
			if string(got) != string(v) {
				t.Fatalf("secret %s: got %x, want %x", name, got, v)
			}
		}
	}
	var wg sync.WaitGroup
	got := make([][]byte, 8)
	for i := range got {
		wg.Go(func() {
			v, err := s.Secret(ctx, "race", []byte{byte(i)})
			if err != nil {
				t.Errorf("race: %v", err)
			}
			got[i] = v
		})
	}
	wg.Wait()
	for _, v := range got {
		if string(v) != string(got[0]) {
			t.Fatalf("nodes got different secrets: %v", got)
		}
	}
}

func testDeleteExpired(t *testing.T, s storage.Storage) {
	createExpiring(t, s, now().Add(-time.Hour), now().Add(time.Hour))
	n, err := s.DeleteExpired(ctx, now())
	mustNil(t, err, "delete expired")
	if n != 9 {
		t.Fatalf("deleted %d rows, want 9", n)
	}
	wantExpiredGone(t, s)
}

// createExpiring creates, of each kind of row DeleteExpired removes, one
// named "old" that expired at past and one named "new" live until future.
func createExpiring(t *testing.T, s storage.Storage, past, future time.Time) {
	expiredCode, liveCode := newCode("old"), newCode("new")
	expiredCode.ExpiresAt, liveCode.ExpiresAt = past, future
	mustNil(t, s.CreateAuthCode(ctx, expiredCode), "code")
	mustNil(t, s.CreateAuthCode(ctx, liveCode), "code")
	expiredRefresh, liveRefresh := newRefresh("old"), newRefresh("new")
	expiredRefresh.ExpiresAt, liveRefresh.ExpiresAt = past, future
	mustNil(t, s.CreateRefreshToken(ctx, expiredRefresh), "refresh")
	mustNil(t, s.CreateRefreshToken(ctx, liveRefresh), "refresh")
	mustNil(t, s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "old", ExpiresAt: past}), "request")
	mustNil(t, s.CreateAuthRequest(ctx, storage.AuthRequest{ID: "new", ExpiresAt: future}), "request")
	mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "old", ExpiresAt: past}), "session")
	mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "new", ExpiresAt: future}), "session")
	mustNil(t, s.RevokeToken(ctx, "old", past), "revoked")
	mustNil(t, s.RevokeToken(ctx, "new", future), "revoked")
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "old", ExpiresAt: past}), "grant")
	mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "new", ExpiresAt: future}), "grant")
	_, err := s.AddFailure(ctx, "old", past.Add(-time.Minute), past)
	mustNil(t, err, "failure")
	_, err = s.AddFailure(ctx, "new", past, future)
	mustNil(t, err, "failure")
	mustNil(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: "old", Time: past, Type: "login", ExpiresAt: past}), "audit")
	mustNil(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: "new", Time: past, Type: "login", ExpiresAt: future}), "audit")
	mustNil(t, s.CreateDeviceCode(ctx, storage.DeviceCode{Hash: "old", UserCode: "OLD", ExpiresAt: past}), "device")
	mustNil(t, s.CreateDeviceCode(ctx, storage.DeviceCode{Hash: "new", UserCode: "NEW", ExpiresAt: future}), "device")
}

// wantExpiredGone checks, after DeleteExpired, that the rows
// createExpiring made live are all there and the expired ones gone.
func wantExpiredGone(t *testing.T, s storage.Storage) {
	if _, err := s.GetDeviceCodeByUserCode(ctx, "NEW"); err != nil {
		t.Fatalf("live device code: %v", err)
	}
	if evs, _ := s.ListAuditEvents(ctx, storage.AuditFilter{}); len(evs) != 1 || evs[0].ID != "new" {
		t.Fatalf("audit events after GC: %+v", evs)
	}
	if n, _, _ := s.Failures(ctx, "new", now()); n != 1 {
		t.Fatalf("live failure counter: %d, want 1", n)
	}
	if _, _, err := s.ConsumeAuthCode(ctx, "old", now()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired code: %v", err)
	}
	if _, _, err := s.ConsumeAuthCode(ctx, "new", now()); err != nil {
		t.Fatalf("live code: %v", err)
	}
	if _, err := s.GetRefreshToken(ctx, "old"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired refresh: %v", err)
	}
	if _, err := s.GetRefreshToken(ctx, "new"); err != nil {
		t.Fatalf("live refresh: %v", err)
	}
	if _, err := s.GetAuthRequest(ctx, "new"); err != nil {
		t.Fatalf("live request: %v", err)
	}
	if _, err := s.GetSession(ctx, "new"); err != nil {
		t.Fatalf("live session: %v", err)
	}
	if _, err := s.GetGrant(ctx, "new"); err != nil {
		t.Fatalf("live grant: %v", err)
	}
	if _, err := s.GetGrant(ctx, "old"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("expired grant: %v", err)
	}
	if ok, _ := s.IsTokenRevoked(ctx, "new"); !ok {
		t.Fatal("live deny-list entry deleted")
	}
	if ok, _ := s.IsTokenRevoked(ctx, "old"); ok {
		t.Fatal("expired deny-list entry kept")
	}
}

func testFailures(t *testing.T, s storage.Storage) {
	t0 := time.UnixMilli(time.Now().UnixMilli()).UTC() // stores keep milliseconds
	n, last, err := s.Failures(ctx, "user:amal", t0)
	mustNil(t, err, "unknown key")
	if n != 0 || !last.IsZero() {
		t.Fatalf("unknown key: %d at %v", n, last)
	}
	for i := 1; i <= 3; i++ {
		at := t0.Add(time.Duration(i) * 1500 * time.Millisecond)
		got, err := s.AddFailure(ctx, "user:amal", at, at.Add(time.Minute))
		mustNil(t, err, "add failure")
		if got != i {
			t.Fatalf("failure %d counted as %d", i, got)
		}
	}
	n, last, err = s.Failures(ctx, "user:amal", t0)
	mustNil(t, err, "failures")
	if n != 3 || !last.Equal(t0.Add(4500*time.Millisecond)) {
		t.Fatalf("failures: %d at %v, want 3 at %v", n, last, t0.Add(4500*time.Millisecond))
	}
	if n, _, _ := s.Failures(ctx, "user:other", t0); n != 0 {
		t.Fatalf("other key sees %d failures", n)
	}
	// Expired counters read as zero and restart from one.
	later := t0.Add(2 * time.Minute)
	if n, _, _ := s.Failures(ctx, "user:amal", later); n != 0 {
		t.Fatalf("expired counter reads %d", n)
	}
	if got, _ := s.AddFailure(ctx, "user:amal", later, later.Add(time.Minute)); got != 1 {
		t.Fatalf("expired counter restarted at %d, want 1", got)
	}
	mustNil(t, s.ResetFailures(ctx, "user:amal"), "reset")
	mustNil(t, s.ResetFailures(ctx, "user:amal"), "reset twice")
	if n, _, _ := s.Failures(ctx, "user:amal", later); n != 0 {
		t.Fatalf("reset counter reads %d", n)
	}
}

// testFailureRace counts failures from many goroutines (nodes) at once:
// none may be lost.
func testFailureRace(t *testing.T, s storage.Storage) {
	const n = 40
	at := time.Now()
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			if _, err := s.AddFailure(ctx, "ip:192.0.2.1", at, at.Add(time.Minute)); err != nil {
				t.Errorf("add failure: %v", err)
			}
		})
	}
	wg.Wait()
	if got, _, _ := s.Failures(ctx, "ip:192.0.2.1", at); got != n {
		t.Fatalf("%d concurrent failures counted as %d", n, got)
	}
}

// testAttempts walks one key through ReserveAttempt's policy and every
// outcome, one step at a time.
func testAttempts(t *testing.T, s storage.Storage) {
	policy := storage.Throttle{Free: 3, Base: time.Second, Max: 8 * time.Second}
	t0 := time.UnixMilli(time.Now().UnixMilli()).UTC()
	at := t0
	steps := []struct {
		name     string
		advance  time.Duration
		end      storage.Outcome // ends the newest reserved attempt first, if set
		want     int             // count returned, zero when refused
		wantWait time.Duration
	}{
		{name: "first", want: 1},
		{name: "second", end: storage.AttemptFailed, want: 2},
		{name: "third, the last free", want: 3},
		{name: "fourth waits for the two in flight", end: storage.AttemptFailed},
		{name: "one more failure: Base after the third", end: storage.AttemptFailed, wantWait: time.Second},
		{name: "refused attempts are not counted", advance: 400 * time.Millisecond, wantWait: 600 * time.Millisecond},
		{name: "after Base", advance: 600 * time.Millisecond, want: 4},
		{name: "then twice Base", end: storage.AttemptFailed, wantWait: 2 * time.Second},
		{name: "after twice Base", advance: 2 * time.Second, want: 5},
		{name: "a release uncounts the attempt", end: storage.AttemptReleased, wantWait: 2 * time.Second},
		{name: "after that wait", advance: 2 * time.Second, want: 5},
		{name: "then four times Base", end: storage.AttemptFailed, wantWait: 4 * time.Second},
		{name: "after four times Base", advance: 4 * time.Second, want: 6},
		{name: "a success forgets the failures", end: storage.AttemptSucceeded, want: 1},
		{name: "expired after Max without attempts", end: storage.AttemptFailed, advance: 9 * time.Second, want: 1},
	}
	for _, st := range steps {
		if st.end != 0 {
			mustNil(t, s.EndAttempt(ctx, "login-user:amal", st.end), st.name+": end")
		}
		at = at.Add(st.advance)
		n, wait, err := s.ReserveAttempt(ctx, "login-user:amal", at, policy)
		mustNil(t, err, st.name)
		if n != st.want || wait != st.wantWait {
			t.Fatalf("%s: got count %d, wait %v; want %d, %v", st.name, n, wait, st.want, st.wantWait)
		}
	}
	if n, _, _ := s.ReserveAttempt(ctx, "login-user:badr", at, policy); n != 1 {
		t.Fatalf("another key starts at %d", n)
	}
	// The wait stops growing at Max, however many failures are counted.
	for _, failures := range []int{7, 40} {
		key := fmt.Sprintf("login-user:%d", failures)
		for range failures {
			_, err := s.AddFailure(ctx, key, at, at.Add(time.Minute))
			mustNil(t, err, "add failure")
		}
		if n, wait, err := s.ReserveAttempt(ctx, key, at, policy); n != 0 || wait != policy.Max || err != nil {
			t.Fatalf("after %d failures: count %d, wait %v (%v), want a wait of Max", failures, n, wait, err)
		}
	}
	// Ending an attempt of a key with none in flight changes nothing.
	for _, o := range []storage.Outcome{storage.AttemptFailed, storage.AttemptSucceeded, storage.AttemptReleased} {
		mustNil(t, s.EndAttempt(ctx, "login-user:nobody", o), "end unknown key")
	}
}

// testAttemptRace reserves attempts of one key from many goroutines (as
// many nodes would) at the same instant: exactly Free get through, and a
// success racing attempts in flight does not uncount them.
func testAttemptRace(t *testing.T, s storage.Storage) {
	const n, free = 40, 5
	policy := storage.Throttle{Free: free, Base: time.Minute, Max: time.Hour}
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()
	var wg sync.WaitGroup
	var mu sync.Mutex
	var counts []int
	for range n {
		wg.Go(func() {
			c, wait, err := s.ReserveAttempt(ctx, "login-ip:192.0.2.1", at, policy)
			if err != nil {
				t.Errorf("reserve: %v", err)
				return
			}
			if c == 0 && wait != 0 {
				t.Errorf("refused with wait %v while the budget is in flight, want none", wait)
			}
			if c > 0 {
				mu.Lock()
				counts = append(counts, c)
				mu.Unlock()
			}
		})
	}
	wg.Wait()
	slices.Sort(counts)
	if !slices.Equal(counts, []int{1, 2, 3, 4, 5}) {
		t.Fatalf("%d concurrent reservations with %d free: allowed %v, want 1…%d", n, free, counts, free)
	}
	// Two fail, one succeeds: the two still in flight stay counted.
	mustNil(t, s.EndAttempt(ctx, "login-ip:192.0.2.1", storage.AttemptFailed), "fail")
	mustNil(t, s.EndAttempt(ctx, "login-ip:192.0.2.1", storage.AttemptFailed), "fail")
	mustNil(t, s.EndAttempt(ctx, "login-ip:192.0.2.1", storage.AttemptFailed), "fail")
	if got, wait, _ := s.ReserveAttempt(ctx, "login-ip:192.0.2.1", at, policy); got != 0 || wait != 0 {
		t.Fatalf("three failures, two in flight: count %d, wait %v; want to wait for those in flight", got, wait)
	}
	mustNil(t, s.EndAttempt(ctx, "login-ip:192.0.2.1", storage.AttemptSucceeded), "succeed")
	if got, _, _ := s.ReserveAttempt(ctx, "login-ip:192.0.2.1", at, policy); got != 2 {
		t.Fatalf("after a success with one attempt in flight: count %d, want 2", got)
	}
}

func testAuditEvents(t *testing.T, s storage.Storage) {
	t0 := time.UnixMilli(time.Now().UnixMilli()).UTC()
	add := func(id string, at time.Duration, typ, user, client string) {
		mustNil(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: id, Time: t0.Add(at), Type: typ, UserID: user, ClientID: client,
			IP: "192.0.2.1", Detail: "scope=openid", ExpiresAt: t0.Add(time.Hour)}), "add "+id)
	}
	add("e1", 0, "login", "u1", "")
	add("e2", time.Millisecond, "consent", "u1", "notes")
	add("e3", 2*time.Millisecond, "token_issued", "u1", "notes")
	add("e4", 3*time.Millisecond, "login", "u2", "")
	add("e5", 4*time.Millisecond, "code_replay", "u1", "greedy")
	wantErr(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: "e1", Time: t0}), storage.ErrAlreadyExists, "duplicate id")

	ids := func(f storage.AuditFilter) string {
		t.Helper()
		evs, err := s.ListAuditEvents(ctx, f)
		mustNil(t, err, "list")
		var out []string
		for _, e := range evs {
			out = append(out, e.ID)
		}
		return strings.Join(out, ",")
	}
	for _, c := range []struct {
		f    storage.AuditFilter
		want string
	}{
		{storage.AuditFilter{}, "e5,e4,e3,e2,e1"},
		{storage.AuditFilter{UserID: "u1"}, "e5,e3,e2,e1"},
		{storage.AuditFilter{ClientID: "notes"}, "e3,e2"},
		{storage.AuditFilter{UserID: "u1", Type: "login"}, "e1"},
		{storage.AuditFilter{Since: t0.Add(time.Millisecond), Until: t0.Add(3 * time.Millisecond)}, "e3,e2"},
		{storage.AuditFilter{UserID: "u1", Limit: 2}, "e5,e3"},
		{storage.AuditFilter{UserID: "nobody"}, ""},
	} {
		if got := ids(c.f); got != c.want {
			t.Errorf("filter %+v: %s, want %s", c.f, got, c.want)
		}
	}
	evs, _ := s.ListAuditEvents(ctx, storage.AuditFilter{Type: "consent"})
	want := storage.AuditEvent{ID: "e2", Time: t0.Add(time.Millisecond), Type: "consent", UserID: "u1", ClientID: "notes", IP: "192.0.2.1",
		Detail: "scope=openid", ExpiresAt: t0.Add(time.Hour).Truncate(time.Second)}
	if len(evs) != 1 || evs[0] != want {
		t.Fatalf("round trip: %+v, want %+v", evs, want)
	}
}

func newDevice(hash, userCode string) storage.DeviceCode {
	return storage.DeviceCode{Hash: hash, UserCode: userCode, ClientID: "tv", Scopes: []string{"openid", "files.read"}, Interval: 5,
		CreatedAt: now(), ExpiresAt: now().Add(10 * time.Minute)}
}

func testDeviceCodes(t *testing.T, s storage.Storage) {
	d1 := newDevice("d1", "BCDFGHJK")
	mustNil(t, s.CreateDeviceCode(ctx, d1), "create")
	wantErr(t, s.CreateDeviceCode(ctx, newDevice("d2", "BCDFGHJK")), storage.ErrAlreadyExists, "same user code")
	d, err := s.GetDeviceCodeByUserCode(ctx, "BCDFGHJK")
	mustNil(t, err, "get")
	if d.Hash != "d1" || d.ClientID != "tv" || d.Interval != 5 || d.Status != storage.DevicePending || len(d.Scopes) != 2 || !d.LastPoll.IsZero() {
		t.Fatalf("get: %+v", d)
	}
	sameTime(t, d.ExpiresAt, d1.ExpiresAt, "expires_at")
	_, err = s.GetDeviceCodeByUserCode(ctx, "NOPE")
	wantErr(t, err, storage.ErrNotFound, "unknown user code")

	// Polls report the previous poll.
	first := time.UnixMilli(time.Now().UnixMilli()).UTC()
	d, err = s.PollDeviceCode(ctx, "d1", first)
	mustNil(t, err, "first poll")
	if !d.LastPoll.IsZero() {
		t.Fatalf("first poll saw a previous poll at %v", d.LastPoll)
	}
	d, err = s.PollDeviceCode(ctx, "d1", first.Add(6*time.Second))
	mustNil(t, err, "second poll")
	if !d.LastPoll.Equal(first) {
		t.Fatalf("second poll saw %v, want %v", d.LastPoll, first)
	}
	_, err = s.PollDeviceCode(ctx, "nope", first)
	wantErr(t, err, storage.ErrNotFound, "poll unknown")

	// Pending codes cannot be consumed; a decision is taken once.
	wantErr(t, s.ConsumeDeviceCode(ctx, "d1", now()), storage.ErrAlreadyUsed, "consume pending")
	mustNil(t, s.DecideDeviceCode(ctx, "BCDFGHJK", true, "u1", []string{"openid"}, []string{"pwd", "otp", "mfa"}, now(), now()), "approve")
	wantErr(t, s.DecideDeviceCode(ctx, "BCDFGHJK", false, "u2", nil, nil, now(), now()), storage.ErrNotFound, "decide twice")
	d, _ = s.GetDeviceCodeByUserCode(ctx, "BCDFGHJK")
	if d.Status != storage.DeviceApproved || d.UserID != "u1" || strings.Join(d.GrantedScopes, " ") != "openid" || strings.Join(d.AMR, " ") != "pwd otp mfa" {
		t.Fatalf("approved: %+v", d)
	}
	mustNil(t, s.ConsumeDeviceCode(ctx, "d1", now()), "consume")
	wantErr(t, s.ConsumeDeviceCode(ctx, "d1", now()), storage.ErrAlreadyUsed, "consume twice")

	// Denied and expired codes.
	mustNil(t, s.CreateDeviceCode(ctx, newDevice("d3", "MNPQRSTV")), "create")
	mustNil(t, s.DecideDeviceCode(ctx, "MNPQRSTV", false, "u1", nil, nil, now(), now()), "deny")
	wantErr(t, s.ConsumeDeviceCode(ctx, "d3", now()), storage.ErrAlreadyUsed, "consume denied")
	mustNil(t, s.CreateDeviceCode(ctx, newDevice("d4", "WXZBCDFG")), "create")
	wantErr(t, s.DecideDeviceCode(ctx, "WXZBCDFG", true, "u1", nil, nil, now(), now().Add(time.Hour)), storage.ErrNotFound, "decide expired")
}

// testDevicePollRace: of simultaneous polls, one records its time and the
// others are told the code was just polled.
func testDevicePollRace(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateDeviceCode(ctx, newDevice("race", "RACERACE")), "create")
	at := time.UnixMilli(time.Now().UnixMilli()).UTC()
	onlyOneWins(t, 10, func(int) error {
		d, err := s.PollDeviceCode(ctx, "race", at)
		if err != nil {
			return err
		}
		if d.LastPoll.Equal(at) {
			return storage.ErrAlreadyUsed // slowed down
		}
		return nil
	})
}

func testUseOnce(t *testing.T, s storage.Storage) {
	mustNil(t, s.UseOnce(ctx, "jti:notes:1", now().Add(time.Minute)), "first use")
	wantErr(t, s.UseOnce(ctx, "jti:notes:1", now().Add(time.Minute)), storage.ErrAlreadyUsed, "replay")
	mustNil(t, s.UseOnce(ctx, "jti:notes:2", now().Add(time.Minute)), "another value")
	onlyOneWins(t, 10, func(int) error { return s.UseOnce(ctx, "jti:race", now().Add(time.Minute)) })
	mustNil(t, s.UseOnce(ctx, "jti:old", now().Add(-time.Minute)), "expired use")
	if _, err := s.DeleteExpired(ctx, now()); err != nil {
		t.Fatal(err)
	}
	mustNil(t, s.UseOnce(ctx, "jti:old", now().Add(time.Minute)), "use after the old one expired")
}

func testScopes(t *testing.T, s storage.Storage) {
	l, err := s.ListScopes(ctx)
	mustNil(t, err, "list empty")
	if len(l) != 0 {
		t.Fatalf("new store has scopes: %+v", l)
	}
	pay := storage.ScopeDef{Name: "payment", Position: 2, Description: map[string]string{"en": "Cards", "ar": "البطاقات"}, Sensitive: true,
		Explanation: map[string]string{"en": "Charge your cards"}}
	oid := storage.ScopeDef{Name: "openid", Position: 1, Description: map[string]string{"en": "Who you are"}, Required: true, Claims: []string{"sub"}}
	mustNil(t, s.SaveScope(ctx, pay), "save")
	mustNil(t, s.SaveScope(ctx, oid), "save")
	l, _ = s.ListScopes(ctx)
	if len(l) != 2 || l[0].Name != "openid" || !l[0].Required || strings.Join(l[0].Claims, " ") != "sub" || l[1].Description["ar"] != "البطاقات" || !l[1].Sensitive ||
		l[1].Explanation["en"] != "Charge your cards" || len(l[0].Explanation) != 0 {
		t.Fatalf("list: %+v", l)
	}
	pay.Description["en"], pay.Sensitive = "Saved cards", false
	mustNil(t, s.SaveScope(ctx, pay), "replace")
	l, _ = s.ListScopes(ctx)
	if l[1].Description["en"] != "Saved cards" || l[1].Sensitive {
		t.Fatalf("after replace: %+v", l[1])
	}
	mustNil(t, s.DeleteScope(ctx, "payment"), "delete")
	wantErr(t, s.DeleteScope(ctx, "payment"), storage.ErrNotFound, "delete twice")
}

func testDeleteUser(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", CreatedAt: now()}), "user")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u2", Username: "badr", CreatedAt: now()}), "user")
	for _, u := range []string{"u1", "u2"} {
		mustNil(t, s.SaveConsent(ctx, storage.Consent{UserID: u, ClientID: "notes", Scopes: []string{"openid"}, GrantedAt: now(), UpdatedAt: now()}), "consent")
		mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: "g-" + u, ClientID: "notes", UserID: u, ExpiresAt: now().Add(time.Hour)}), "grant")
		mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: "s-" + u, UserID: u, ExpiresAt: now().Add(time.Hour)}), "session")
	}
	cs, err := s.ListClientConsents(ctx, "notes")
	mustNil(t, err, "client consents")
	if len(cs) != 2 {
		t.Fatalf("consents of notes: %+v", cs)
	}
	mustNil(t, s.DeleteUser(ctx, "u1", now()), "delete user")
	wantErr(t, s.DeleteUser(ctx, "u1", now()), storage.ErrNotFound, "delete twice")
	_, err = s.GetUser(ctx, "u1")
	wantErr(t, err, storage.ErrNotFound, "deleted user")
	_, err = s.GetSession(ctx, "s-u1")
	wantErr(t, err, storage.ErrNotFound, "session of a deleted user")
	if g, _ := s.GetGrant(ctx, "g-u1"); g == nil || g.RevokedAt.IsZero() {
		t.Fatalf("grant of a deleted user not revoked: %+v", g)
	}
	if g, _ := s.GetGrant(ctx, "g-u2"); g == nil || !g.RevokedAt.IsZero() {
		t.Fatalf("another user's grant touched: %+v", g)
	}
	if cs, _ := s.ListClientConsents(ctx, "notes"); len(cs) != 1 || cs[0].UserID != "u2" {
		t.Fatalf("consents after delete: %+v", cs)
	}
}

// testPrune: rotated refresh tokens go after the reuse horizon, ended
// grants once their tokens expired, old audit events after the retention;
// what is still in use stays.
func testPrune(t *testing.T, s storage.Storage) {
	at := now()
	hour := time.Hour
	refresh := func(hash, grant string, created time.Time, used time.Time) {
		r := newRefresh(hash)
		r.GrantID, r.CreatedAt, r.ExpiresAt = grant, created, at.Add(24*hour)
		mustNil(t, s.CreateRefreshToken(ctx, r), "refresh "+hash)
		if !used.IsZero() {
			next := newRefresh(hash + "-next")
			next.GrantID, next.ExpiresAt = grant, at.Add(24*hour)
			mustNil(t, s.RotateRefreshToken(ctx, hash, next, used), "rotate "+hash)
		}
	}
	grant := func(id string, created, revoked time.Time) {
		mustNil(t, s.CreateGrant(ctx, storage.Grant{ID: id, ClientID: "notes", UserID: "u1", CreatedAt: created,
			ExpiresAt: at.Add(90 * 24 * hour)}), "grant "+id)
		if !revoked.IsZero() {
			mustNil(t, s.RevokeGrant(ctx, id, revoked), "revoke "+id)
		}
	}
	grant("live", at.Add(-48*hour), time.Time{})
	refresh("rotated-long-ago", "live", at.Add(-3*hour), at.Add(-2*hour)) // past the 1 h horizon
	refresh("rotated-recently", "live", at.Add(-3*hour), at.Add(-30*time.Minute))
	grant("revoked-old", at.Add(-48*hour), at.Add(-2*hour))
	refresh("of-revoked", "revoked-old", at.Add(-48*hour), time.Time{})
	grant("revoked-new", at.Add(-48*hour), at.Add(-time.Minute)) // its access tokens may live
	grant("tokenless-old", at.Add(-2*hour), time.Time{})
	grant("tokenless-new", at.Add(-time.Minute), time.Time{})
	mustNil(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: "ancient", Time: at.Add(-40 * 24 * hour), Type: "login", ExpiresAt: at.Add(hour)}), "audit")
	mustNil(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: "recent", Time: at.Add(-hour), Type: "login", ExpiresAt: at.Add(hour)}), "audit")

	n, err := s.Prune(ctx, storage.Prune{Now: at, ReuseHorizon: hour, TokenLifetime: hour, AuditRetention: 30 * 24 * hour, Batch: 1})
	mustNil(t, err, "prune")
	// rotated-long-ago, of-revoked, revoked-old, tokenless-old, ancient.
	if n != 5 {
		t.Errorf("pruned %d rows, want 5", n)
	}
	for _, tc := range []struct {
		hash string
		want error
	}{
		{"rotated-long-ago", storage.ErrNotFound},
		{"rotated-recently", nil},
		{"rotated-recently-next", nil},
		{"rotated-long-ago-next", nil},
		{"of-revoked", storage.ErrNotFound},
	} {
		if _, err := s.GetRefreshToken(ctx, tc.hash); !errors.Is(err, tc.want) {
			t.Errorf("refresh token %s: got %v, want %v", tc.hash, err, tc.want)
		}
	}
	for _, tc := range []struct {
		id   string
		want error
	}{
		{"live", nil},
		{"revoked-old", storage.ErrNotFound},
		{"revoked-new", nil},
		{"tokenless-old", storage.ErrNotFound},
		{"tokenless-new", nil},
	} {
		if _, err := s.GetGrant(ctx, tc.id); !errors.Is(err, tc.want) {
			t.Errorf("grant %s: got %v, want %v", tc.id, err, tc.want)
		}
	}
	if evs, _ := s.ListAuditEvents(ctx, storage.AuditFilter{}); len(evs) != 1 || evs[0].ID != "recent" {
		t.Errorf("audit events after pruning: %+v", evs)
	}
	// Zero durations keep rows until their own expiry.
	grant("tokenless-2", at.Add(-2*hour), time.Time{})
	n, err = s.Prune(ctx, storage.Prune{Now: at})
	mustNil(t, err, "prune by expiry")
	if n != 0 {
		t.Errorf("pruning by expiry alone removed %d rows, want 0", n)
	}
}

// testPruneBatches: one call deletes at most Batch×MaxBatches rows of a
// kind; the rest goes on the next call.
func testPruneBatches(t *testing.T, s storage.Storage) {
	past := now().Add(-time.Hour)
	for i := range 7 {
		mustNil(t, s.UseOnce(ctx, fmt.Sprintf("jti-%d", i), past), "use once")
	}
	n, err := s.Prune(ctx, storage.Prune{Now: now(), Batch: 2, MaxBatches: 2})
	mustNil(t, err, "prune")
	if n != 4 {
		t.Fatalf("first call pruned %d rows, want 4", n)
	}
	n, err = s.Prune(ctx, storage.Prune{Now: now(), Batch: 2, MaxBatches: 2})
	mustNil(t, err, "prune")
	if n != 3 {
		t.Fatalf("second call pruned %d rows, want 3", n)
	}
}

// testPing: the write probe commits, again and again, for several nodes,
// and LastPing reads each node's latest probe back.
func testPing(t *testing.T, s storage.Storage) {
	last, err := s.LastPing(ctx, "node-a")
	mustNil(t, err, "last ping before any")
	if !last.IsZero() {
		t.Fatalf("last ping before any: %v, want zero", last)
	}
	t0 := now()
	for i := range 3 {
		mustNil(t, s.Ping(ctx, "node-a", t0.Add(time.Duration(i)*time.Second)), "ping a")
		mustNil(t, s.Ping(ctx, "node-b", t0), "ping b")
	}
	for node, want := range map[string]time.Time{"node-a": t0.Add(2 * time.Second), "node-b": t0} {
		last, err := s.LastPing(ctx, node)
		mustNil(t, err, "last ping "+node)
		if !last.Equal(want) {
			t.Fatalf("last ping of %s: %v, want %v", node, last, want)
		}
	}
	// A node silent for a day is forgotten.
	n, err := s.Prune(ctx, storage.Prune{Now: now().Add(25 * time.Hour)})
	mustNil(t, err, "prune")
	if n != 2 {
		t.Fatalf("pruned %d probe rows, want 2", n)
	}
}
