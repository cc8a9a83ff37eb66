package storagetest

import (
	"errors"
	"fmt"
	"slices"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// testUpstreamLinks: an identity links to one user, a user has one link
// per upstream, and a just-in-time user comes with its link or not at all.
func testUpstreamLinks(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", Email: "amal@example.com", EmailVerified: true, CreatedAt: now()}), "user")
	l := storage.UpstreamLink{Upstream: "corp", Subject: "s-1", UserID: "u1", Email: "amal@corp.example", CreatedAt: now()}
	mustNil(t, s.CreateUpstreamLink(ctx, l), "link")
	wantErr(t, s.CreateUpstreamLink(ctx, l), storage.ErrAlreadyExists, "same identity again")
	testFirstPassword(t, s)
	other := l
	other.Subject = "s-2"
	wantErr(t, s.CreateUpstreamLink(ctx, other), storage.ErrAlreadyExists, "a second identity of one upstream for one user")
	nobody := storage.UpstreamLink{Upstream: "corp", Subject: "s-3", UserID: "ghost", CreatedAt: now()}
	wantErr(t, s.CreateUpstreamLink(ctx, nobody), storage.ErrNotFound, "link to a user that does not exist")
	got, err := s.GetUpstreamLink(ctx, "corp", "s-1")
	mustNil(t, err, "get")
	if got.UserID != "u1" || got.Email != l.Email || !got.CreatedAt.Equal(l.CreatedAt) || !got.LastUsedAt.IsZero() {
		t.Fatalf("get: %+v, want %+v", *got, l)
	}
	_, err = s.GetUpstreamLink(ctx, "other", "s-1")
	wantErr(t, err, storage.ErrNotFound, "same subject at another upstream")
	used := now()
	mustNil(t, s.UseUpstreamLink(ctx, "corp", "s-1", used), "use")
	got, _ = s.GetUpstreamLink(ctx, "corp", "s-1")
	sameTime(t, got.LastUsedAt, used, "last used")

	// A user created with its link; a taken username creates neither.
	u2 := storage.User{ID: "u2", Username: "bilal", Email: "bilal@corp.example", CreatedAt: now()}
	mustNil(t, s.CreateUpstreamUser(ctx, u2, storage.UpstreamLink{Upstream: "corp", Subject: "s-9", CreatedAt: now()}), "jit user")
	if got, err := s.GetUpstreamLink(ctx, "corp", "s-9"); err != nil || got.UserID != "u2" {
		t.Fatalf("jit link: %+v %v", got, err)
	}
	u3 := storage.User{ID: "u3", Username: "bilal", CreatedAt: now()}
	wantErr(t, s.CreateUpstreamUser(ctx, u3, storage.UpstreamLink{Upstream: "corp", Subject: "s-10", CreatedAt: now()}), storage.ErrAlreadyExists, "taken username")
	_, err = s.GetUpstreamLink(ctx, "corp", "s-10")
	wantErr(t, err, storage.ErrNotFound, "the link of a user not created")

	links, err := s.ListUpstreamLinks(ctx, "u1")
	mustNil(t, err, "list")
	if len(links) != 1 || links[0].Upstream != "corp" {
		t.Fatalf("list: %+v", links)
	}
	wantErr(t, s.DeleteUpstreamLink(ctx, "u2", "other"), storage.ErrNotFound, "unlink none")
	wantErr(t, s.DeleteUpstreamLink(ctx, "u2", "nosuch"), storage.ErrNotFound, "unlink another's")
	mustNil(t, s.DeleteUpstreamLink(ctx, "u1", "corp"), "unlink")
	_, err = s.GetUpstreamLink(ctx, "corp", "s-1")
	wantErr(t, err, storage.ErrNotFound, "unlinked")
	mustNil(t, s.DeleteUser(ctx, "u2", now()), "delete user")
	_, err = s.GetUpstreamLink(ctx, "corp", "s-9")
	wantErr(t, err, storage.ErrNotFound, "link of a deleted user")
}

// testUpstreamUserRace: of concurrent first sign-ins of one identity,
// exactly one creates a user.
func testUpstreamUserRace(t *testing.T, s storage.Storage) {
	const n = 8
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			u := storage.User{ID: fmt.Sprintf("r%d", i), Username: fmt.Sprintf("racer%d", i), CreatedAt: now()}
			errs <- s.CreateUpstreamUser(ctx, u, storage.UpstreamLink{Upstream: "corp", Subject: "same", CreatedAt: now()})
		}()
	}
	wg.Wait()
	close(errs)
	ok := 0
	for err := range errs {
		if err == nil {
			ok++
		}
	}
	users, err := s.ListUsers(ctx)
	mustNil(t, err, "list users")
	if ok != 1 || len(users) != 1 {
		t.Fatalf("%d creations succeeded and %d users exist, want 1 and 1", ok, len(users))
	}
}

