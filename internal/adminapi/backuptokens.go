package adminapi

import (
	"context"
	"encoding/hex"
	"errors"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// BackupRegistrationToken is an initial access token of dynamic client
// registration (RFC 7591 §3) as stored: its hash (never the token, which
// the store does not keep), its uses and its revocation, so that after a
// restore an issued token still registers clients up to its limit and a
// revoked one stays revoked.
type BackupRegistrationToken struct {
	ID        string    `json:"id"`
	Hash      string    `json:"hash"`
	Label     string    `json:"label"`
	CreatedBy string    `json:"created_by"`
	CreatedAt time.Time `json:"created_at"`
	ExpiresAt time.Time `json:"expires_at,omitzero"`
	MaxUses   int       `json:"max_uses"`
	Uses      int       `json:"uses"`
	RevokedAt time.Time `json:"revoked_at,omitzero"`
}

// backupRegistrationTokens reads the initial access tokens for a backup.
func (a *API) backupRegistrationTokens(ctx context.Context) ([]BackupRegistrationToken, error) {
	toks, err := a.Store.ListInitialAccessTokens(ctx)
	if err != nil {
		return nil, err
	}
	out := []BackupRegistrationToken{}
	for _, t := range toks {
		out = append(out, BackupRegistrationToken{t.ID, t.Hash, t.Label, t.CreatedBy, t.CreatedAt, t.ExpiresAt, t.MaxUses, t.Uses, t.RevokedAt})
	}
	return out, nil
}

// check checks a backup's initial access token: an id, a hash as
// storage.Hash makes it (SHA-256, hex), a label and issuer as the admin
// API takes them, and uses within the limits of a new token.
func (t BackupRegistrationToken) check() error {
	what := "registration token " + strconv.Quote(t.ID) + ": "
	switch {
	case t.ID == "" || !storage.ValidText(t.ID) || len(t.ID) > 200:
		return badRequest(what + "id must be text of at most 200 bytes")
	case !sha256Hex(t.Hash):
		return badRequest(what + "hash must be a SHA-256 hash, 64 hex digits")
	case !storage.ValidText(t.Label) || len(t.Label) > maxTokenLabel || !storage.ValidText(t.CreatedBy) || len(t.CreatedBy) > maxTokenLabel:
		return badRequest(what + "label and created_by must be text of at most 200 bytes")
	case t.MaxUses < 0 || t.MaxUses > maxTokenUses || t.Uses < 0 || t.Uses > maxTokenUses:
		return badRequest(what + "max_uses and uses must be numbers from 0 to 1000000")
	}
	return nil
}

// sha256Hex reports whether s is a SHA-256 hash in lowercase hex, as
// storage.Hash writes it.
func sha256Hex(s string) bool {
	b, err := hex.DecodeString(s)
	return err == nil && len(b) == 32 && hex.EncodeToString(b) == s
}

// importRegistrationTokens stores the initial access tokens of a backup,
// leaving alone those whose id or hash exists already.
func (a *API) importRegistrationTokens(ctx context.Context, list []BackupRegistrationToken, out *Imported) error {
	for _, t := range list {
		err := a.Store.CreateInitialAccessToken(ctx, storage.InitialAccessToken{ID: t.ID, Hash: t.Hash, Label: t.Label, CreatedBy: t.CreatedBy,
			CreatedAt: t.CreatedAt, ExpiresAt: t.ExpiresAt, MaxUses: t.MaxUses, Uses: t.Uses, RevokedAt: t.RevokedAt})
		switch {
		case errors.Is(err, storage.ErrAlreadyExists):
			out.RegistrationTokensSkipped++
		case err != nil:
			return err
		default:
			out.RegistrationTokensAdded++
		}
	}
	return nil
}
