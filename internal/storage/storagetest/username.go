package storagetest

import (
	"errors"
	"fmt"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// testUsernameKeys: usernames are unique under storage.UsernameKey, for
// users made any way (CreateUser, CreateUpstreamUser): admin, Admin and
// full-width ａｄｍｉｎ are one name; each is kept as given and found by
// exactly its own spelling.
func testUsernameKeys(t *testing.T, s storage.Storage) {
	user := func(id, name string) storage.User {
		return storage.User{ID: id, Username: name, PasswordHash: "$argon2id$x", Name: name, CreatedAt: now()}
	}
	mustNil(t, s.CreateUser(ctx, user("u1", "Admin")), "create Admin")
	for i, name := range []string{"admin", "ADMIN", "ａｄｍｉｎ", "ＡＤＭＩＮ", "Admin"} {
		wantErr(t, s.CreateUser(ctx, user(fmt.Sprintf("x%d", i), name)), storage.ErrAlreadyExists, "create "+name)
		taken, err := s.UsernameTaken(ctx, name)
		mustNil(t, err, "taken "+name)
		if !taken {
			t.Errorf("UsernameTaken(%q) = false with Admin stored", name)
		}
	}
	err := s.CreateUpstreamUser(ctx, user("x9", "admin"), storage.UpstreamLink{Upstream: "corp", Subject: "s1", CreatedAt: now()})
	wantErr(t, err, storage.ErrAlreadyExists, "create upstream user admin")
	if _, err := s.GetUpstreamLink(ctx, "corp", "s1"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the link of a refused upstream user: %v", err)
	}
	mustNil(t, s.CreateUpstreamUser(ctx, user("u2", "admin-2"), storage.UpstreamLink{Upstream: "corp", Subject: "s1", CreatedAt: now()}),
		"create upstream user under a free name")
	if got, err := s.GetUserByUsername(ctx, "Admin"); err != nil || got.ID != "u1" || got.Username != "Admin" {
		t.Fatalf("get Admin: %+v %v", got, err)
	}
	if _, err := s.GetUserByUsername(ctx, "admin"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("get admin (another spelling): %v, want ErrNotFound", err)
	}
	for _, name := range []string{"admins", "nobody", ""} {
		if taken, err := s.UsernameTaken(ctx, name); err != nil || taken {
			t.Errorf("UsernameTaken(%q) = %v %v, want false", name, taken, err)
		}
	}
	// Deleting the user frees the name in every spelling.
	mustNil(t, s.DeleteUser(ctx, "u1", now()), "delete Admin")
	mustNil(t, s.CreateUser(ctx, user("u3", "ａｄｍｉｎ")), "create ａｄｍｉｎ once Admin is gone")
}

// testUsernameKeyRace: of concurrent creations of lookalike names, one
// wins, whether through CreateUser or CreateUpstreamUser.
func testUsernameKeyRace(t *testing.T, s storage.Storage) {
	names := []string{"Admin", "admin", "ADMIN", "ａｄｍｉｎ", "aDmIn", "ＡＤＭＩＮ", "adMIN", "ADmin"}
	onlyOneWins(t, len(names), func(i int) error {
		u := storage.User{ID: fmt.Sprintf("r%d", i), Username: names[i], PasswordHash: "$argon2id$x", Name: "r", CreatedAt: now()}
		var err error
		if i%2 == 0 {
			err = s.CreateUser(ctx, u)
		} else {
			err = s.CreateUpstreamUser(ctx, u, storage.UpstreamLink{Upstream: "corp", Subject: u.ID, CreatedAt: now()})
		}
		if errors.Is(err, storage.ErrAlreadyExists) {
			return storage.ErrAlreadyUsed // onlyOneWins counts these as the losers
		}
		return err
	})
	users, err := s.ListUsers(ctx)
	mustNil(t, err, "list")
	if len(users) != 1 {
		t.Fatalf("%d users after the race, want 1: %+v", len(users), users)
	}
}