// testUpstreamSessions: a session keeps the upstream session it came from,
// and the upstream's logout ends the sessions of its sid, of its sub, or of
// both, of that upstream only, once.
func testUpstreamSessions(t *testing.T, s storage.Storage) {
	mk := func(id, user string, up storage.UpstreamSession) {
		t.Helper()
		mustNil(t, s.CreateSession(ctx, storage.Session{IDHash: id, UserID: user, AMR: []string{"fed"}, AuthTime: now(), CreatedAt: now(),
			ExpiresAt: now().Add(time.Hour), Upstream: up}), "session "+id)
	}
	mk("a1", "u1", storage.UpstreamSession{Upstream: "corp", Subject: "s-1", SID: "sid-a"})
	mk("a2", "u1", storage.UpstreamSession{Upstream: "corp", Subject: "s-1", SID: "sid-a"}) // the same upstream session, another browser
	mk("b", "u1", storage.UpstreamSession{Upstream: "corp", Subject: "s-1", SID: "sid-b"})
	mk("c", "u2", storage.UpstreamSession{Upstream: "corp", Subject: "s-2"})
	mk("other", "u3", storage.UpstreamSession{Upstream: "other", Subject: "s-1", SID: "sid-a"})
	mk("local", "u1", storage.UpstreamSession{})
	if se, err := s.GetSession(ctx, "a1"); err != nil || se.Upstream != (storage.UpstreamSession{Upstream: "corp", Subject: "s-1", SID: "sid-a"}) {
		t.Fatalf("get: %+v %v", se, err)
	}
	if l, _ := s.ListUserSessions(ctx, "u2"); len(l) != 1 || l[0].Upstream.Subject != "s-2" {
		t.Fatalf("list: %+v", l)
	}
	ended := func(u storage.UpstreamSession, want ...string) {
		t.Helper()
		got, err := s.DeleteUpstreamSessions(ctx, u)
		mustNil(t, err, "delete upstream sessions")
		var ids []string
		for _, se := range got {
			ids = append(ids, se.IDHash)
		}
		slices.Sort(ids)
		if !slices.Equal(ids, want) {
			t.Fatalf("%+v ended %v, want %v", u, ids, want)
		}
	}
	ended(storage.UpstreamSession{Upstream: "corp"})                               // neither sub nor sid: nothing
	ended(storage.UpstreamSession{Subject: "s-1", SID: "sid-a"})                   // no upstream: nothing
	ended(storage.UpstreamSession{Upstream: "corp", Subject: "s-2", SID: "sid-a"}) // sid of another subject
	ended(storage.UpstreamSession{Upstream: "corp", Subject: "s-1", SID: "sid-a"}, "a1", "a2")
	ended(storage.UpstreamSession{Upstream: "corp", Subject: "s-1", SID: "sid-a"}) // once
	ended(storage.UpstreamSession{Upstream: "corp", SID: "sid-b"}, "b")
	ended(storage.UpstreamSession{Upstream: "corp", Subject: "s-2"}, "c")
	for _, id := range []string{"other", "local"} {
		if _, err := s.GetSession(ctx, id); err != nil {
			t.Fatalf("session %s of another upstream or none ended: %v", id, err)
		}
	}
}

