package storagetest

import (
	"context"
	"fmt"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Kinds are what Grow adds, one at a time, for measuring bytes per kind:
//
//   - user: an account with an argon2id hash, a name and an email;
//   - grant: what one user keeps for one app: the grant, the consent and
//     the current refresh token;
//   - rotation: a rotated refresh token, kept for the reuse horizon;
//   - audit: one audit event (a token issued, with its detail).
var Kinds = []string{"user", "grant", "rotation", "audit"}

// Grow adds n rows of one kind (see Kinds), shaped like the rows the
// server writes: hashes are 64 hex digits, ids 26 characters, times now.
func Grow(ctx context.Context, s storage.Storage, kind string, n int) error {
	now := time.Now()
	for i := range n {
		id := fmt.Sprintf("%s%020d", kind[:2], i)[:22] + "ABCD"
		hash := fmt.Sprintf("%02x%062x", kind[0], i) // like a SHA-256 in hex
		var err error
		switch kind {
		case "user":
			err = s.CreateUser(ctx, storage.User{ID: id, Username: "user" + id, Name: "Amal Haddad", Email: "user" + id + "@example.com",
				PasswordHash: "$argon2id$v=19$m=19456,t=2,p=1$" + strings.Repeat("s", 22) + "$" + strings.Repeat("h", 43), CreatedAt: now})
		case "grant":
			scopes := []string{"openid", "profile", "email", "offline_access"}
			err = s.CreateGrant(ctx, storage.Grant{ID: id, ClientID: "notes", UserID: "u" + id, Scopes: scopes, AuthTime: now,
				CreatedAt: now, ExpiresAt: now.Add(90 * 24 * time.Hour)})
			if err == nil {
				err = s.SaveConsent(ctx, storage.Consent{UserID: "u" + id, ClientID: "notes", Scopes: scopes, GrantedAt: now, UpdatedAt: now})
			}
			if err == nil {
				err = s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: hash, GrantID: id, ClientID: "notes", UserID: "u" + id,
					Scopes: scopes, AuthTime: now, CreatedAt: now, ExpiresAt: now.Add(14 * 24 * time.Hour)})
			}
		case "rotation":
			err = s.CreateRefreshToken(ctx, storage.RefreshToken{Hash: hash, GrantID: id, ClientID: "notes", UserID: "u" + id,
				Scopes: []string{"openid", "profile", "email", "offline_access"}, AuthTime: now, CreatedAt: now,
				ExpiresAt: now.Add(14 * 24 * time.Hour), UsedAt: now})
		case "audit":
			err = s.AddAuditEvent(ctx, storage.AuditEvent{ID: id, Time: now, Type: "token_issued", UserID: "u" + id, ClientID: "notes",
				IP: "203.0.113.7", Detail: "grant_type=refresh_token scope=openid profile email offline_access", ExpiresAt: now.Add(365 * 24 * time.Hour)})
		default:
			return fmt.Errorf("unknown kind %q", kind)
		}
		if err != nil {
			return err
		}
	}
	return nil
}
