package sqlstore

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// The token endpoint's hot paths ask the store as few times as they can:
// on PostgreSQL every statement is a round trip and every commit a flush
// of the write-ahead log. What belongs together is read by one joined
// SELECT and written by one transaction; where the dialect runs writes
// inside WITH (Dialect.WritableCTE), that transaction is one statement.

const grantCols = `id, client_id, user_id, scopes, auth_time, created_at, expires_at, revoked_at, claims, amr`

const auditCols = `id, at_ms, type, user_id, client_id, ip, detail, expires_at`

// params lists n numbered parameters from $from: "$3, $4, $5".
func params(n, from int) string {
	p := make([]string, n)
	for i := range p {
		p[i] = "$" + strconv.Itoa(from+i)
	}
	return strings.Join(p, ", ")
}

// columns is the number of columns in a column list.
func columns(cols string) int { return strings.Count(cols, ",") + 1 }

// prefixed qualifies each column of cols with a table alias.
func prefixed(alias, cols string) string {
	f := strings.Split(cols, ", ")
	for i := range f {
		f[i] = alias + "." + f[i]
	}
	return strings.Join(f, ", ")
}

func grantArgs(g storage.Grant) []any {
	return []any{g.ID, g.ClientID, g.UserID, joinList(g.Scopes), unix(g.AuthTime), unix(g.CreatedAt), unix(g.ExpiresAt), unix(g.RevokedAt),
		g.Claims, joinList(g.AMR)}
}

func auditArgs(e storage.AuditEvent) []any {
	return []any{e.ID, e.Time.UnixMilli(), e.Type, e.UserID, e.ClientID, e.IP, e.Detail, unix(e.ExpiresAt)}
}

func scanGrant(r scanner) (*storage.Grant, error) {
	var g storage.Grant
	var scopes, amr string
	var auth, created, expires, revoked int64
	if err := r.Scan(&g.ID, &g.ClientID, &g.UserID, &scopes, &auth, &created, &expires, &revoked, &g.Claims, &amr); err != nil {
		return nil, notFound(err)
	}
	g.Scopes, g.AMR = splitList(scopes), splitList(amr)
	g.AuthTime, g.CreatedAt, g.ExpiresAt, g.RevokedAt = fromUnix(auth), fromUnix(created), fromUnix(expires), fromUnix(revoked)
	return &g, nil
}

func scanRefresh(r scanner) (*storage.RefreshToken, error) {
	var t storage.RefreshToken
	var scopes string
	var auth, created, expires, used int64
	if err := r.Scan(&t.Hash, &t.GrantID, &t.ClientID, &t.UserID, &scopes, &auth, &created, &expires, &used, &t.JKT, &t.NextHash); err != nil {
		return nil, notFound(err)
	}
	t.Scopes = splitList(scopes)
	t.AuthTime, t.CreatedAt, t.ExpiresAt, t.UsedAt = fromUnix(auth), fromUnix(created), fromUnix(expires), fromUnix(used)
	return &t, nil
}

// values is one row of a join, scanned whole, that the scan functions of
// its tables then read in turn, each its own columns. A column of a row
// the outer join did not find (NULL) reads as the zero value.
type values []any

// Scan implements scanner: it hands the next len(dest) columns to dest.
func (v *values) Scan(dest ...any) error {
	if len(dest) > len(*v) {
		return fmt.Errorf("sqlstore: %d columns left, %d wanted", len(*v), len(dest))
	}
	for i, d := range dest {
		if err := assign(d, (*v)[i]); err != nil {
			return err
		}
	}
	*v = (*v)[len(dest):]
	return nil
}

// assign stores the driver value src in d, a *string, *int64 or *int.
func assign(d, src any) error {
	switch d := d.(type) {
	case *string:
		switch s := src.(type) {
		case string:
			*d = s
			return nil
		case []byte:
			*d = string(s)
			return nil
		case nil:
			*d = ""
			return nil
		}
	case *int64:
		switch s := src.(type) {
		case int64:
			*d = s
			return nil
		case nil:
			*d = 0
			return nil
		}
	case *int:
		var n int64
		err := assign(&n, src)
		*d = int(n)
		return err
	}
	return fmt.Errorf("sqlstore: cannot scan %T into %T", src, d)
}