// testUpstreams: stored upstreams are created once per id, updated and
// deleted with their links, and an upstream's users are listed in pages.
func testUpstreams(t *testing.T, s storage.Storage) {
	u := storage.Upstream{ID: "corp", Config: `{"id":"corp"}`, SecretSealed: "sealed", Enabled: true, CreatedAt: now(), UpdatedAt: now()}
	mustNil(t, s.CreateUpstream(ctx, u), "create")
	wantErr(t, s.CreateUpstream(ctx, u), storage.ErrAlreadyExists, "same id again")
	got, err := s.GetUpstream(ctx, "corp")
	mustNil(t, err, "get")
	if got.Config != u.Config || got.SecretSealed != "sealed" || !got.Enabled {
		t.Fatalf("get: %+v, want %+v", *got, u)
	}
	sameTime(t, got.CreatedAt, u.CreatedAt, "created")
	_, err = s.GetUpstream(ctx, "nosuch")
	wantErr(t, err, storage.ErrNotFound, "get unknown")
	u.Enabled, u.Config, u.SecretSealed = false, `{"id":"corp","client_id":"x"}`, "other"
	mustNil(t, s.UpdateUpstream(ctx, u), "update")
	got, _ = s.GetUpstream(ctx, "corp")
	if got.Enabled || got.Config != u.Config || got.SecretSealed != "other" {
		t.Fatalf("updated: %+v", *got)
	}
	wantErr(t, s.UpdateUpstream(ctx, storage.Upstream{ID: "nosuch"}), storage.ErrNotFound, "update unknown")
	mustNil(t, s.CreateUpstream(ctx, storage.Upstream{ID: "alpha", Config: "{}", CreatedAt: now(), UpdatedAt: now()}), "second")
	all, err := s.ListUpstreams(ctx)
	mustNil(t, err, "list")
	if len(all) != 2 || all[0].ID != "alpha" || all[1].ID != "corp" {
		t.Fatalf("list: %+v", all)
	}

	for i := range 5 {
		id := fmt.Sprintf("u%d", i)
		mustNil(t, s.CreateUpstreamUser(ctx, storage.User{ID: id, Username: "name" + id, CreatedAt: now()},
			storage.UpstreamLink{Upstream: "corp", Subject: "s" + id, CreatedAt: now()}), "user "+id)
	}
	mustNil(t, s.CreateUpstreamUser(ctx, storage.User{ID: "x", Username: "other", CreatedAt: now()},
		storage.UpstreamLink{Upstream: "alpha", Subject: "s", CreatedAt: now()}), "user of another upstream")
	page, err := s.ListUpstreamUsers(ctx, "corp", "", 3)
	mustNil(t, err, "page 1")
	if len(page) != 3 || page[0].UserID != "u0" || page[2].UserID != "u2" {
		t.Fatalf("page 1: %+v", page)
	}
	page, err = s.ListUpstreamUsers(ctx, "corp", page[2].UserID, 3)
	mustNil(t, err, "page 2")
	if len(page) != 2 || page[0].UserID != "u3" || page[0].Subject != "su3" {
		t.Fatalf("page 2: %+v", page)
	}

	mustNil(t, s.DeleteUpstream(ctx, "corp"), "delete")
	wantErr(t, s.DeleteUpstream(ctx, "corp"), storage.ErrNotFound, "delete again")
	_, err = s.GetUpstreamLink(ctx, "corp", "su1")
	wantErr(t, err, storage.ErrNotFound, "a link of a deleted upstream")
	if l, err := s.GetUpstreamLink(ctx, "alpha", "s"); err != nil || l.UserID != "x" {
		t.Fatalf("another upstream's link: %+v %v", l, err)
	}
}

