package admin

import (
	"context"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// CheckProfile validates what u says about a person (see
// storage.CheckProfile); errors are *InvalidError.
func CheckProfile(u *storage.User) error {
	if err := storage.CheckProfile(u); err != nil {
		return invalid("%v", err)
	}
	return nil
}

// UpdateProfile validates and stores u's name, email, picture and
// standard claims, and stamps updated_at (OpenID Connect Core §5.1).
func UpdateProfile(ctx context.Context, s storage.Storage, u storage.User, now time.Time) error {
	if err := CheckProfile(&u); err != nil {
		return err
	}
	if u.Name == "" {
		u.Name = u.Username
	}
	u.Profile.UpdatedAt = now
	return s.UpdateUser(ctx, u)
}