// next reports whether the next column of v, the key of a joined table,
// was found: a NULL key means the outer join found no row.
func (v values) next() bool { return len(v) > 0 && v[0] != nil }

// consumeQuery consumes a code and reads its user, in one statement.
var consumeQuery = `WITH c AS (UPDATE auth_codes SET used_at = $1 WHERE hash = $2 AND used_at = 0 RETURNING ` + codeCols + `)
	SELECT ` + prefixed("c", codeCols) + `, ` + prefixed("u", userCols) + ` FROM c LEFT JOIN users u ON u.id = c.user_id`

// consumeWithUser is ConsumeAuthCode on a dialect with writable WITH:
// one round trip, observed as the UPDATE it is. A code that was used or
// is unknown is ErrNotFound.
func (s *Store) consumeWithUser(ctx context.Context, hash string, at time.Time) (*storage.AuthCode, *storage.User, error) {
	p, err := s.stmtAs(ctx, s.db, consumeQuery, "update auth_codes")
	if err != nil {
		return nil, nil, err
	}
	n := columns(codeCols) + columns(userCols)
	v, dest := make(values, n), make([]any, n)
	for i := range v {
		dest[i] = &v[i]
	}
	start := time.Now()
	err = row{p.st.QueryRowContext(ctx, unix(at), hash), s}.Scan(dest...)
	s.observe(p.op, start)
	if err != nil {
		return nil, nil, notFound(err)
	}
	c, err := scanCode(&v)
	if err != nil || !v.next() {
		return c, nil, err
	}
	u, err := scanUser(&v)
	return c, u, err
}

// chainQuery reads a refresh token, its grant and its user in one lookup.
var chainQuery = `SELECT ` + prefixed("rt", refreshCols) + `, ` + prefixed("g", grantCols) + `, ` + prefixed("u", userCols) + `
	FROM refresh_tokens rt LEFT JOIN grants g ON g.id = rt.grant_id LEFT JOIN users u ON u.id = rt.user_id WHERE rt.hash = $1`

// GetRefreshTokenChain reads the refresh token, its grant and its user
// with one joined SELECT.
func (s *Store) GetRefreshTokenChain(ctx context.Context, hash string) (*storage.RefreshTokenChain, error) {
	n := columns(refreshCols) + columns(grantCols) + columns(userCols)
	v := make(values, n)
	dest := make([]any, n)
	for i := range v {
		dest[i] = &v[i]
	}
	if err := s.readRow(ctx, chainQuery, hash).Scan(dest...); err != nil {
		return nil, notFound(err)
	}
	t, err := scanRefresh(&v)
	if err != nil {
		return nil, err
	}
	c := &storage.RefreshTokenChain{RefreshToken: *t}
	if v.next() {
		if c.Grant, err = scanGrant(&v); err != nil {
			return nil, err
		}
	} else {
		v = v[columns(grantCols):]
	}
	if v.next() {
		if c.User, err = scanUser(&v); err != nil {
			return nil, err
		}
	}
	return c, nil
}

// atomic runs the statements of one change that commits whole, observed
// as "tx " and name: on a dialect with writable WITH, as one statement
// (each but the last a WITH clause, so one round trip and one commit);
// elsewhere, in a transaction of prepared statements. Each statement's
// parameters are numbered from $1; the WITH form numbers them on across
// statements. Only the last statement's rows affected are reported. shape
// names the kind and number of the statements, whose SQL is built once.
func (s *Store) atomic(ctx context.Context, name, shape string, stmts ...statement) (int64, error) {
	texts := s.texts(shape, stmts)
	if len(texts) == 1 {
		p, err := s.stmtAs(ctx, s.db, texts[0], "tx "+name)
		if err != nil {
			return 0, err
		}
		var args []any
		for _, st := range stmts {
			args = append(args, st.args...)
		}
		defer s.observe(p.op, time.Now())
		res, err := p.st.ExecContext(ctx, args...)
		if err != nil {
			return 0, s.classify(err)
		}
		n, err := res.RowsAffected()
		return n, s.classify(err)
	}
	// Prepared before the transaction takes a connection: the writer
	// may have only the one (SQLite).
	prepared := make([]*prepared, len(texts))
	for i, q := range texts {
		p, err := s.stmt(ctx, s.db, q)
		if err != nil {
			return 0, err
		}
		prepared[i] = p
	}
	var n int64
	err := s.tx(ctx, name, func(tx *sql.Tx) error {
		for i, st := range stmts {
			res, err := tx.StmtContext(ctx, prepared[i].st).ExecContext(ctx, st.args...)
			if err != nil {
				return err
			}
			if n, err = res.RowsAffected(); err != nil {
				return err
			}
		}
		return nil
	})
	return n, err
}