// testFirstPassword: a user without a password gets one once; of
// concurrent first passwords, exactly one wins and the others change
// nothing.
func testFirstPassword(t *testing.T, s storage.Storage) {
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "nopw", Username: "nopw", CreatedAt: now()}), "user without a password")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "haspw", Username: "haspw", PasswordHash: "$argon2id$old", CreatedAt: now()}), "user with one")
	wantErr(t, s.SetFirstPassword(ctx, "ghost", "$argon2id$x"), storage.ErrNotFound, "unknown user")
	wantErr(t, s.SetFirstPassword(ctx, "haspw", "$argon2id$x"), storage.ErrAlreadyExists, "a user with a password")
	if u, _ := s.GetUser(ctx, "haspw"); u.PasswordHash != "$argon2id$old" {
		t.Fatalf("the password of a user who had one changed to %q", u.PasswordHash)
	}
	const n = 6
	var wg sync.WaitGroup
	errs := make(chan error, n)
	for i := range n {
		wg.Add(1)
		go func() {
			defer wg.Done()
			errs <- s.SetFirstPassword(ctx, "nopw", fmt.Sprintf("$argon2id$%d", i))
		}()
	}
	wg.Wait()
	close(errs)
	won := 0
	for err := range errs {
		if err == nil {
			won++
		} else if !errors.Is(err, storage.ErrAlreadyExists) {
			t.Fatalf("a concurrent first password: %v", err)
		}
	}
	if u, _ := s.GetUser(ctx, "nopw"); won != 1 || u.PasswordHash == "" {
		t.Fatalf("%d first passwords won, hash %q", won, u.PasswordHash)
	}
	mustNil(t, s.DeleteUser(ctx, "nopw", now()), "cleanup")
	mustNil(t, s.DeleteUser(ctx, "haspw", now()), "cleanup")
}

// testAuditByUpstream: the events naming an upstream are found by its id,
// and only its own (not those of an upstream whose id it begins).
func testAuditByUpstream(t *testing.T, s storage.Storage) {
	t0 := time.UnixMilli(time.Now().UnixMilli()).UTC()
	for i, d := range []string{"method=upstream:corp", "method=upstream:corp+totp", "upstream=corp; state: used before (a replay)",
		"upstream=corp", "method=upstream:corp2", "upstream=corp2; username=x", "method=password", "by admin API; operator=nour; upstream=corp"} {
		mustNil(t, s.AddAuditEvent(ctx, storage.AuditEvent{ID: fmt.Sprintf("a%d", i), Time: t0.Add(time.Duration(i) * time.Millisecond),
			Type: "login", UserID: "u", Detail: d, ExpiresAt: t0.Add(time.Hour)}), "add")
	}
	evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Upstream: "corp"})
	mustNil(t, err, "list")
	var got []string
	for _, e := range evs {
		got = append(got, e.ID)
	}
	if strings.Join(got, ",") != "a7,a3,a2,a1,a0" {
		t.Fatalf("events of upstream corp: %v", got)
	}
	for _, probe := range []string{"%", "_orp", "corp%"} {
		evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Upstream: probe})
		if err != nil || len(evs) != 0 {
			t.Fatalf("upstream %q matched %d events (%v): it is no id", probe, len(evs), err)
		}
	}
}

