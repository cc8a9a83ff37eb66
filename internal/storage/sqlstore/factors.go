package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"math"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// ---- second factors: TOTP, recovery codes, passkeys

func scanTOTP(r scanner) (*storage.TOTP, error) {
	var t storage.TOTP
	var created, confirmed int64
	if err := r.Scan(&t.UserID, &t.SecretSealed, &created, &confirmed); err != nil {
		return nil, notFound(err)
	}
	t.CreatedAt, t.ConfirmedAt = fromUnix(created), fromUnix(confirmed)
	return &t, nil
}

// one returns the single row a lookup found, or ErrNotFound.
func one[T any](ctx context.Context, s *Store, scan func(scanner) (*T, error), q string, args ...any) (*T, error) {
	l, err := list(ctx, s, scan, q, args...)
	if err != nil {
		return nil, err
	}
	if len(l) == 0 {
		return nil, storage.ErrNotFound
	}
	return &l[0], nil
}

// SaveTOTP stores an enrolment in one statement: the conflict clause
// replaces only an unconfirmed secret, so a confirmed one is never
// overwritten, even by a save racing its confirmation.
func (s *Store) SaveTOTP(ctx context.Context, t storage.TOTP) error {
	res, err := s.exec(ctx, `INSERT INTO totp_secrets (user_id, secret_sealed, created_at, confirmed_at) VALUES ($1, $2, $3, $4)
		ON CONFLICT (user_id) DO UPDATE SET secret_sealed = excluded.secret_sealed, created_at = excluded.created_at, confirmed_at = excluded.confirmed_at
		WHERE totp_secrets.confirmed_at = 0`, t.UserID, t.SecretSealed, unix(t.CreatedAt), unix(t.ConfirmedAt))
	if err := mustAffect(res, err); errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: user %s has an active TOTP", storage.ErrAlreadyExists, t.UserID)
	} else if err != nil {
		return err
	}
	return nil
}

// GetTOTP returns the user's TOTP enrolment.
func (s *Store) GetTOTP(ctx context.Context, userID string) (*storage.TOTP, error) {
	return one(ctx, s, scanTOTP, `SELECT user_id, secret_sealed, created_at, confirmed_at FROM totp_secrets WHERE user_id = $1`, userID)
}

// ConfirmTOTP activates the enrolment whose secret is still secretSealed.
func (s *Store) ConfirmTOTP(ctx context.Context, userID, secretSealed string, at time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE totp_secrets SET confirmed_at = $1 WHERE user_id = $2 AND secret_sealed = $3 AND confirmed_at = 0`,
		unix(at), userID, secretSealed))
}

// Enrolment asks both tables in one SELECT.
func (s *Store) Enrolment(ctx context.Context, userID string) (storage.Enrolment, error) {
	var e storage.Enrolment
	err := s.readRow(ctx, `SELECT EXISTS (SELECT 1 FROM totp_secrets WHERE user_id = $1 AND confirmed_at <> 0),
		EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1)`, userID).Scan(&e.TOTP, &e.Passkeys)
	return e, err
}

// DeleteTOTP removes the user's TOTP.
func (s *Store) DeleteTOTP(ctx context.Context, userID string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM totp_secrets WHERE user_id = $1`, userID))
}

// ReplaceRecoveryCodes swaps the user's recovery codes for new ones.
func (s *Store) ReplaceRecoveryCodes(ctx context.Context, userID string, hashes []string, at time.Time) error {
	return s.tx(ctx, "replace recovery codes", func(tx *sql.Tx) error {
		if _, err := tx.ExecContext(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID); err != nil {
			return err
		}
		for _, h := range hashes {
			if _, err := tx.ExecContext(ctx, `INSERT INTO recovery_codes (user_id, hash, created_at, used_at) VALUES ($1, $2, $3, 0)`, userID, h, unix(at)); err != nil {
				if s.d.IsUniqueViolation(err) {
					return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
				}
				return err
			}
		}
		return nil
	})
}

