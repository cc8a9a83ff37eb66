package sqlstore

import (
	"context"
	"errors"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// ---- initial access tokens of dynamic client registration

const iatCols = `id, hash, label, created_by, created_at, expires_at, max_uses, uses, revoked_at`

func scanIAT(r scanner) (*storage.InitialAccessToken, error) {
	var t storage.InitialAccessToken
	var created, expires, revoked int64
	if err := r.Scan(&t.ID, &t.Hash, &t.Label, &t.CreatedBy, &created, &expires, &t.MaxUses, &t.Uses, &revoked); err != nil {
		return nil, notFound(err)
	}
	t.CreatedAt, t.ExpiresAt, t.RevokedAt = fromUnix(created), fromUnix(expires), fromUnix(revoked)
	return &t, nil
}

// CreateInitialAccessToken stores a new token.
func (s *Store) CreateInitialAccessToken(ctx context.Context, t storage.InitialAccessToken) error {
	return s.insert(ctx, `INSERT INTO initial_access_tokens (`+iatCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		t.ID, t.Hash, t.Label, t.CreatedBy, unix(t.CreatedAt), unix(t.ExpiresAt), t.MaxUses, t.Uses, unix(t.RevokedAt))
}

// GetInitialAccessToken returns a token by hash.
func (s *Store) GetInitialAccessToken(ctx context.Context, hash string) (*storage.InitialAccessToken, error) {
	return one(ctx, s, scanIAT, `SELECT `+iatCols+` FROM initial_access_tokens WHERE hash = $1`, hash)
}

// ListInitialAccessTokens returns every token, newest first.
func (s *Store) ListInitialAccessTokens(ctx context.Context) ([]storage.InitialAccessToken, error) {
	return list(ctx, s, scanIAT, `SELECT `+iatCols+` FROM initial_access_tokens ORDER BY created_at DESC, id`)
}

// UseInitialAccessToken counts a use with one conditional UPDATE, which
// at most as many callers as the token has uses left can win.
func (s *Store) UseInitialAccessToken(ctx context.Context, hash string, at time.Time) (*storage.InitialAccessToken, error) {
	t, err := scanIAT(s.writeRow(ctx, `UPDATE initial_access_tokens SET uses = uses + 1
		WHERE hash = $1 AND revoked_at = 0 AND (expires_at = 0 OR expires_at > $2) AND (max_uses = 0 OR uses < max_uses)
		RETURNING `+iatCols, hash, at.Unix()))
	if !errors.Is(err, storage.ErrNotFound) {
		return t, err
	}
	if t, err = s.GetInitialAccessToken(ctx, hash); err != nil {
		return nil, err
	}
	return t, storage.ErrAlreadyUsed
}

// RevokeInitialAccessToken revokes a token by id.
func (s *Store) RevokeInitialAccessToken(ctx context.Context, id string, at time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE initial_access_tokens SET revoked_at = CASE WHEN revoked_at = 0 THEN $1 ELSE revoked_at END WHERE id = $2`,
		unix(at), id))
}