// testUnlinkUpstream: a link is removed only while another way to sign
// in remains (a password, a passkey, another link); no such link is
// ErrNotFound.
func testUnlinkUpstream(t *testing.T, s storage.Storage) {
	link := func(user, upstream string) {
		t.Helper()
		mustNil(t, s.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: upstream, Subject: user + "@" + upstream, UserID: user, CreatedAt: now()}), "link")
	}
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "pw", Username: "pw", PasswordHash: "$argon2id$x", CreatedAt: now()}), "user")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "pk", Username: "pk", CreatedAt: now()}), "user")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "one", Username: "one", CreatedAt: now()}), "user")
	mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: "cred-pk", UserID: "pk", CreatedAt: now()}), "passkey")
	for _, u := range []string{"pw", "pk", "one"} {
		link(u, "corp")
	}
	link("one", "other")

	mustNil(t, s.UnlinkUpstream(ctx, "pw", "corp"), "unlink with a password")
	mustNil(t, s.UnlinkUpstream(ctx, "pk", "corp"), "unlink with a passkey")
	mustNil(t, s.UnlinkUpstream(ctx, "one", "corp"), "unlink with another link")
	wantErr(t, s.UnlinkUpstream(ctx, "one", "other"), storage.ErrLastWayIn, "unlink the last way in")
	if links, err := s.ListUpstreamLinks(ctx, "one"); err != nil || len(links) != 1 || links[0].Upstream != "other" {
		t.Fatalf("the refused unlink changed the links: %+v %v", links, err)
	}
	wantErr(t, s.UnlinkUpstream(ctx, "one", "corp"), storage.ErrNotFound, "unlink again")
	wantErr(t, s.UnlinkUpstream(ctx, "pw", "nosuch"), storage.ErrNotFound, "unlink no link")
	wantErr(t, s.UnlinkUpstream(ctx, "ghost", "corp"), storage.ErrNotFound, "unlink of no user")
}

// testUnlinkUpstreamRace: a person with no password and no passkey
// unlinks every one of their links at once, as from several tabs or
// nodes: all but one succeed, the last is refused with ErrLastWayIn, and
// one link remains. Each check alone would see another link left.
func testUnlinkUpstreamRace(t *testing.T, s storage.Storage) {
	const links, rounds = 8, 5
	for r := range rounds {
		user := fmt.Sprintf("racer%d", r)
		mustNil(t, s.CreateUser(ctx, storage.User{ID: user, Username: user, CreatedAt: now()}), "user")
		for i := range links {
			mustNil(t, s.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: fmt.Sprintf("up%d", i), Subject: user, UserID: user, CreatedAt: now()}), "link")
		}
		var done, refused atomic.Int64
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range links {
			wg.Go(func() {
				<-start
				switch err := s.UnlinkUpstream(ctx, user, fmt.Sprintf("up%d", i)); {
				case err == nil:
					done.Add(1)
				case errors.Is(err, storage.ErrLastWayIn):
					refused.Add(1)
				default:
					t.Error(err)
				}
			})
		}
		close(start)
		wg.Wait()
		left, err := s.ListUpstreamLinks(ctx, user)
		mustNil(t, err, "list")
		if done.Load() != links-1 || refused.Load() != 1 || len(left) != 1 {
			t.Fatalf("round %d: %d unlinked, %d refused, %d links left; want %d, 1 and 1", r, done.Load(), refused.Load(), len(left), links-1)
		}
	}
}

