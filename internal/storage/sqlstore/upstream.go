package sqlstore

import (
	"context"
	"database/sql"
	"errors"
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
		_, err := tx.ExecContext(ctx, insertUser, u.ID, u.Username, u.PasswordHash, u.Name, u.Email, boolInt(u.EmailVerified), u.Picture,
			unix(u.CreatedAt), profile, unix(u.Profile.UpdatedAt), boolInt(u.Disabled), boolInt(u.Admin), emailKey(u), storage.UsernameKey(u.Username))
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

// UnlinkUpstream unlinks the user's identity at upstream while another way
// in remains. The transaction first locks the user's row (lockUser), so
// that the check, made in the delete itself, sees what a concurrent
// unlink removed: under READ COMMITTED two unlocked deletes would each
// see the other's link and both succeed.
func (s *Store) UnlinkUpstream(ctx context.Context, userID, upstream string) error {
	return s.tx(ctx, "unlink upstream", func(tx *sql.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		err := mustAffect(tx.ExecContext(ctx, `DELETE FROM upstream_links WHERE user_id = $1 AND upstream = $2 AND (
			EXISTS (SELECT 1 FROM users WHERE id = $1 AND password_hash <> '')
			OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1)
			OR EXISTS (SELECT 1 FROM upstream_links WHERE user_id = $1 AND upstream <> $2))`, userID, upstream))
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM upstream_links WHERE user_id = $1 AND upstream = $2`, userID, upstream).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return storage.ErrLastWayIn
		}
		return storage.ErrNotFound
	})
}

// DeleteUpstreamSessions ends the sessions of an upstream session and
// returns them: one statement, so that a session is returned by at most
// one of concurrent calls.
func (s *Store) DeleteUpstreamSessions(ctx context.Context, u storage.UpstreamSession) ([]storage.Session, error) {
	const del = `DELETE FROM sessions WHERE upstream = $1 AND `
	var q string
	args := []any{u.Upstream}
	switch {
	case u.Upstream == "":
		return nil, nil
	case u.SID != "" && u.Subject != "":
		q, args = del+`upstream_subject = $2 AND upstream_sid = $3`, append(args, u.Subject, u.SID)
	case u.SID != "":
		q, args = del+`upstream_sid = $2`, append(args, u.SID)
	case u.Subject != "":
		q, args = del+`upstream_subject = $2`, append(args, u.Subject)
	default:
		return nil, nil
	}
	var out []storage.Session
	err := s.tx(ctx, "delete upstream sessions", func(tx *sql.Tx) error {
		rows, err := tx.QueryContext(ctx, q+` RETURNING `+sessionCols, args...)
		if err != nil {
			return err
		}
		defer rows.Close()
		for rows.Next() {
			se, err := scanSession(rows)
			if err != nil {
				return err
			}
			out = append(out, *se)
		}
		return rows.Err()
	})
	return out, err
}

// ---- upstreams added through the admin API

const upstreamCols = `id, config, secret_sealed, enabled, created_at, updated_at`

func scanUpstream(r scanner) (*storage.Upstream, error) {
	var u storage.Upstream
	var enabled int
	var created, updated int64
	if err := r.Scan(&u.ID, &u.Config, &u.SecretSealed, &enabled, &created, &updated); err != nil {
		return nil, notFound(err)
	}
	u.Enabled, u.CreatedAt, u.UpdatedAt = enabled != 0, fromUnix(created), fromUnix(updated)
	return &u, nil
}

// CreateUpstream stores a new upstream.
func (s *Store) CreateUpstream(ctx context.Context, u storage.Upstream) error {
	_, err := s.exec(ctx, `INSERT INTO upstreams (`+upstreamCols+`) VALUES ($1, $2, $3, $4, $5, $6)`,
		u.ID, u.Config, u.SecretSealed, boolInt(u.Enabled), unix(u.CreatedAt), unix(u.UpdatedAt))
	if err != nil && s.d.IsUniqueViolation(err) {
		return fmt.Errorf("%w: upstream %s", storage.ErrAlreadyExists, u.ID)
	}
	return err
}

// GetUpstream returns one upstream.
func (s *Store) GetUpstream(ctx context.Context, id string) (*storage.Upstream, error) {
	return one(ctx, s, scanUpstream, `SELECT `+upstreamCols+` FROM upstreams WHERE id = $1`, id)
}

// ListUpstreams returns every stored upstream, by id.
func (s *Store) ListUpstreams(ctx context.Context) ([]storage.Upstream, error) {
	return list(ctx, s, scanUpstream, `SELECT `+upstreamCols+` FROM upstreams ORDER BY id`)
}

// UpdateUpstream replaces an upstream's settings.
func (s *Store) UpdateUpstream(ctx context.Context, u storage.Upstream) error {
	return mustAffect(s.exec(ctx, `UPDATE upstreams SET config = $1, secret_sealed = $2, enabled = $3, updated_at = $4 WHERE id = $5`,
		u.Config, u.SecretSealed, boolInt(u.Enabled), unix(u.UpdatedAt), u.ID))
}

// DeleteUpstream removes the upstream and its links.
func (s *Store) DeleteUpstream(ctx context.Context, id string) error {
	return s.tx(ctx, "delete upstream", func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM upstreams WHERE id = $1`, id)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `DELETE FROM upstream_links WHERE upstream = $1`, id)
		return err
	})
}

// ListUpstreamUsers returns a page of an upstream's links, by user id.
func (s *Store) ListUpstreamUsers(ctx context.Context, upstream, after string, limit int) ([]storage.UpstreamLink, error) {
	return list(ctx, s, scanLink, `SELECT `+linkCols+` FROM upstream_links WHERE upstream = $1 AND user_id > $2 ORDER BY user_id LIMIT $3`,
		upstream, after, limit)
}