// texts returns the SQL atomic runs for stmts: one statement with WITH
// where the dialect allows, else one text per statement. It is built
// once per shape.
func (s *Store) texts(shape string, stmts []statement) []string {
	if t, ok := s.shapes.Load(shape); ok {
		return t.([]string)
	}
	var texts []string
	if !s.d.WritableCTE || len(stmts) == 1 {
		for _, st := range stmts {
			texts = append(texts, st.sql(1))
		}
	} else {
		var q strings.Builder
		from := 1
		for i, st := range stmts {
			switch {
			case i == len(stmts)-1:
				q.WriteString(st.sql(from))
			case i == 0:
				fmt.Fprintf(&q, "WITH w%d AS (%s) ", i, st.sql(from))
			default:
				fmt.Fprintf(&q, ", w%d AS (%s) ", i, st.sql(from))
			}
			from += len(st.args)
		}
		texts = []string{q.String()}
	}
	s.shapes.Store(shape, texts)
	return texts
}

// statement is one statement of an atomic change: sql writes it with its
// parameters numbered from a given one.
type statement struct {
	sql  func(from int) string
	args []any
}

// insertOf inserts one row of cols into table.
func insertOf(table, cols string, args []any) statement {
	return statement{func(from int) string {
		return `INSERT INTO ` + table + ` (` + cols + `) VALUES (` + params(len(args), from) + `)`
	}, args}
}

// StartGrant stores a grant, its first refresh token and its audit events
// as one atomic change, while the grant's client exists: its row is held
// (Dialect.KeyShare) until the commit, so that a concurrent DeleteClient
// waits and then revokes the grant. On PostgreSQL it is one statement,
// each insert reading the client's row; elsewhere, a transaction (SQLite
// runs one writer at a time).
func (s *Store) StartGrant(ctx context.Context, g storage.Grant, first *storage.RefreshToken, events ...storage.AuditEvent) error {
	from := func(src string) func(table, cols string, args []any) statement {
		return func(table, cols string, args []any) statement {
			return statement{func(at int) string {
				return `INSERT INTO ` + table + ` (` + cols + `) SELECT ` + params(len(args), at) + src
			}, args}
		}
	}
	// The client as a source of one row, or none: in the WITH form the
	// clause that holds it, elsewhere checked first in the transaction.
	insert := from(` FROM client`)
	if !s.d.WritableCTE {
		insert = func(table, cols string, args []any) statement { return insertOf(table, cols, args) }
	}
	grant := insert("grants", grantCols, grantArgs(g))
	q := grant.sql
	grant.sql = func(at int) string { return q(at) + ` ON CONFLICT (id) DO NOTHING` }
	stmts := []statement{grant}
	if first != nil {
		stmts = append(stmts, insert("refresh_tokens", refreshCols, refreshArgs(*first)))
	}
	for _, e := range events {
		stmts = append(stmts, insert("audit_events", auditCols, auditArgs(e)))
	}
	var err error
	if s.d.WritableCTE {
		err = s.startGrantWith(ctx, g.ClientID, stmts, len(events))
	} else {
		err = s.tx(ctx, "start grant", func(tx *sql.Tx) error {
			var one int
			if err := tx.QueryRowContext(ctx, `SELECT 1 FROM clients WHERE id = $1`, g.ClientID).Scan(&one); err != nil {
				return notFound(err)
			}
			for _, st := range stmts {
				if _, err := tx.ExecContext(ctx, st.sql(1), st.args...); err != nil {
					return err
				}
			}
			return nil
		})
	}
	if err != nil && s.d.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
	}
	return err
}

