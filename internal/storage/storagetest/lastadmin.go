package storagetest

import (
	"errors"
	"fmt"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// enabledAdmins counts the users who may sign in to the admin console.
func enabledAdmins(t *testing.T, s storage.Storage) int {
	t.Helper()
	users, err := s.ListUsers(ctx)
	mustNil(t, err, "list users")
	n := 0
	for _, u := range users {
		if u.Admin && !u.Disabled {
			n++
		}
	}
	return n
}

// testKeepingAdmin: each change of KeepingAdmin is made while another
// enabled admin remains, and refused (ErrLastAdmin, nothing changed) for
// the last one; a user who is no enabled admin is changed whatever the
// count, so a store without any admin keeps working; an unknown user is
// ErrNotFound.
func testKeepingAdmin(t *testing.T, s storage.Storage) {
	for i, id := range []string{"a1", "a2", "a3"} {
		mustNil(t, s.CreateUser(ctx, storage.User{ID: id, Username: "admin" + string(rune('a'+i)), PasswordHash: "$argon2id$x", CreatedAt: now(), Admin: true}), "create admin")
	}
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "off", Username: "disabledadmin", PasswordHash: "$argon2id$x", CreatedAt: now(), Admin: true, Disabled: true}), "create disabled admin")
	mustNil(t, s.CreateUser(ctx, storage.User{ID: "u1", Username: "plain", PasswordHash: "$argon2id$x", CreatedAt: now()}), "create user")

	mustNil(t, s.KeepingAdmin(ctx, "a1", storage.Demote, now()), "demote a1 (two remain)")
	mustNil(t, s.KeepingAdmin(ctx, "a2", storage.Disable, now()), "disable a2 (one remains)")
	for _, change := range []storage.AdminLoss{storage.Demote, storage.Disable, storage.Delete} {
		if err := s.KeepingAdmin(ctx, "a3", change, now()); !errors.Is(err, storage.ErrLastAdmin) {
			t.Fatalf("change %d of the last enabled admin: %v, want ErrLastAdmin", change, err)
		}
	}
	if u, err := s.GetUser(ctx, "a3"); err != nil || !u.Admin || u.Disabled {
		t.Fatalf("the refused changes changed the last admin: %+v %v", u, err)
	}
	// A disabled admin and a plain user count for nothing.
	mustNil(t, s.KeepingAdmin(ctx, "off", storage.Demote, now()), "demote a disabled admin")
	mustNil(t, s.KeepingAdmin(ctx, "u1", storage.Disable, now()), "disable a plain user")
	mustNil(t, s.KeepingAdmin(ctx, "a2", storage.Delete, now()), "delete a disabled admin")
	if _, err := s.GetUser(ctx, "a2"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted user: %v", err)
	}
	if err := s.KeepingAdmin(ctx, "nobody", storage.Demote, now()); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("unknown user: %v, want ErrNotFound", err)
	}
	// With another admin, the last one's deletion is made, in full.
	mustNil(t, s.SetUserAdmin(ctx, "a1", true), "promote a1")
	mustNil(t, s.KeepingAdmin(ctx, "a3", storage.Delete, now()), "delete a3 (a1 remains)")
	if _, err := s.GetUser(ctx, "a3"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted admin: %v", err)
	}
	// No admin at all: nothing is refused.
	mustNil(t, s.SetUserAdmin(ctx, "a1", false), "demote a1 directly")
	mustNil(t, s.KeepingAdmin(ctx, "a1", storage.Disable, now()), "disable with no admin")
	mustNil(t, s.KeepingAdmin(ctx, "a1", storage.Delete, now()), "delete with no admin")
	if n := enabledAdmins(t, s); n != 0 {
		t.Fatalf("enabled admins: %d", n)
	}
}

// testKeepingAdminRace: two admins take each other's role (or disable or
// delete each other) at the same moment, round after round: one of the
// two changes is refused, and an enabled admin always remains.
func testKeepingAdminRace(t *testing.T, s storage.Storage) {
	changes := []storage.AdminLoss{storage.Demote, storage.Disable, storage.Delete}
	for round := range 30 {
		a, b := fmt.Sprintf("r%da", round), fmt.Sprintf("r%db", round)
		for _, id := range []string{a, b} {
			mustNil(t, s.CreateUser(ctx, storage.User{ID: id, Username: "racer" + id, PasswordHash: "$argon2id$x", CreatedAt: now(), Admin: true}), "create admin")
		}
		change := changes[round%len(changes)]
		var wg sync.WaitGroup
		errs := make([]error, 2)
		start := make(chan struct{})
		for i, target := range []string{b, a} {
			wg.Add(1)
			go func() {
				defer wg.Done()
				<-start
				errs[i] = s.KeepingAdmin(ctx, target, change, now())
			}()
		}
		close(start)
		wg.Wait()
		refused := 0
		for _, err := range errs {
			switch {
			case err == nil:
			case errors.Is(err, storage.ErrLastAdmin):
				refused++
			default:
				t.Fatalf("round %d: %v", round, err)
			}
		}
		if refused != 1 {
			t.Fatalf("round %d (change %d): %d changes refused, want 1: %v", round, change, refused, errs)
		}
		if n := enabledAdmins(t, s); n != 1 {
			t.Fatalf("round %d: %d enabled admins, want 1", round, n)
		}
		// The survivor steps down directly, for the next round.
		for _, id := range []string{a, b} {
			if err := s.SetUserAdmin(ctx, id, false); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
		}
	}
}
