package sqlstore

import (
	"context"
	"database/sql"
	"fmt"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// ---- links to upstream identities

const linkCols = `upstream, subject, user_id, email, created_at, last_used_at`

func scanLink(r scanner) (*storage.UpstreamLink, error) {
	var l storage.UpstreamLink
	var created, used int64
	if err := r.Scan(&l.Upstream, &l.Subject, &l.UserID, &l.Email, &created, &used); err != nil {
		return nil, notFound(err)
	}
	l.CreatedAt, l.LastUsedAt = fromUnix(created), fromUnix(used)
	return &l, nil
}

// CreateUpstreamLink links an identity to an existing user.
func (s *Store) CreateUpstreamLink(ctx context.Context, l storage.UpstreamLink) error {
	return s.tx(ctx, "create upstream link", func(tx *sql.Tx) error {
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM users WHERE id = $1`, l.UserID).Scan(&n); err != nil {
			return err
		}
		if n == 0 {
			return fmt.Errorf("%w: user %s", storage.ErrNotFound, l.UserID)
		}
		return s.insertLink(ctx, tx, l)
	})
}

func (s *Store) insertLink(ctx context.Context, tx *sql.Tx, l storage.UpstreamLink) error {
	_, err := tx.ExecContext(ctx, `INSERT INTO upstream_links (`+linkCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		l.Upstream, l.Subject, l.UserID, l.Email, unix(l.CreatedAt), unix(l.LastUsedAt))
	if err != nil && s.d.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
	}
	return err
}

// CreateUpstreamUser creates a user with its link, both or neither.
func (s *Store) CreateUpstreamUser(ctx context.Context, u storage.User, l storage.UpstreamLink) error {
	profile, err := encodeProfile(u.Profile)
	if err != nil {
		return err
	}
	l.UserID = u.ID
	return s.tx(ctx, "create upstream user", func(tx *sql.Tx) error {
		// The link first: the loser of a race for one identity fails here.
		if err := s.insertLink(ctx, tx, l); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO users (`+userCols+`, email_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13)`,
			u.ID, u.Username, u.PasswordHash, u.Name, u.Email, boolInt(u.EmailVerified), u.Picture, unix(u.CreatedAt), profile,
			unix(u.Profile.UpdatedAt), boolInt(u.Disabled), boolInt(u.Admin), emailKey(u))
		if err != nil && s.d.IsUniqueViolation(err) {
			return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
		}
		return err
	})
}

// GetUpstreamLink returns the link of an identity.
func (s *Store) GetUpstreamLink(ctx context.Context, upstream, subject string) (*storage.UpstreamLink, error) {
	return one(ctx, s, scanLink, `SELECT `+linkCols+` FROM upstream_links WHERE upstream = $1 AND subject = $2`, upstream, subject)
}

// ListUpstreamLinks returns the user's links, oldest first.
func (s *Store) ListUpstreamLinks(ctx context.Context, userID string) ([]storage.UpstreamLink, error) {
	return list(ctx, s, scanLink, `SELECT `+linkCols+` FROM upstream_links WHERE user_id = $1 ORDER BY created_at, upstream`, userID)
}

// UseUpstreamLink records a sign-in through a link.
func (s *Store) UseUpstreamLink(ctx context.Context, upstream, subject string, at time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE upstream_links SET last_used_at = $1 WHERE upstream = $2 AND subject = $3`, unix(at), upstream, subject))
}

// DeleteUpstreamLink unlinks the user's identity at upstream.
func (s *Store) DeleteUpstreamLink(ctx context.Context, userID, upstream string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM upstream_links WHERE user_id = $1 AND upstream = $2`, userID, upstream))
}
