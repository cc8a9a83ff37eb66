package storagetest

import (
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// testUserEmails: confirmed addresses are unique in NormalEmail form, and
// a user is found by any spelling of its confirmed address; unconfirmed
// addresses claim nothing.
func testUserEmails(t *testing.T, s storage.Storage) {
	a := storage.User{ID: "u1", Username: "amal", PasswordHash: "$argon2id$x", Name: "Amal", Email: "Amal@Example.com", EmailVerified: true, CreatedAt: now()}
	mustNil(t, s.CreateUser(ctx, a), "create")
	b := storage.User{ID: "u2", Username: "basel", PasswordHash: "$argon2id$x", Name: "Basel", Email: " amal@example.COM ", EmailVerified: true, CreatedAt: now()}
	wantErr(t, s.CreateUser(ctx, b), storage.ErrAlreadyExists, "create with another spelling of a taken address")
	b.EmailVerified = false
	mustNil(t, s.CreateUser(ctx, b), "create with the address unconfirmed")
	got, err := s.GetUserByEmail(ctx, "AMAL@example.com")
	mustNil(t, err, "get by email")
	if got.ID != "u1" {
		t.Fatalf("get by email: got %q, want the confirmed owner", got.ID)
	}
	b.EmailVerified = true
	wantErr(t, s.UpdateUser(ctx, b), storage.ErrAlreadyExists, "confirm a taken address")
	for _, u := range []storage.User{{ID: "u3", Username: "c", Name: "C", PasswordHash: "$argon2id$x", EmailVerified: true},
		{ID: "u4", Username: "d", Name: "D", PasswordHash: "$argon2id$x", EmailVerified: true}} {
		mustNil(t, s.CreateUser(ctx, u), "users without an address do not collide")
	}
	_, err = s.GetUserByEmail(ctx, "")
	wantErr(t, err, storage.ErrNotFound, "get by empty email")
	_, err = s.GetUserByEmail(ctx, "nobody@example.com")
	wantErr(t, err, storage.ErrNotFound, "get by unknown email")
	b.Email = "b2@example.com"
	mustNil(t, s.UpdateUser(ctx, b), "confirm a free address")
	if got, err := s.GetUserByEmail(ctx, "b2@example.com"); err != nil || got.ID != "u2" {
		t.Fatalf("get by a newly confirmed address: %v %v", got, err)
	}
	a.Email = "amal@example.org"
	mustNil(t, s.UpdateUser(ctx, a), "change address")
	b.Email = "amal@example.com" // given up by a just now
	mustNil(t, s.UpdateUser(ctx, b), "confirm an address given up")
}

// testUserEmailsIDN: an address whose domain is internationalised is one
// address in its Unicode and its punycode spelling: confirmed once, it is
// taken in either, and found by either.
func testUserEmailsIDN(t *testing.T, s storage.Storage) {
	a := storage.User{ID: "u1", Username: "amal", PasswordHash: "$argon2id$x", Name: "Amal", Email: "amal@Bücher.example", EmailVerified: true, CreatedAt: now()}
	mustNil(t, s.CreateUser(ctx, a), "create with a Unicode domain")
	b := storage.User{ID: "u2", Username: "basel", PasswordHash: "$argon2id$x", Name: "Basel", Email: "amal@xn--bcher-kva.example", EmailVerified: true, CreatedAt: now()}
	wantErr(t, s.CreateUser(ctx, b), storage.ErrAlreadyExists, "create with the punycode spelling of a taken address")
	b.EmailVerified = false
	mustNil(t, s.CreateUser(ctx, b), "create with the address unconfirmed")
	b.EmailVerified = true
	wantErr(t, s.UpdateUser(ctx, b), storage.ErrAlreadyExists, "confirm the punycode spelling of a taken address")
	for _, spelling := range []string{"amal@bücher.example", "AMAL@XN--BCHER-KVA.EXAMPLE", "amal@ｂüｃｈｅｒ.example"} {
		got, err := s.GetUserByEmail(ctx, spelling)
		mustNil(t, err, "get by "+spelling)
		if got.ID != "u1" || got.Email != a.Email {
			t.Fatalf("get by %s: got %s %q, want u1 with its address as given", spelling, got.ID, got.Email)
		}
	}
	c := storage.User{ID: "u3", Username: "c", PasswordHash: "$argon2id$x", Name: "C", Email: "c@xn--mgbh0fb.example", EmailVerified: true, CreatedAt: now()}
	mustNil(t, s.CreateUser(ctx, c), "create with a punycode domain")
	if got, err := s.GetUserByEmail(ctx, "c@مثال.example"); err != nil || got.ID != "u3" {
		t.Fatalf("get a punycode address by its Unicode spelling: %v %v", got, err)
	}
}

// testRevokeUserGrants: every grant of the user, and only of the user.
func testRevokeUserGrants(t *testing.T, s storage.Storage) {
	at := now()
	for _, g := range []storage.Grant{{ID: "g1", ClientID: "c1", UserID: "u1"}, {ID: "g2", ClientID: "c2", UserID: "u1"}, {ID: "g3", ClientID: "c1", UserID: "u2"}} {
		g.CreatedAt, g.ExpiresAt = at, at.Add(time.Hour)
		mustNil(t, s.CreateGrant(ctx, g), "create grant")
	}
	n, err := s.RevokeUserGrants(ctx, "u1", at)
	mustNil(t, err, "revoke")
	if n != 2 {
		t.Fatalf("revoked %d grants, want 2", n)
	}
	for id, revoked := range map[string]bool{"g1": true, "g2": true, "g3": false} {
		g, err := s.GetGrant(ctx, id)
		mustNil(t, err, "get grant")
		if g.RevokedAt.IsZero() == revoked {
			t.Fatalf("grant %s: revoked at %v, want revoked %v", id, g.RevokedAt, revoked)
		}
	}
}

// testMailOutbox: a due message is claimed once per lease, comes back
// after a failure at its next time, and is not claimed once sent.
func testMailOutbox(t *testing.T, s storage.Storage) {
	at := now()
	m := storage.Mail{ID: "m1", To: "amal@example.com", Subject: "Hello", Body: "Line 1\nمرحبا", Kind: "verify", CreatedAt: at, NextAt: at, ExpiresAt: at.Add(time.Hour)}
	mustNil(t, s.EnqueueMail(ctx, m), "enqueue")
	wantErr(t, s.EnqueueMail(ctx, m), storage.ErrAlreadyExists, "enqueue same id")
	later := storage.Mail{ID: "m2", To: "b@example.com", Subject: "Later", Body: "x", CreatedAt: at, NextAt: at.Add(time.Minute), ExpiresAt: at.Add(time.Hour)}
	mustNil(t, s.EnqueueMail(ctx, later), "enqueue later")
	stale := storage.Mail{ID: "m3", To: "c@example.com", Subject: "Stale", Body: "x", CreatedAt: at, NextAt: at, ExpiresAt: at}
	mustNil(t, s.EnqueueMail(ctx, stale), "enqueue expired")

	got, err := s.ClaimMail(ctx, at, at.Add(time.Minute), 10)
	mustNil(t, err, "claim")
	if len(got) != 1 || got[0].ID != "m1" || got[0].Body != m.Body || got[0].To != m.To || got[0].Subject != m.Subject || got[0].Kind != "verify" {
		t.Fatalf("claim: got %+v, want m1 only", got)
	}
	again, err := s.ClaimMail(ctx, at.Add(time.Second), at.Add(time.Minute), 10)
	mustNil(t, err, "claim while leased")
	if len(again) != 0 {
		t.Fatalf("a leased message was claimed again: %+v", again)
	}
	mustNil(t, s.MailFailed(ctx, "m1", "relay down", at.Add(10*time.Second)), "failed")
	if got, _ := s.ClaimMail(ctx, at.Add(5*time.Second), at.Add(time.Minute), 10); len(got) != 0 {
		t.Fatalf("claimed before its next time: %+v", got)
	}
	got, err = s.ClaimMail(ctx, at.Add(10*time.Second), at.Add(time.Minute), 1)
	mustNil(t, err, "claim after failure")
	if len(got) != 1 || got[0].ID != "m1" || got[0].Attempts != 1 || got[0].LastError != "relay down" {
		t.Fatalf("claim after failure: %+v", got)
	}
	mustNil(t, s.MailSent(ctx, "m1", at), "sent")
	wantErr(t, s.MailSent(ctx, "nope", at), storage.ErrNotFound, "sent unknown")
	// An expired lease gives the message to the next sender; a sent one
	// never comes back.
	got, err = s.ClaimMail(ctx, at.Add(2*time.Minute), at.Add(3*time.Minute), 10)
	mustNil(t, err, "claim later")
	if len(got) != 1 || got[0].ID != "m2" {
		t.Fatalf("claim later: got %+v, want m2 only", got)
	}
	got, err = s.ClaimMail(ctx, at.Add(4*time.Minute), at.Add(5*time.Minute), 10)
	mustNil(t, err, "claim after lease")
	if len(got) != 1 || got[0].ID != "m2" {
		t.Fatalf("an abandoned lease did not return m2: %+v", got)
	}
	n, err := s.Prune(ctx, storage.Prune{Now: at.Add(2 * time.Hour)})
	mustNil(t, err, "prune")
	if n < 3 {
		t.Fatalf("prune removed %d rows, want the 3 expired messages at least", n)
	}
}

// testMailClaimRace: senders claiming at once, as on several nodes, each
// get a message at most once: every message is delivered exactly once.
func testMailClaimRace(t *testing.T, s storage.Storage) {
	at := now()
	const messages, senders = 40, 8
	for i := range messages {
		mustNil(t, s.EnqueueMail(ctx, storage.Mail{ID: fmt.Sprintf("m%02d", i), To: "x@example.com", Subject: "s", Body: "b", CreatedAt: at,
			NextAt: at, ExpiresAt: at.Add(time.Hour)}), "enqueue")
	}
	var claimed sync.Map
	var total atomic.Int64
	var wg sync.WaitGroup
	start := make(chan struct{})
	errs := make(chan error, senders)
	for range senders {
		wg.Go(func() {
			<-start
			for {
				got, err := s.ClaimMail(ctx, at, at.Add(time.Minute), 5)
				if err != nil {
					errs <- err
					return
				}
				if len(got) == 0 {
					return
				}
				for _, m := range got {
					if _, dup := claimed.LoadOrStore(m.ID, true); dup {
						errs <- errors.New("message " + m.ID + " claimed twice")
						return
					}
					total.Add(1)
					if err := s.MailSent(ctx, m.ID, at); err != nil {
						errs <- err
						return
					}
				}
			}
		})
	}
	close(start)
	wg.Wait()
	close(errs)
	for err := range errs {
		t.Fatal(err)
	}
	if total.Load() != messages {
		t.Fatalf("%d messages claimed, want %d", total.Load(), messages)
	}
}

// testAccountTokens: a link is read while live, used once, refused when
// used, expired or asked for as another kind, and a user's unused links
// can be voided.
func testAccountTokens(t *testing.T, s storage.Storage) {
	at := now()
	tok := storage.AccountToken{Hash: storage.Hash("secret"), Kind: storage.TokenResetPassword, UserID: "u1", Email: "amal@example.com",
		CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	mustNil(t, s.CreateAccountToken(ctx, tok), "create")
	wantErr(t, s.CreateAccountToken(ctx, tok), storage.ErrAlreadyExists, "create same")
	got, err := s.GetAccountToken(ctx, tok.Hash, storage.TokenResetPassword, at)
	mustNil(t, err, "get")
	if got.UserID != "u1" || got.Email != tok.Email || !got.UsedAt.IsZero() {
		t.Fatalf("get: %+v", got)
	}
	_, err = s.GetAccountToken(ctx, tok.Hash, storage.TokenVerifyEmail, at)
	wantErr(t, err, storage.ErrNotFound, "get as another kind")
	_, err = s.ConsumeAccountToken(ctx, tok.Hash, storage.TokenVerifyEmail, at)
	wantErr(t, err, storage.ErrNotFound, "consume as another kind")
	_, err = s.ConsumeAccountToken(ctx, tok.Hash, storage.TokenResetPassword, at.Add(time.Hour))
	wantErr(t, err, storage.ErrNotFound, "consume expired")
	got, err = s.ConsumeAccountToken(ctx, tok.Hash, storage.TokenResetPassword, at)
	mustNil(t, err, "consume")
	if got.UserID != "u1" {
		t.Fatalf("consume: %+v", got)
	}
	_, err = s.ConsumeAccountToken(ctx, tok.Hash, storage.TokenResetPassword, at)
	wantErr(t, err, storage.ErrAlreadyUsed, "consume twice")
	_, err = s.GetAccountToken(ctx, tok.Hash, storage.TokenResetPassword, at)
	wantErr(t, err, storage.ErrAlreadyUsed, "get used")

	other := tok
	other.Hash = storage.Hash("other")
	mustNil(t, s.CreateAccountToken(ctx, other), "create other")
	mustNil(t, s.DeleteAccountTokens(ctx, "u1", storage.TokenResetPassword), "delete")
	_, err = s.ConsumeAccountToken(ctx, other.Hash, storage.TokenResetPassword, at)
	wantErr(t, err, storage.ErrNotFound, "consume deleted")

	// Of concurrent uses of one link, one wins.
	race := tok
	race.Hash = storage.Hash("race")
	mustNil(t, s.CreateAccountToken(ctx, race), "create race")
	var wins atomic.Int64
	var wg sync.WaitGroup
	for range 20 {
		wg.Go(func() {
			if _, err := s.ConsumeAccountToken(ctx, race.Hash, storage.TokenResetPassword, at); err == nil {
				wins.Add(1)
			} else if !errors.Is(err, storage.ErrAlreadyUsed) {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if wins.Load() != 1 {
		t.Fatalf("%d concurrent uses of one link succeeded, want 1", wins.Load())
	}
}

// testTouchConsent: a use is recorded at most once per interval, whatever
// the concurrency; saving the consent again keeps it; a missing consent is
// no error.
func testTouchConsent(t *testing.T, s storage.Storage) {
	t0 := now()
	mustNil(t, s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"openid"}, GrantedAt: t0, UpdatedAt: t0}), "consent")
	touch := func(at time.Time, want bool) {
		t.Helper()
		wrote, err := s.TouchConsent(ctx, "u1", "notes", at, time.Minute)
		mustNil(t, err, "touch")
		if wrote != want {
			t.Fatalf("touch at +%s: wrote %v, want %v", at.Sub(t0), wrote, want)
		}
	}
	var wrote atomic.Int32
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			if ok, err := s.TouchConsent(ctx, "u1", "notes", t0.Add(time.Second), time.Minute); err == nil && ok {
				wrote.Add(1)
			}
		}()
	}
	wg.Wait()
	if wrote.Load() != 1 {
		t.Fatalf("%d concurrent touches wrote, want 1", wrote.Load())
	}
	touch(t0.Add(30*time.Second), false)
	touch(t0.Add(60*time.Second), false)
	touch(t0.Add(61*time.Second), true)
	c, err := s.GetConsent(ctx, "u1", "notes")
	mustNil(t, err, "get")
	if !c.LastUsedAt.Equal(t0.Add(61 * time.Second)) {
		t.Fatalf("last used %v, want %v", c.LastUsedAt, t0.Add(61*time.Second))
	}
	mustNil(t, s.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "notes", Scopes: []string{"openid", "email"}, GrantedAt: t0, UpdatedAt: t0.Add(time.Hour)}), "save again")
	l, err := s.ListConsents(ctx, "u1")
	mustNil(t, err, "list")
	if len(l) != 1 || !l[0].LastUsedAt.Equal(t0.Add(61*time.Second)) {
		t.Fatalf("list after save: %+v", l)
	}
	if ok, err := s.TouchConsent(ctx, "u1", "other", t0, time.Minute); err != nil || ok {
		t.Fatalf("touch of a missing consent: %v %v", ok, err)
	}
}