// startGrantWith is StartGrant as one statement: the client's row, held,
// is the source every insert reads, so that nothing is written without
// it; the statement answers how many clients it found.
func (s *Store) startGrantWith(ctx context.Context, clientID string, stmts []statement, events int) error {
	shape := "start grant held " + strconv.Itoa(len(stmts)) + " " + strconv.Itoa(events)
	text, ok := s.shapes.Load(shape)
	if !ok {
		var q strings.Builder
		q.WriteString(`WITH client AS (SELECT 1 FROM clients WHERE id = $1` + s.d.KeyShare + `)`)
		at := 2
		for i, st := range stmts {
			fmt.Fprintf(&q, ", w%d AS (%s)", i, st.sql(at))
			at += len(st.args)
		}
		q.WriteString(` SELECT COUNT(*) FROM client`)
		text = q.String()
		s.shapes.Store(shape, text)
	}
	p, err := s.stmtAs(ctx, s.db, text.(string), "tx start grant")
	if err != nil {
		return err
	}
	args := []any{clientID}
	for _, st := range stmts {
		args = append(args, st.args...)
	}
	defer s.observe(p.op, time.Now())
	var n int
	if err := p.st.QueryRowContext(ctx, args...).Scan(&n); err != nil {
		return s.classify(err)
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// RotateRefreshToken consumes oldHash and stores next and events as one
// atomic change: the UPDATE is conditional on the token being unused, and
// what follows it is written only when it matched, so that of concurrent
// rotations one wins (PostgreSQL re-checks the condition on the row the
// winner locked; SQLite runs one writer at a time).
func (s *Store) RotateRefreshToken(ctx context.Context, oldHash string, next storage.RefreshToken, at time.Time, events ...storage.AuditEvent) error {
	if !s.d.WritableCTE {
		return s.rotateInTx(ctx, oldHash, next, at, events)
	}
	// One statement: each insert reads the row the one before returned,
	// so nothing is written unless the token was unused.
	old := statement{func(from int) string {
		return `UPDATE refresh_tokens SET used_at = ` + params(1, from) + `, next_hash = ` + params(1, from+1) +
			` WHERE hash = ` + params(1, from+2) + ` AND used_at = 0 RETURNING hash`
	}, []any{unix(at), next.Hash, oldHash}}
	after := func(table, cols string, args []any, prev int) statement {
		return statement{func(from int) string {
			return `INSERT INTO ` + table + ` (` + cols + `) SELECT ` + params(len(args), from) + ` FROM w` + strconv.Itoa(prev) + ` RETURNING 1`
		}, args}
	}
	stmts := []statement{old, after("refresh_tokens", refreshCols, refreshArgs(next), 0)}
	for _, e := range events {
		stmts = append(stmts, after("audit_events", auditCols, auditArgs(e), len(stmts)-1))
	}
	n, err := s.atomic(ctx, "rotate refresh token", "rotate refresh token "+strconv.Itoa(len(events)), stmts...)
	if err != nil || n == 1 {
		return err
	}
	// The token was used or is unknown; nothing was written.
	var one int
	if err := s.readRow(ctx, `SELECT 1 FROM refresh_tokens WHERE hash = $1`, oldHash).Scan(&one); err != nil {
		return notFound(err)
	}
	return storage.ErrAlreadyUsed
}

// rotateInTx is RotateRefreshToken as a transaction of statements.
func (s *Store) rotateInTx(ctx context.Context, oldHash string, next storage.RefreshToken, at time.Time, events []storage.AuditEvent) error {
	return s.tx(ctx, "rotate refresh token", func(tx *sql.Tx) error {
		err := mustAffect(tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1, next_hash = $2 WHERE hash = $3 AND used_at = 0`,
			unix(at), next.Hash, oldHash))
		if errors.Is(err, storage.ErrNotFound) {
			return usedOrMissing(ctx, tx, oldHash)
		}
		if err != nil {
			return err
		}
		if _, err = tx.ExecContext(ctx, insertRefresh, refreshArgs(next)...); err != nil {
			return err
		}
		for _, e := range events {
			st := insertOf("audit_events", auditCols, auditArgs(e))
			if _, err := tx.ExecContext(ctx, st.sql(1), st.args...); err != nil {
				return err
			}
		}
		return nil
	})
}
