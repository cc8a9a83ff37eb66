package console

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestCheckSecondFactor: the callback reads the ID token's amr and acr
// again, whatever the request asked: an admin who set up a factor (an
// authenticator app, a passkey) is refused a token without mfa; under
// "required", every admin is; a token with mfa passes.
func TestCheckSecondFactor(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	at := time.Now()
	for _, id := range []string{"with-totp", "with-pending-totp", "with-passkey", "without"} {
		if err := store.CreateUser(ctx, storage.User{ID: id, Username: id, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	for _, id := range []string{"with-totp", "with-pending-totp"} {
		if err := store.SaveTOTP(ctx, storage.TOTP{UserID: id, SecretSealed: "sealed-" + id, CreatedAt: at}); err != nil {
			t.Fatal(err)
		}
	}
	if err := store.ConfirmTOTP(ctx, "with-totp", "sealed-with-totp", at); err != nil {
		t.Fatal(err)
	}
	if err := store.CreatePasskey(ctx, storage.Passkey{ID: "cred", UserID: "with-passkey", Name: "key", Credential: "{}", CreatedAt: at}); err != nil {
		t.Fatal(err)
	}
	pwd, mfa := []string{signin.AMRPassword}, []string{signin.AMRPassword, signin.AMROTP, signin.AMRMFA}
	for _, tt := range []struct {
		name, policy, user string
		noPasskeys         bool
		amr                []string
		acr                string
		refused            bool
	}{
		{"enrolled: totp, password only", SecondFactorEnrolled, "with-totp", false, pwd, signin.ACRPassword, true},
		{"enrolled: totp, mfa", SecondFactorEnrolled, "with-totp", false, mfa, signin.ACRMFA, false},
		{"enrolled: totp, mfa amr but password acr", SecondFactorEnrolled, "with-totp", false, mfa, signin.ACRPassword, true},
		{"enrolled: totp, mfa acr but password amr", SecondFactorEnrolled, "with-totp", false, pwd, signin.ACRMFA, true},
		{"enrolled: totp, no amr", SecondFactorEnrolled, "with-totp", false, nil, "", true},
		{"enrolled: passkey, password only", SecondFactorEnrolled, "with-passkey", false, pwd, signin.ACRPassword, true},
		{"enrolled: an unconfirmed enrolment is none", SecondFactorEnrolled, "with-pending-totp", false, pwd, signin.ACRPassword, false},
		{"enrolled: no factor, password", SecondFactorEnrolled, "without", false, pwd, signin.ACRPassword, false},
		{"empty reads as enrolled", "", "with-totp", false, pwd, signin.ACRPassword, true},
		{"required: no factor, password", SecondFactorRequired, "without", false, pwd, signin.ACRPassword, true},
		{"passkeys off: a passkey cannot be passed, so it is none", SecondFactorEnrolled, "with-passkey", true, pwd, signin.ACRPassword, false},
		{"passkeys off: totp still counts", SecondFactorEnrolled, "with-totp", true, pwd, signin.ACRPassword, true},
		{"required: mfa", SecondFactorRequired, "without", false, mfa, signin.ACRMFA, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := &Console{Store: store, SecondFactor: tt.policy, NoPasskeys: tt.noPasskeys}
			err := c.checkSecondFactor(ctx, tt.user, tt.amr, tt.acr)
			if got := errors.Is(err, errNoSecondFactor); got != tt.refused || (err != nil && !got) {
				t.Fatalf("checkSecondFactor = %v, refused %v", err, tt.refused)
			}
		})
	}
}