// testDeleteUserEverything: deleting a user also removes its emailed links
// and unsent mail, and creates revoked the grant of a code not yet
// redeemed, so that its redemption issues dead tokens; another user's are
// kept.
func testDeleteUserEverything(t *testing.T, s storage.Storage) {
	at := now()
	for _, u := range []storage.User{{ID: "u1", Username: "amal", Email: "Amal@example.com"}, {ID: "u2", Username: "badr", Email: "badr@example.com"}} {
		mustNil(t, s.CreateUser(ctx, u), "user")
		mustNil(t, s.CreateAccountToken(ctx, storage.AccountToken{Hash: "t-" + u.ID, Kind: storage.TokenResetPassword, UserID: u.ID, CreatedAt: at, ExpiresAt: at.Add(time.Hour)}), "link")
		mustNil(t, s.EnqueueMail(ctx, storage.Mail{ID: "m-" + u.ID, To: strings.ToLower(u.Email), Subject: "s", Body: "b", Kind: "reset", CreatedAt: at, NextAt: at, ExpiresAt: at.Add(time.Hour)}), "mail")
		mustNil(t, s.CreateAuthCode(ctx, storage.AuthCode{Hash: "c-" + u.ID, GrantID: "g-" + u.ID, ClientID: "notes", UserID: u.ID, Scopes: []string{"openid"}, CreatedAt: at, ExpiresAt: at.Add(time.Minute)}), "code")
	}
	mustNil(t, s.CreateDeviceCode(ctx, storage.DeviceCode{Hash: "d-u1", UserCode: "WXYZ2345", ClientID: "tv", Scopes: []string{"openid"}, Interval: 5,
		Status: storage.DevicePending, CreatedAt: at, ExpiresAt: at.Add(time.Minute)}), "device code")
	mustNil(t, s.DecideDeviceCode(ctx, "WXYZ2345", true, "u1", []string{"openid"}, nil, at, at), "approve device code")
	mustNil(t, s.DeleteUser(ctx, "u1", at), "delete")
	if g, err := s.GetGrant(ctx, storage.DeviceGrantID("d-u1")); err != nil || g.RevokedAt.IsZero() || g.UserID != "u1" {
		t.Fatalf("grant of an approved device code: %+v %v", g, err)
	}
	_, err := s.GetAccountToken(ctx, "t-u1", storage.TokenResetPassword, at)
	wantErr(t, err, storage.ErrNotFound, "link of a deleted user")
	if _, err := s.GetAccountToken(ctx, "t-u2", storage.TokenResetPassword, at); err != nil {
		t.Fatalf("another user's link: %v", err)
	}
	mail, err := s.ClaimMail(ctx, at, at.Add(time.Minute), 10)
	mustNil(t, err, "claim")
	if len(mail) != 1 || mail[0].ID != "m-u2" {
		t.Fatalf("mail after delete: %+v", mail)
	}
	g, err := s.GetGrant(ctx, "g-u1")
	mustNil(t, err, "grant of an unredeemed code")
	if g.RevokedAt.IsZero() || g.UserID != "u1" {
		t.Fatalf("grant of an unredeemed code: %+v", g)
	}
	wantErr(t, s.CreateGrant(ctx, storage.Grant{ID: "g-u1", ClientID: "notes", UserID: "u1", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}),
		storage.ErrAlreadyExists, "redemption after delete")
	_, err = s.GetGrant(ctx, "g-u2")
	wantErr(t, err, storage.ErrNotFound, "another user's unredeemed code")
}

