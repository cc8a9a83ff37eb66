package security

import (
	"context"
	"path/filepath"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestMayManage: a session may change a person's second factors when it
// proved one, or when it signed in before the person had any; a session
// of the password alone from after an authenticator app was turned on or
// a passkey registered may not. An unconfirmed enrolment is no factor.
func TestMayManage(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	t0 := time.Unix(1_800_000_000, 0)
	before, after := t0.Add(-time.Hour), t0.Add(time.Hour)
	users := map[string]func(id string) error{
		"none": func(string) error { return nil },
		"totp": func(id string) error {
			if err := s.SaveTOTP(ctx, storage.TOTP{UserID: id, SecretSealed: "x", CreatedAt: t0}); err != nil {
				return err
			}
			return s.ConfirmTOTP(ctx, id, "x", t0)
		},
		"pending": func(id string) error {
			return s.SaveTOTP(ctx, storage.TOTP{UserID: id, SecretSealed: "x", CreatedAt: t0})
		},
		"passkey": func(id string) error {
			return s.CreatePasskey(ctx, storage.Passkey{ID: "cred-" + id, UserID: id, Name: "k", Credential: "{}", CreatedAt: t0})
		},
	}
	for name, setup := range users {
		if err := s.CreateUser(ctx, storage.User{ID: name, Username: name, CreatedAt: before}); err != nil {
			t.Fatal(err)
		}
		if err := setup(name); err != nil {
			t.Fatal(name, err)
		}
	}
	h := &Handler{Store: s}
	tests := []struct {
		user string
		amr  []string
		at   time.Time
		want bool
	}{
		{"none", []string{"pwd"}, after, true},
		{"pending", []string{"pwd"}, after, true},
		{"totp", []string{"pwd"}, after, false},
		{"totp", []string{"pwd"}, before, true},
		{"totp", []string{"pwd"}, t0, true},
		{"totp", []string{"pwd", "otp", "mfa"}, after, true},
		{"passkey", nil, after, false},
		{"passkey", []string{"pwd"}, before, true},
		{"passkey", []string{"hwk", "mfa"}, after, true},
	}
	for _, tc := range tests {
		u, err := s.GetUser(ctx, tc.user)
		if err != nil {
			t.Fatal(err)
		}
		got, err := h.mayManage(ctx, &storage.Session{UserID: tc.user, AMR: tc.amr, AuthTime: tc.at}, u)
		if err != nil || got != tc.want {
			t.Errorf("%s, amr %v, signed in %v: %v %v, want %v", tc.user, tc.amr, tc.at.Sub(t0), got, err, tc.want)
		}
	}
}
