package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// ---- users by email

// emailKey is the unique form of u's address: confirmed addresses are
// unique, so that one address names one account, while an address typed
// at sign-up and never confirmed claims nothing (and sign-up need not
// tell whether another account has it).
func emailKey(u storage.User) string {
	if !u.EmailVerified {
		return ""
	}
	return storage.NormalEmail(u.Email)
}

// GetUserByEmail looks a user up by its confirmed address.
func (s *Store) GetUserByEmail(ctx context.Context, email string) (*storage.User, error) {
	keys := storage.EmailKeys(email)
	switch len(keys) {
	case 0:
		return nil, storage.ErrNotFound
	case 1:
		return scanUser(s.readRow(ctx, `SELECT `+userCols+` FROM users WHERE email_key = $1`, keys[0]))
	}
	// A key written before domains were normalised may spell the domain
	// in Unicode; the normalised key wins should both exist.
	return scanUser(s.readRow(ctx, `SELECT `+userCols+` FROM users WHERE email_key IN ($1, $2) ORDER BY email_key = $1 DESC LIMIT 1`,
		keys[0], keys[1]))
}

// RevokeUserGrants revokes every live grant of a user.
func (s *Store) RevokeUserGrants(ctx context.Context, userID string, at time.Time) (int64, error) {
	res, err := s.exec(ctx, `UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at = 0`, unix(at), userID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// ---- mail outbox

const mailCols = `id, recipient, subject, body, kind, created_at, attempts, next_ms, last_error, lease_ms, sent_at, expires_at`

func scanMail(r scanner) (*storage.Mail, error) {
	var m storage.Mail
	var created, next, lease, sent, expires int64
	if err := r.Scan(&m.ID, &m.To, &m.Subject, &m.Body, &m.Kind, &created, &m.Attempts, &next, &m.LastError, &lease, &sent, &expires); err != nil {
		return nil, notFound(err)
	}
	m.CreatedAt, m.SentAt, m.ExpiresAt = fromUnix(created), fromUnix(sent), fromUnix(expires)
	m.NextAt, m.LeaseUntil = fromMilli(next), fromMilli(lease)
	return &m, nil
}

func milli(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.UnixMilli()
}

func fromMilli(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.UnixMilli(n).UTC()
}

// EnqueueMail stores a message to send.
func (s *Store) EnqueueMail(ctx context.Context, m storage.Mail) error {
	return s.insert(ctx, `INSERT INTO mail_outbox (`+mailCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12)`,
		m.ID, m.To, m.Subject, m.Body, m.Kind, unix(m.CreatedAt), m.Attempts, milli(m.NextAt), m.LastError, milli(m.LeaseUntil), unix(m.SentAt), unix(m.ExpiresAt))
}

// ClaimMail picks due messages, then leases each with a conditional
// UPDATE that only one caller can win: a message another node leased in
// between is skipped.
func (s *Store) ClaimMail(ctx context.Context, now, leaseUntil time.Time, limit int) ([]storage.Mail, error) {
	ms := now.UnixMilli()
	rows, err := s.read(ctx, `SELECT id FROM mail_outbox WHERE sent_at = 0 AND next_ms <= $1 AND lease_ms <= $1 AND expires_at > $2
		ORDER BY next_ms, id LIMIT $3`, ms, unix(now), limit)
	if err != nil {
		return nil, err
	}
	var ids []string
	for rows.Next() {
		var id string
		if err := rows.Scan(&id); err != nil {
			rows.Close()
			return nil, s.classify(err)
		}
		ids = append(ids, id)
	}
	rows.Close()
	if err := rows.Err(); err != nil {
		return nil, s.classify(err)
	}
	var out []storage.Mail
	for _, id := range ids {
		m, err := scanMail(s.writeRow(ctx, `UPDATE mail_outbox SET lease_ms = $1 WHERE id = $2 AND sent_at = 0 AND lease_ms <= $3 RETURNING `+mailCols,
			leaseUntil.UnixMilli(), id, ms))
		if errors.Is(err, storage.ErrNotFound) {
			continue // another sender won it
		}
		if err != nil {
			return out, err
		}
		out = append(out, *m)
	}
	return out, nil
}

// MailSent marks a message delivered and forgets its body, which may
// hold a link's secret.
func (s *Store) MailSent(ctx context.Context, id string, at time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE mail_outbox SET sent_at = $1, body = '', lease_ms = 0 WHERE id = $2`, unix(at), id))
}