// testReplaceAccountToken: a new link voids the user's unused links of
// its kind, and those only: a used link stays used, and links of another
// kind or another user stay live.
func testReplaceAccountToken(t *testing.T, s storage.Storage) {
	at := now()
	for _, id := range []string{"u1", "u2"} {
		mustNil(t, s.CreateUser(ctx, storage.User{ID: id, Username: id, CreatedAt: at}), "user")
	}
	link := func(secret, kind, user string) storage.AccountToken {
		return storage.AccountToken{Hash: storage.Hash(secret), Kind: kind, UserID: user, Email: user + "@example.com", CreatedAt: at, ExpiresAt: at.Add(time.Hour)}
	}
	live := func(secret, kind string) error {
		_, err := s.GetAccountToken(ctx, storage.Hash(secret), kind, at)
		return err
	}
	mustNil(t, s.CreateAccountToken(ctx, link("used", storage.TokenVerifyEmail, "u1")), "create")
	_, err := s.ConsumeAccountToken(ctx, storage.Hash("used"), storage.TokenVerifyEmail, at)
	mustNil(t, err, "use")
	mustNil(t, s.CreateAccountToken(ctx, link("old", storage.TokenVerifyEmail, "u1")), "create")
	mustNil(t, s.CreateAccountToken(ctx, link("reset", storage.TokenResetPassword, "u1")), "create")
	mustNil(t, s.CreateAccountToken(ctx, link("theirs", storage.TokenVerifyEmail, "u2")), "create")

	mustNil(t, s.ReplaceAccountToken(ctx, link("new", storage.TokenVerifyEmail, "u1")), "replace")
	mustNil(t, live("new", storage.TokenVerifyEmail), "the new link")
	wantErr(t, live("old", storage.TokenVerifyEmail), storage.ErrNotFound, "the link it replaced")
	wantErr(t, live("used", storage.TokenVerifyEmail), storage.ErrAlreadyUsed, "a used link")
	mustNil(t, live("reset", storage.TokenResetPassword), "a link of another kind")
	mustNil(t, live("theirs", storage.TokenVerifyEmail), "another user's link")
	wantErr(t, s.ReplaceAccountToken(ctx, link("used", storage.TokenVerifyEmail, "u1")), storage.ErrAlreadyExists, "a known hash")
	mustNil(t, live("new", storage.TokenVerifyEmail), "the link after a refused replacement")
	wantErr(t, s.ReplaceAccountToken(ctx, link("ghost", storage.TokenVerifyEmail, "ghost")), storage.ErrNotFound, "no such user")
	wantErr(t, live("ghost", storage.TokenVerifyEmail), storage.ErrNotFound, "the link of no user")
}

