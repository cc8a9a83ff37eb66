package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// pruning is one kind of ended row: the table, its key, and the condition
// (with one parameter, $1) that says the row has ended.
type pruning struct {
	table, key, cond string
	at               int64
}

// Prune deletes, table by table, the rows p says have ended, at most
// p.Batch rows per statement and p.MaxBatches statements per kind, so that
// each write is short and a backlog is worked off over several calls
// rather than in one long transaction. The conditions use indexed columns.
func (s *Store) Prune(ctx context.Context, p storage.Prune) (int64, error) {
	batch, batches := p.Batch, p.MaxBatches
	if batch <= 0 {
		batch = 500
	}
	if batches <= 0 {
		batches = 200
	}
	t, ms := unix(p.Now), p.Now.UnixMilli()
	work := []pruning{
		{"auth_codes", "hash", "expires_at < $1", t},
		{"device_codes", "hash", "expires_at < $1", t},
		{"used_once", "key", "expires_at < $1", t},
		{"auth_requests", "id", "expires_at < $1", t},
		{"refresh_tokens", "hash", "expires_at < $1", t},
		{"revoked_tokens", "jti", "expires_at < $1", t},
		{"sessions", "id_hash", "expires_at < $1", t},
		{"failures", "key", "expires_ms < $1", ms},
		{"audit_events", "id", "expires_at < $1", t},
		{"mail_outbox", "id", "expires_at < $1", t},
		{"account_tokens", "hash", "expires_at < $1", t},
		// A node that stopped probing a day ago has left.
		{"health_probe", "node", "at_ms < $1", p.Now.Add(-24 * time.Hour).UnixMilli()},
	}
	if p.ReuseHorizon > 0 {
		work = append(work, pruning{"refresh_tokens", "hash", "used_at <> 0 AND used_at < $1", unix(p.Now.Add(-p.ReuseHorizon))})
	}
	if p.AuditRetention > 0 {
		cut := p.Now.Add(-p.AuditRetention)
		work = append(work, pruning{"audit_events", "id", "at_ms < $1", cut.UnixMilli()},
			// An initial access token that can no longer register a client
			// goes once the audit events that name it have gone too (a
			// table of operator-issued tokens: small, and scanned).
			pruning{"initial_access_tokens", "id", "(revoked_at <> 0 AND revoked_at < $1) OR (expires_at <> 0 AND expires_at < $1)", unix(cut)})
	}
	if p.TokenLifetime > 0 {
		cut := unix(p.Now.Add(-p.TokenLifetime))
		work = append(work,
			// A revoked grant's refresh tokens can never be used again.
			pruning{"refresh_tokens", "hash", "grant_id IN (SELECT id FROM grants WHERE revoked_at <> 0 AND revoked_at < $1)", cut},
			pruning{"grants", "id", "revoked_at <> 0 AND revoked_at < $1", cut},
			// Nothing issued under it can still be valid: no refresh token
			// left, and its access tokens expired.
			pruning{"grants", "id", "revoked_at = 0 AND created_at < $1 AND NOT EXISTS (SELECT 1 FROM refresh_tokens r WHERE r.grant_id = grants.id)", cut},
		)
	}
	// Expired grants last: their refresh tokens expired before them.
	work = append(work, pruning{"grants", "id", "expires_at < $1", t})
	var total int64
	for _, w := range work {
		q := `DELETE FROM ` + w.table + ` WHERE ` + w.key + ` IN (SELECT ` + w.key + ` FROM ` + w.table + ` WHERE ` + w.cond + ` LIMIT $2)`
		for range batches {
			res, err := s.exec(ctx, q, w.at, batch)
			if err != nil {
				return total, err
			}
			n, err := res.RowsAffected()
			if err != nil {
				return total, err
			}
			total += n
			if n < int64(batch) {
				break
			}
		}
	}
	if total > 0 && s.d.Vacuum != "" {
		if _, err := s.db.ExecContext(ctx, s.d.Vacuum); err != nil {
			return total, s.classify(err)
		}
	}
	return total, nil
}

// Ping upserts this node's row of the probe table: a commit, as small as
// one can be.
func (s *Store) Ping(ctx context.Context, node string, at time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO health_probe (node, at_ms) VALUES ($1, $2)
		ON CONFLICT (node) DO UPDATE SET at_ms = excluded.at_ms`, node, at.UnixMilli())
	return err
}

// LastPing reads this node's row of the probe table.
func (s *Store) LastPing(ctx context.Context, node string) (time.Time, error) {
	var ms int64
	err := s.readRow(ctx, `SELECT at_ms FROM health_probe WHERE node = $1`, node).Scan(&ms)
	if errors.Is(err, sql.ErrNoRows) {
		return time.Time{}, nil
	}
	if err != nil {
		return time.Time{}, err
	}
	return time.UnixMilli(ms).UTC(), nil
}