// UseRecoveryCode spends a code with one conditional UPDATE, which at
// most one caller wins.
func (s *Store) UseRecoveryCode(ctx context.Context, userID, hash string, at time.Time) error {
	err := mustAffect(s.exec(ctx, `UPDATE recovery_codes SET used_at = $1 WHERE user_id = $2 AND hash = $3 AND used_at = 0`, unix(at), userID, hash))
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	n, err := s.countRows(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND hash = $2`, userID, hash)
	switch {
	case err != nil:
		return err
	case n > 0:
		return storage.ErrAlreadyUsed
	}
	return storage.ErrNotFound
}

// CountRecoveryCodes counts the user's unused codes.
func (s *Store) CountRecoveryCodes(ctx context.Context, userID string) (int, error) {
	return s.countRows(ctx, `SELECT COUNT(*) FROM recovery_codes WHERE user_id = $1 AND used_at = 0`, userID)
}

// ListRecoveryCodes returns the hashes of the user's unused codes.
func (s *Store) ListRecoveryCodes(ctx context.Context, userID string) ([]string, error) {
	return list(ctx, s, scanHash, `SELECT hash FROM recovery_codes WHERE user_id = $1 AND used_at = 0 ORDER BY hash`, userID)
}

func scanHash(r scanner) (*string, error) {
	var h string
	return &h, r.Scan(&h)
}

// DeleteRecoveryCodes removes the user's codes.
func (s *Store) DeleteRecoveryCodes(ctx context.Context, userID string) error {
	_, err := s.exec(ctx, `DELETE FROM recovery_codes WHERE user_id = $1`, userID)
	return err
}

type count struct{ n int }

func scanCount(r scanner) (*count, error) {
	var c count
	return &c, r.Scan(&c.n)
}

func (s *Store) countRows(ctx context.Context, q string, args ...any) (int, error) {
	c, err := one(ctx, s, scanCount, q, args...)
	if err != nil {
		return 0, err
	}
	return c.n, nil
}

const passkeyCols = `id, user_id, name, credential, sign_count, created_at, last_used_at`

func scanPasskey(r scanner) (*storage.Passkey, error) {
	var p storage.Passkey
	var n, created, used int64
	if err := r.Scan(&p.ID, &p.UserID, &p.Name, &p.Credential, &n, &created, &used); err != nil {
		return nil, notFound(err)
	}
	if n < 0 || n > math.MaxUint32 {
		return nil, fmt.Errorf("passkey %s: sign count %d out of range", p.ID, n)
	}
	p.SignCount, p.CreatedAt, p.LastUsedAt = uint32(n), fromUnix(created), fromUnix(used)
	return &p, nil
}

// CreatePasskey stores a new passkey.
func (s *Store) CreatePasskey(ctx context.Context, p storage.Passkey) error {
	return s.insert(ctx, `INSERT INTO passkeys (`+passkeyCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7)`,
		p.ID, p.UserID, p.Name, p.Credential, int64(p.SignCount), unix(p.CreatedAt), unix(p.LastUsedAt))
}

// GetPasskey returns a passkey by credential id.
func (s *Store) GetPasskey(ctx context.Context, id string) (*storage.Passkey, error) {
	return one(ctx, s, scanPasskey, `SELECT `+passkeyCols+` FROM passkeys WHERE id = $1`, id)
}

// ListPasskeys returns the user's passkeys, oldest first.
func (s *Store) ListPasskeys(ctx context.Context, userID string) ([]storage.Passkey, error) {
	return list(ctx, s, scanPasskey, `SELECT `+passkeyCols+` FROM passkeys WHERE user_id = $1 ORDER BY created_at, id`, userID)
}

// RenamePasskey renames one of the user's passkeys.
func (s *Store) RenamePasskey(ctx context.Context, userID, id, name string) error {
	return mustAffect(s.exec(ctx, `UPDATE passkeys SET name = $1 WHERE user_id = $2 AND id = $3`, name, userID, id))
}

// DeletePasskey removes one of the user's passkeys.
func (s *Store) DeletePasskey(ctx context.Context, userID, id string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM passkeys WHERE user_id = $1 AND id = $2`, userID, id))
}

// RemovePasskey removes one of the user's passkeys while another way in
// remains. Like UnlinkUpstream, the transaction first locks the user's
// row (lockUser), so that the check, made in the delete itself, sees what
// a concurrent unlink or removal took away.
func (s *Store) RemovePasskey(ctx context.Context, userID, id string) error {
	return s.tx(ctx, "remove passkey", func(tx *sql.Tx) error {
		if err := lockUser(ctx, tx, userID); err != nil {
			return err
		}
		err := mustAffect(tx.ExecContext(ctx, `DELETE FROM passkeys WHERE user_id = $1 AND id = $2 AND (
			EXISTS (SELECT 1 FROM users WHERE id = $1 AND password_hash <> '')
			OR EXISTS (SELECT 1 FROM passkeys WHERE user_id = $1 AND id <> $2)
			OR EXISTS (SELECT 1 FROM upstream_links WHERE user_id = $1))`, userID, id))
		if !errors.Is(err, storage.ErrNotFound) {
			return err
		}
		var n int
		if err := tx.QueryRowContext(ctx, `SELECT COUNT(*) FROM passkeys WHERE user_id = $1 AND id = $2`, userID, id).Scan(&n); err != nil {
			return err
		}
		if n > 0 {
			return storage.ErrLastWayIn
		}
		return storage.ErrNotFound
	})
}

// UsePasskey moves the signature counter forward with one conditional
// UPDATE: a count that does not grow changes no row.
func (s *Store) UsePasskey(ctx context.Context, id string, signCount uint32, credential string, at time.Time) error {
	n := int64(signCount)
	err := mustAffect(s.exec(ctx, `UPDATE passkeys SET sign_count = $1, credential = $2, last_used_at = $3
		WHERE id = $4 AND (sign_count < $5 OR (sign_count = 0 AND $6 = 1))`, n, credential, unix(at), id, n, boolInt(signCount == 0)))
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if _, err := s.GetPasskey(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: passkey %s signature counter did not grow", storage.ErrAlreadyUsed, id)
}

// sessionCols are the columns scanSession reads.
const sessionCols = `id_hash, user_id, auth_time, created_at, expires_at, amr, upstream, upstream_subject, upstream_sid`

func scanSession(r scanner) (*storage.Session, error) {
	var se storage.Session
	var auth, created, expires int64
	var amr string
	if err := r.Scan(&se.IDHash, &se.UserID, &auth, &created, &expires, &amr, &se.Upstream.Upstream, &se.Upstream.Subject, &se.Upstream.SID); err != nil {
		return nil, notFound(err)
	}
	se.AuthTime, se.CreatedAt, se.ExpiresAt, se.AMR = fromUnix(auth), fromUnix(created), fromUnix(expires), splitList(amr)
	return &se, nil
}

// ListUserSessions returns the user's sessions, newest first.
func (s *Store) ListUserSessions(ctx context.Context, userID string) ([]storage.Session, error) {
	return list(ctx, s, scanSession, `SELECT `+sessionCols+` FROM sessions WHERE user_id = $1 ORDER BY created_at DESC, id_hash`, userID)
}