// testReplaceAccountTokenRace: of new links asked for at the same instant,
// as with two clicks or two nodes, exactly one works afterwards.
func testReplaceAccountTokenRace(t *testing.T, s storage.Storage) {
	const racers, rounds = 8, 5
	at := now()
	for r := range rounds {
		user := fmt.Sprintf("racer%d", r)
		mustNil(t, s.CreateUser(ctx, storage.User{ID: user, Username: user, CreatedAt: at}), "user")
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range racers {
			wg.Go(func() {
				<-start
				err := s.ReplaceAccountToken(ctx, storage.AccountToken{Hash: storage.Hash(fmt.Sprintf("%s-%d", user, i)), Kind: storage.TokenVerifyEmail,
					UserID: user, Email: user + "@example.com", CreatedAt: at, ExpiresAt: at.Add(time.Hour)})
				if err != nil {
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		working := 0
		for i := range racers {
			switch _, err := s.GetAccountToken(ctx, storage.Hash(fmt.Sprintf("%s-%d", user, i)), storage.TokenVerifyEmail, at); {
			case err == nil:
				working++
			case !errors.Is(err, storage.ErrNotFound):
				t.Fatal(err)
			}
		}
		if working != 1 {
			t.Fatalf("round %d: %d of %d concurrent new links work, want 1", r, working, racers)
		}
	}
}