// testRemovePasskey: a person's passkey is removed only while another
// way to sign in remains (a password, another passkey, a link); another
// user's passkey, or none, is ErrNotFound and changes nothing.
func testRemovePasskey(t *testing.T, s storage.Storage) {
	key := func(user, id string) {
		t.Helper()
		mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: id, UserID: user, Credential: "{}", CreatedAt: now()}), "passkey")
	}
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "pw", Username: "pw", PasswordHash: "$argon2id$x", CreatedAt: now()}), "user")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "ln", Username: "ln", CreatedAt: now()}), "user")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "two", Username: "two", CreatedAt: now()}), "user")
	key("pw", "pw-1")
	key("ln", "ln-1")
	mustNil(t, s.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: "corp", Subject: "ln", UserID: "ln", CreatedAt: now()}), "link")
	key("two", "two-1")
	key("two", "two-2")

	mustNil(t, s.RemovePasskey(ctx, "pw", "pw-1"), "remove beside a password")
	mustNil(t, s.RemovePasskey(ctx, "ln", "ln-1"), "remove beside a link")
	wantErr(t, s.RemovePasskey(ctx, "two", "ln-1"), storage.ErrNotFound, "remove another user's passkey")
	mustNil(t, s.RemovePasskey(ctx, "two", "two-1"), "remove beside another passkey")
	wantErr(t, s.RemovePasskey(ctx, "two", "two-2"), storage.ErrLastWayIn, "remove the last way in")
	if keys, err := s.ListPasskeys(ctx, "two"); err != nil || len(keys) != 1 || keys[0].ID != "two-2" {
		t.Fatalf("the refused removal changed the passkeys: %+v %v", keys, err)
	}
	wantErr(t, s.RemovePasskey(ctx, "two", "two-1"), storage.ErrNotFound, "remove again")
	wantErr(t, s.RemovePasskey(ctx, "ghost", "two-2"), storage.ErrNotFound, "remove of no user")
	// The way in kept may be the passkey: unlinking the last link now is refused.
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "both", Username: "both", CreatedAt: now()}), "user")
	key("both", "both-1")
	mustNil(t, s.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: "corp", Subject: "both", UserID: "both", CreatedAt: now()}), "link")
	mustNil(t, s.UnlinkUpstream(ctx, "both", "corp"), "unlink beside a passkey")
	wantErr(t, s.RemovePasskey(ctx, "both", "both-1"), storage.ErrLastWayIn, "remove the passkey left after the unlink")
}

// testRemovePasskeyRace: a person whose only ways in are passkeys and
// links removes and unlinks every one of them at once, as from several
// tabs or nodes: all but one succeed, the last is refused with
// ErrLastWayIn, and one way in remains. Each check alone would see
// another way in left.
func testRemovePasskeyRace(t *testing.T, s storage.Storage) {
	const keys, links, rounds = 4, 4, 5
	for r := range rounds {
		user := fmt.Sprintf("keyracer%d", r)
		mustNil(t, s.CreateUser(ctx, storage.User{ID: user, Username: user, CreatedAt: now()}), "user")
		for i := range keys {
			mustNil(t, s.CreatePasskey(ctx, storage.Passkey{ID: fmt.Sprintf("%s-k%d", user, i), UserID: user, Credential: "{}", CreatedAt: now()}), "passkey")
		}
		for i := range links {
			mustNil(t, s.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: fmt.Sprintf("up%d", i), Subject: user, UserID: user, CreatedAt: now()}), "link")
		}
		var done, refused atomic.Int64
		count := func(err error) {
			switch {
			case err == nil:
				done.Add(1)
			case errors.Is(err, storage.ErrLastWayIn):
				refused.Add(1)
			default:
				t.Error(err)
			}
		}
		var wg sync.WaitGroup
		start := make(chan struct{})
		for i := range keys {
			wg.Go(func() { <-start; count(s.RemovePasskey(ctx, user, fmt.Sprintf("%s-k%d", user, i))) })
		}
		for i := range links {
			wg.Go(func() { <-start; count(s.UnlinkUpstream(ctx, user, fmt.Sprintf("up%d", i))) })
		}
		close(start)
		wg.Wait()
		leftKeys, err := s.ListPasskeys(ctx, user)
		mustNil(t, err, "list passkeys")
		leftLinks, err := s.ListUpstreamLinks(ctx, user)
		mustNil(t, err, "list links")
		if done.Load() != keys+links-1 || refused.Load() != 1 || len(leftKeys)+len(leftLinks) != 1 {
			t.Fatalf("round %d: %d removed, %d refused, %d passkeys and %d links left; want %d, 1 and one way in",
				r, done.Load(), refused.Load(), len(leftKeys), len(leftLinks), keys+links-1)
		}
	}
}