// MailFailed records a failed delivery and when to try again.
func (s *Store) MailFailed(ctx context.Context, id, lastError string, next time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE mail_outbox SET attempts = attempts + 1, last_error = $1, next_ms = $2, lease_ms = 0 WHERE id = $3 AND sent_at = 0`,
		lastError, next.UnixMilli(), id))
}

// ---- emailed single-use links

const accountTokenCols = `hash, kind, user_id, email, created_at, expires_at, used_at`

func scanAccountToken(r scanner) (*storage.AccountToken, error) {
	var t storage.AccountToken
	var created, expires, used int64
	if err := r.Scan(&t.Hash, &t.Kind, &t.UserID, &t.Email, &created, &expires, &used); err != nil {
		return nil, notFound(err)
	}
	t.CreatedAt, t.ExpiresAt, t.UsedAt = fromUnix(created), fromUnix(expires), fromUnix(used)
	return &t, nil
}

// CreateAccountToken stores a link.
func (s *Store) CreateAccountToken(ctx context.Context, t storage.AccountToken) error {
	return s.insert(ctx, `INSERT INTO account_tokens (`+accountTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		t.Hash, t.Kind, t.UserID, t.Email, unix(t.CreatedAt), unix(t.ExpiresAt), unix(t.UsedAt))
}

// ReplaceAccountToken voids the user's unused links of t's kind and stores
// t, in one transaction that first locks the user's row (lockUser): of
// concurrent replacements, each waits for the one before to commit and
// voids its link, so that one link is left.
func (s *Store) ReplaceAccountToken(ctx context.Context, t storage.AccountToken) error {
	return s.tx(ctx, "replace account token", func(tx *sql.Tx) error {
		if err := lockUser(ctx, tx, t.UserID); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM account_tokens WHERE user_id = $1 AND kind = $2 AND used_at = 0`, t.UserID, t.Kind); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `INSERT INTO account_tokens (`+accountTokenCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
			t.Hash, t.Kind, t.UserID, t.Email, unix(t.CreatedAt), unix(t.ExpiresAt), unix(t.UsedAt))
		if err != nil && s.d.IsUniqueViolation(err) {
			return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
		}
		return err
	})
}

// GetAccountToken reads a live link.
func (s *Store) GetAccountToken(ctx context.Context, hash, kind string, now time.Time) (*storage.AccountToken, error) {
	t, err := scanAccountToken(s.readRow(ctx, `SELECT `+accountTokenCols+` FROM account_tokens WHERE hash = $1 AND kind = $2 AND expires_at > $3`,
		hash, kind, unix(now)))
	if err != nil {
		return nil, err
	}
	if !t.UsedAt.IsZero() {
		return t, storage.ErrAlreadyUsed
	}
	return t, nil
}

// ConsumeAccountToken uses a link with one conditional UPDATE.
func (s *Store) ConsumeAccountToken(ctx context.Context, hash, kind string, at time.Time) (*storage.AccountToken, error) {
	t, err := scanAccountToken(s.writeRow(ctx, `UPDATE account_tokens SET used_at = $1
		WHERE hash = $2 AND kind = $3 AND used_at = 0 AND expires_at > $1 RETURNING `+accountTokenCols, unix(at), hash, kind))
	if !errors.Is(err, storage.ErrNotFound) {
		return t, err
	}
	t, err = scanAccountToken(s.readRow(ctx, `SELECT `+accountTokenCols+` FROM account_tokens WHERE hash = $1 AND kind = $2 AND expires_at > $3`,
		hash, kind, unix(at)))
	if err != nil {
		return nil, err
	}
	return t, storage.ErrAlreadyUsed
}

// DeleteAccountTokens removes a user's unused links of a kind.
func (s *Store) DeleteAccountTokens(ctx context.Context, userID, kind string) error {
	_, err := s.exec(ctx, `DELETE FROM account_tokens WHERE user_id = $1 AND kind = $2 AND used_at = 0`, userID, kind)
	return err
}
