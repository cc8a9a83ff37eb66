// Package sqlstore implements storage.Storage on database/sql. The SQLite and
// PostgreSQL backends open their own connections, pick a Dialect and share
// this code: every query is plain SQL that both databases run unchanged
// ($1-style parameters, ON CONFLICT, RETURNING), so nothing is rewritten.
//
// Single-use rules are enforced by the database: a code or refresh token is
// consumed by one conditional UPDATE, which at most one caller can win.
package sqlstore

import (
	"cmp"
	"context"
	"database/sql"
	"database/sql/driver"
	"encoding/hex"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"math"
	"net"
	"strings"
	"sync"
	"syscall"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Dialect holds what differs between databases.
type Dialect struct {
	// Name names the backend in errors.
	Name string
	// LockMigrations, when not empty, runs first inside the migration
	// transaction and must hold a lock until commit, so that nodes starting
	// together apply each migration once.
	LockMigrations string
	// LockAdmins, when not empty, runs first in a KeepingAdmin transaction
	// and holds a lock until commit, so that two of them never both count
	// the same admins (PostgreSQL's READ COMMITTED would let each count
	// before the other's change commits). Empty where write transactions
	// are serialized anyway (SQLite's immediate transactions).
	LockAdmins string
	// IsUniqueViolation reports whether err is a unique-key violation.
	IsUniqueViolation func(error) bool
	// Vacuum, when not empty, runs after Prune deleted rows, to hand the
	// freed pages back to the file system (SQLite's incremental_vacuum).
	Vacuum string
	// IsUnavailable reports whether a driver error means the database is
	// out of reach or cannot write for now (see storage.ErrUnavailable),
	// beyond the network and deadline errors every backend shares.
	IsUnavailable func(error) bool
	// KeyShare, appended to a SELECT of one row in a transaction, holds
	// that row until commit against a concurrent DELETE of it (PostgreSQL's
	// FOR KEY SHARE); empty where write transactions are serialized anyway
	// (SQLite's immediate transactions).
	KeyShare string
	// WritableCTE says that INSERT and UPDATE may run inside WITH, as
	// PostgreSQL allows: rows that commit together (a grant and its first
	// refresh token, a rotation and its audit event) are then written by
	// one statement, one round trip and one commit, instead of by a
	// transaction of several. SQLite, in process, runs a transaction.
	WritableCTE bool
}

// Unavailable reports whether err means the database is out of reach for
// now rather than that the request or the code is wrong: a deadline passed
// while waiting for it, a connection the pool found dead, a network error
// (refused, reset, broken pipe, closed mid-answer), or whatever d's
// IsUnavailable recognises. This is the one classification of storage
// errors; handlers test the result with errors.Is(err, storage.ErrUnavailable).
func (d Dialect) Unavailable(err error) bool {
	var netErr net.Error
	switch {
	case err == nil:
		return false
	case errors.Is(err, storage.ErrUnavailable),
		errors.Is(err, context.DeadlineExceeded),
		errors.Is(err, driver.ErrBadConn),
		errors.Is(err, sql.ErrConnDone),
		errors.Is(err, io.EOF),
		errors.Is(err, io.ErrUnexpectedEOF),
		errors.Is(err, syscall.ECONNREFUSED),
		errors.Is(err, syscall.ECONNRESET),
		errors.Is(err, syscall.EPIPE),
		errors.As(err, &netErr):
		return true
	}
	return d.IsUnavailable != nil && d.IsUnavailable(err)
}

// classify wraps err with storage.ErrUnavailable when the database is out
// of reach, keeping the driver error in the chain for logs and errors.Is.
func (s *Store) classify(err error) error {
	if err == nil || errors.Is(err, storage.ErrUnavailable) || !s.d.Unavailable(err) {
		return err
	}
	return fmt.Errorf("%s: %w: %w", s.d.Name, storage.ErrUnavailable, err)
}

// Store is a storage.Storage on a *sql.DB.
type Store struct {
	db      *sql.DB // writes, transactions, and reads unless reader is set
	reader  *sql.DB // lookups (read, readRow), when the backend splits reads from writes
	d       Dialect
	onClose []func()
	stmts   sync.Map // stmtKey → *prepared
	shapes  sync.Map // shape → []string (atomic's SQL)

	observer func(op string, d time.Duration)
}

var _ storage.Storage = (*Store)(nil)

// New migrates db to the newest schema and returns a Store on it. The Store
// owns db and closes it on Close, then calls each onClose.
func New(ctx context.Context, db *sql.DB, d Dialect, onClose ...func()) (*Store, error) {
	s := &Store{db: db, d: d, onClose: onClose}
	if err := s.migrate(ctx); err != nil {
		return nil, fmt.Errorf("%s: migrate: %w", d.Name, err)
	}
	if err := s.fillUsernameKeys(ctx); err != nil {
		return nil, fmt.Errorf("%s: username keys: %w", d.Name, err)
	}
	return s, nil
}

// SetReader sends every lookup (read, readRow) to reader from now on;
// writes keep the handle given to New. SQLite uses it to give writes one
// connection, so that writers queue in the pool instead of sleeping on
// SQLite's busy lock, while reads run in parallel. The Store closes
// reader on Close.
func (s *Store) SetReader(reader *sql.DB) { s.reader = reader }

// readHandle is the handle lookups run on.
func (s *Store) readHandle() *sql.DB {
	if s.reader != nil {
		return s.reader
	}
	return s.db
}

// DB returns the underlying handle, for backend-specific tests.
func (s *Store) DB() *sql.DB { return s.db }

// SchemaVersion returns the newest migration this code knows.
func SchemaVersion() int { return len(migrations) }

func (s *Store) migrate(ctx context.Context) error {
	return s.tx(ctx, "migrate", func(tx *sql.Tx) error {
		if s.d.LockMigrations != "" {
			if _, err := tx.ExecContext(ctx, s.d.LockMigrations); err != nil {
				return err
			}
		}
		if _, err := tx.ExecContext(ctx, `CREATE TABLE IF NOT EXISTS schema_migrations (version BIGINT PRIMARY KEY, applied_at BIGINT NOT NULL)`); err != nil {
			return err
		}
		var current int
		if err := tx.QueryRowContext(ctx, `SELECT COALESCE(MAX(version), 0) FROM schema_migrations`).Scan(&current); err != nil {
			return err
		}
		if current > len(migrations) {
			return fmt.Errorf("database schema version %d is newer than this binary knows (%d)", current, len(migrations))
		}
		for v := current + 1; v <= len(migrations); v++ {
			if _, err := tx.ExecContext(ctx, migrations[v-1]); err != nil {
				return fmt.Errorf("version %d: %w", v, err)
			}
			if _, err := tx.ExecContext(ctx, `INSERT INTO schema_migrations (version, applied_at) VALUES ($1, $2)`, v, time.Now().Unix()); err != nil {
				return err
			}
		}
		return nil
	})
}

// Close closes the database.
func (s *Store) Close() error {
	s.stmts.Range(func(_, p any) bool { p.(*prepared).st.Close(); return true })
	err := s.db.Close()
	if s.reader != nil {
		err = errors.Join(err, s.reader.Close())
	}
	for _, fn := range s.onClose {
		fn()
	}
	return err
}

// prepared is a statement and the operation it is observed as.
type prepared struct {
	st *sql.Stmt
	op string
}

// SetObserver makes the store report how long each statement (named like
// "select clients") and each transaction (named like "tx rotate refresh
// token") took. Set it before use.
func (s *Store) SetObserver(fn func(op string, d time.Duration)) { s.observer = fn }

func (s *Store) observe(op string, start time.Time) {
	if s.observer != nil {
		s.observer(op, time.Since(start))
	}
}

// stmtKey names a prepared statement: its text, on the handle that runs it.
type stmtKey struct {
	db *sql.DB
	q  string
}

// stmt returns q prepared on db, preparing it on first use: the database
// parses and plans each query once instead of on every call.
func (s *Store) stmt(ctx context.Context, db *sql.DB, q string) (*prepared, error) {
	return s.stmtAs(ctx, db, q, "")
}

// stmtAs is stmt for a statement observed as op rather than under the
// name opName gives it (a statement that starts with WITH).
func (s *Store) stmtAs(ctx context.Context, db *sql.DB, q, op string) (*prepared, error) {
	k := stmtKey{db, q}
	if p, ok := s.stmts.Load(k); ok {
		return p.(*prepared), nil
	}
	st, err := db.PrepareContext(ctx, q)
	if err != nil {
		return nil, s.classify(err)
	}
	p := &prepared{st: st, op: cmp.Or(op, opName(q))}
	if prev, loaded := s.stmts.LoadOrStore(k, p); loaded {
		st.Close()
		return prev.(*prepared), nil
	}
	return p, nil
}

// opName names a statement by its verb and table: "select clients".
func opName(q string) string {
	f := strings.Fields(strings.ToLower(q))
	if len(f) == 0 {
		return "unknown"
	}
	for i, w := range f[:len(f)-1] {
		if w == "from" || w == "into" || (w == "update" && i == 0) {
			return f[0] + " " + strings.Trim(f[i+1], "(")
		}
	}
	return f[0]
}

// row is a *sql.Row whose Scan classifies errors.
type row struct {
	*sql.Row
	s *Store
}

// Scan is sql.Row.Scan with unavailability wrapped (see classify).
func (r row) Scan(dest ...any) error { return r.s.classify(r.Row.Scan(dest...)) }

// Each statement runs on the handle its call names: read and readRow run
// lookups, on the reader when there is one; exec and writeRow run
// statements that change rows (writeRow for those that return one, such as
// UPDATE … RETURNING), always on the writer. The SQL text is never
// inspected to choose.

// readRow runs a lookup that returns at most one row.
func (s *Store) readRow(ctx context.Context, q string, args ...any) row {
	return s.rowOn(ctx, s.readHandle(), q, args...)
}

// writeRow runs a statement that changes rows and returns one (RETURNING).
func (s *Store) writeRow(ctx context.Context, q string, args ...any) row {
	return s.rowOn(ctx, s.db, q, args...)
}

func (s *Store) rowOn(ctx context.Context, db *sql.DB, q string, args ...any) row {
	p, err := s.stmt(ctx, db, q)
	if err != nil {
		return row{db.QueryRowContext(ctx, q, args...), s} // reports the same error
	}
	defer s.observe(p.op, time.Now())
	return row{p.st.QueryRowContext(ctx, args...), s}
}

// read runs a lookup that returns rows.
func (s *Store) read(ctx context.Context, q string, args ...any) (*sql.Rows, error) {
	p, err := s.stmt(ctx, s.readHandle(), q)
	if err != nil {
		return nil, err
	}
	defer s.observe(p.op, time.Now())
	rows, err := p.st.QueryContext(ctx, args...)
	return rows, s.classify(err)
}

// exec runs a statement that changes rows.
func (s *Store) exec(ctx context.Context, q string, args ...any) (sql.Result, error) {
	p, err := s.stmt(ctx, s.db, q)
	if err != nil {
		return nil, err
	}
	defer s.observe(p.op, time.Now())
	res, err := p.st.ExecContext(ctx, args...)
	return res, s.classify(err)
}

// tx runs fn in a transaction and commits it. Errors, fn's included, are
// classified, so that a transaction cut off by an outage reports
// storage.ErrUnavailable.
func (s *Store) tx(ctx context.Context, name string, fn func(*sql.Tx) error) error {
	defer s.observe("tx "+name, time.Now())
	tx, err := s.db.BeginTx(ctx, nil)
	if err != nil {
		return s.classify(err)
	}
	if err := fn(tx); err != nil {
		_ = tx.Rollback()
		return s.classify(err)
	}
	return s.classify(tx.Commit())
}

// lockUser locks the user's row until tx ends, with a write that changes
// nothing; a user that does not exist is ErrNotFound. A transaction that
// checks the user's other rows and then writes (the last way in kept, the
// one live link of a kind) takes it first: SQLite's immediate
// transactions are serialized anyway, but PostgreSQL's READ COMMITTED
// ones would each check before the other's write commits. DeleteUser
// takes the same row first, so the order of locks is one.
func lockUser(ctx context.Context, tx *sql.Tx, userID string) error {
	return mustAffect(tx.ExecContext(ctx, `UPDATE users SET password_hash = password_hash WHERE id = $1`, userID))
}

// insert runs an INSERT and maps a unique violation to ErrAlreadyExists.
func (s *Store) insert(ctx context.Context, q string, args ...any) error {
	_, err := s.exec(ctx, q, args...)
	if err != nil && s.d.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
	}
	return err
}

// mustAffect turns "no row changed" into ErrNotFound.
func mustAffect(res sql.Result, err error) error {
	if err != nil {
		return err
	}
	n, err := res.RowsAffected()
	if err != nil {
		return err
	}
	if n == 0 {
		return storage.ErrNotFound
	}
	return nil
}

// notFound maps sql.ErrNoRows to storage.ErrNotFound.
func notFound(err error) error {
	if errors.Is(err, sql.ErrNoRows) {
		return storage.ErrNotFound
	}
	return err
}

type scanner interface{ Scan(...any) error }

func unix(t time.Time) int64 {
	if t.IsZero() {
		return 0
	}
	return t.Unix()
}

func fromUnix(n int64) time.Time {
	if n == 0 {
		return time.Time{}
	}
	return time.Unix(n, 0).UTC()
}

func joinList(l []string) string { return strings.Join(l, " ") }

func splitList(s string) []string { return strings.Fields(s) }

func boolInt(b bool) int {
	if b {
		return 1
	}
	return 0
}

// ---- users

const userCols = `id, username, password_hash, name, email, email_verified, picture, created_at, profile, updated_at, disabled, admin`

// emptyProfile is the stored form of a profile with no claim set (the
// column's default too).
const emptyProfile = "{}"

func encodeProfile(p storage.Profile) (string, error) {
	raw, err := json.Marshal(p.Claims())
	return string(raw), err
}

func scanUser(r scanner) (*storage.User, error) {
	var u storage.User
	var verified, disabled, adm int
	var created, updated int64
	var profile string
	if err := r.Scan(&u.ID, &u.Username, &u.PasswordHash, &u.Name, &u.Email, &verified, &u.Picture, &created, &profile, &updated, &disabled, &adm); err != nil {
		return nil, notFound(err)
	}
	var p storage.ProfileClaims
	// Most people never fill in a profile: "{}" needs no decoding, and
	// a user is read on every token request.
	if profile != emptyProfile {
		if err := json.Unmarshal([]byte(profile), &p); err != nil {
			return nil, fmt.Errorf("user %s: profile: %w", u.ID, err)
		}
	}
	u.Profile = p.Profile(fromUnix(updated))
	u.EmailVerified, u.Disabled, u.Admin = verified != 0, disabled != 0, adm != 0
	u.CreatedAt = fromUnix(created)
	return &u, nil
}

// insertUser stores a user with its keys: the unique email key of a
// confirmed address and the unique username key.
const insertUser = `INSERT INTO users (` + userCols + `, email_key, username_key) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14)`

// CreateUser stores a new user; ID and Username (in UsernameKey form)
// must be unique.
func (s *Store) CreateUser(ctx context.Context, u storage.User) error {
	profile, err := encodeProfile(u.Profile)
	if err != nil {
		return err
	}
	return s.insert(ctx, insertUser, u.ID, u.Username, u.PasswordHash, u.Name, u.Email, boolInt(u.EmailVerified), u.Picture, unix(u.CreatedAt),
		profile, unix(u.Profile.UpdatedAt), boolInt(u.Disabled), boolInt(u.Admin), emailKey(u), storage.UsernameKey(u.Username))
}

// UpdateUser replaces a user's name, email, picture and profile.
func (s *Store) UpdateUser(ctx context.Context, u storage.User) error {
	profile, err := encodeProfile(u.Profile)
	if err != nil {
		return err
	}
	res, err := s.exec(ctx, `UPDATE users SET name = $1, email = $2, email_verified = $3, picture = $4, profile = $5, updated_at = $6, email_key = $8 WHERE id = $7`,
		u.Name, u.Email, boolInt(u.EmailVerified), u.Picture, profile, unix(u.Profile.UpdatedAt), u.ID, emailKey(u))
	if err != nil && s.d.IsUniqueViolation(err) {
		return fmt.Errorf("%w: %v", storage.ErrAlreadyExists, err)
	}
	return mustAffect(res, err)
}

// GetUser returns the user with this id.
func (s *Store) GetUser(ctx context.Context, id string) (*storage.User, error) {
	return scanUser(s.readRow(ctx, `SELECT `+userCols+` FROM users WHERE id = $1`, id))
}

// GetUserByUsername returns the user with this username.
func (s *Store) GetUserByUsername(ctx context.Context, username string) (*storage.User, error) {
	return scanUser(s.readRow(ctx, `SELECT `+userCols+` FROM users WHERE username = $1`, username))
}

// UsernameTaken reports whether a user has this username or its key.
func (s *Store) UsernameTaken(ctx context.Context, username string) (bool, error) {
	var n int
	err := s.readRow(ctx, `SELECT COUNT(*) FROM users WHERE username = $1 OR username_key = $2`, username, storage.UsernameKey(username)).Scan(&n)
	return n > 0, err
}

// fillUsernameKeys gives the users made before usernames had a key theirs
// (storage.UsernameKey), which SQL cannot compute, a batch of rows at a
// time. A user whose key another user holds already (two names that
// differ only in case, made before the key existed) keeps none: both
// accounts stay as they are, and no new name of that key can be made,
// since the other holds it; it gets its key at a later start once the
// other is gone. It runs at every start, on the rows still without a key
// (found through the key's index), and is safe on several nodes at once.
func (s *Store) fillUsernameKeys(ctx context.Context) error {
	after := ""
	for {
		ids, names, err := s.keyless(ctx, after)
		if err != nil {
			return err
		}
		for i, id := range ids {
			_, err := s.exec(ctx, `UPDATE users SET username_key = $1 WHERE id = $2 AND username_key IS NULL`, storage.UsernameKey(names[i]), id)
			if err != nil && !s.d.IsUniqueViolation(err) {
				return err
			}
		}
		if len(ids) < 500 {
			return nil
		}
		after = ids[len(ids)-1]
	}
}

// keyless reads, from the primary (a replica may lag), up to 500 users
// without a username key whose id sorts after after.
func (s *Store) keyless(ctx context.Context, after string) (ids, names []string, err error) {
	rows, err := s.db.QueryContext(ctx, `SELECT id, username FROM users WHERE username_key IS NULL AND id > $1 ORDER BY id LIMIT 500`, after)
	if err != nil {
		return nil, nil, s.classify(err)
	}
	defer rows.Close()
	for rows.Next() {
		var id, name string
		if err := rows.Scan(&id, &name); err != nil {
			return nil, nil, err
		}
		ids, names = append(ids, id), append(names, name)
	}
	return ids, names, s.classify(rows.Err())
}

// ListUsers returns every user ordered by username.
func (s *Store) ListUsers(ctx context.Context) ([]storage.User, error) {
	return list(ctx, s, scanUser, `SELECT `+userCols+` FROM users ORDER BY username`)
}

// UpdateUserPassword replaces the password hash of a user.
func (s *Store) UpdateUserPassword(ctx context.Context, id, hash string) error {
	return mustAffect(s.exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2`, hash, id))
}

// SetFirstPassword sets the password of a user who has none.
func (s *Store) SetFirstPassword(ctx context.Context, id, hash string) error {
	err := mustAffect(s.exec(ctx, `UPDATE users SET password_hash = $1 WHERE id = $2 AND password_hash = ''`, hash, id))
	if !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if _, err := s.GetUser(ctx, id); err != nil {
		return err
	}
	return fmt.Errorf("%w: user %s has a password", storage.ErrAlreadyExists, id)
}

// SetUserDisabled disables or enables a user.
func (s *Store) SetUserDisabled(ctx context.Context, id string, disabled bool) error {
	return mustAffect(s.exec(ctx, `UPDATE users SET disabled = $1 WHERE id = $2`, boolInt(disabled), id))
}

// SetUserAdmin gives or takes a user's admin role.
func (s *Store) SetUserAdmin(ctx context.Context, id string, admin bool) error {
	return mustAffect(s.exec(ctx, `UPDATE users SET admin = $1 WHERE id = $2`, boolInt(admin), id))
}

// KeepingAdmin makes change to user id unless it would leave no enabled
// admin. Under the dialect's LockAdmins, it reads the enabled admins; a
// user who is none of them changes no count and is changed, the only one
// is ErrLastAdmin. A promotion racing it only adds an admin, so it needs
// no lock.
func (s *Store) KeepingAdmin(ctx context.Context, id string, change storage.AdminLoss, at time.Time) error {
	if change == storage.Delete {
		return s.deleteUser(ctx, id, at, func(tx *sql.Tx) error { return s.keepAdmin(ctx, tx, id) })
	}
	q := `UPDATE users SET admin = 0 WHERE id = $1`
	switch change {
	case storage.Demote:
	case storage.Disable:
		q = `UPDATE users SET disabled = 1 WHERE id = $1`
	default:
		return fmt.Errorf("sqlstore: unknown admin loss %d", change)
	}
	return s.tx(ctx, "keep admin", func(tx *sql.Tx) error {
		if err := s.keepAdmin(ctx, tx, id); err != nil {
			return err
		}
		return mustAffect(tx.ExecContext(ctx, q, id))
	})
}

// keepAdmin is ErrLastAdmin if id is the one enabled admin.
func (s *Store) keepAdmin(ctx context.Context, tx *sql.Tx, id string) error {
	if s.d.LockAdmins != "" {
		if _, err := tx.ExecContext(ctx, s.d.LockAdmins); err != nil {
			return err
		}
	}
	var admins, self int
	err := tx.QueryRowContext(ctx, `SELECT COUNT(*), COALESCE(SUM(CASE WHEN id = $1 THEN 1 ELSE 0 END), 0)
		FROM users WHERE admin = 1 AND disabled = 0`, id).Scan(&admins, &self)
	if err != nil {
		return err
	}
	if self == 1 && admins == 1 {
		return fmt.Errorf("%w: user %s", storage.ErrLastAdmin, id)
	}
	return nil
}

func list[T any](ctx context.Context, s *Store, scan func(scanner) (*T, error), q string, args ...any) ([]T, error) {
	rows, err := s.read(ctx, q, args...)
	if err != nil {
		return nil, err
	}
	defer rows.Close()
	var out []T
	for rows.Next() {
		v, err := scan(rows)
		if err != nil {
			return nil, s.classify(err)
		}
		out = append(out, *v)
	}
	return out, s.classify(rows.Err())
}

// DeleteUser removes a user and everything that lets anyone act as it.
func (s *Store) DeleteUser(ctx context.Context, id string, at time.Time) error {
	return s.deleteUser(ctx, id, at, func(*sql.Tx) error { return nil })
}

// deleteUser is DeleteUser after check, in the same transaction.
func (s *Store) deleteUser(ctx context.Context, id string, at time.Time, check func(*sql.Tx) error) error {
	return s.tx(ctx, "delete user", func(tx *sql.Tx) error {
		if err := check(tx); err != nil {
			return err
		}
		// Unsent mail goes first, while the user's address is known.
		if _, err := tx.ExecContext(ctx, `DELETE FROM mail_outbox WHERE sent_at = 0
			AND lower(recipient) = (SELECT lower(email) FROM users WHERE id = $1)`, id); err != nil {
			return err
		}
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM users WHERE id = $1`, id)); err != nil {
			return err
		}
		for _, q := range []string{`DELETE FROM sessions WHERE user_id = $1`, `DELETE FROM consents WHERE user_id = $1`,
			`DELETE FROM totp_secrets WHERE user_id = $1`, `DELETE FROM recovery_codes WHERE user_id = $1`, `DELETE FROM passkeys WHERE user_id = $1`,
			`DELETE FROM account_tokens WHERE user_id = $1`, `DELETE FROM upstream_links WHERE user_id = $1`} {
			if _, err := tx.ExecContext(ctx, q, id); err != nil {
				return err
			}
		}
		// A code redeemed while the user is deleted finds its grant revoked
		// and issues dead tokens (package token, AuthorizationCode.tokens).
		// This comes before the UPDATE: a grant a redemption committed
		// meanwhile is then revoked by it.
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (id, client_id, user_id, scopes, auth_time, created_at, expires_at, revoked_at, claims, amr)
			SELECT grant_id, client_id, user_id, scopes, auth_time, $2, expires_at, $2, '', '' FROM auth_codes WHERE user_id = $1
			ON CONFLICT (id) DO NOTHING`, id, unix(at)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `INSERT INTO grants (id, client_id, user_id, scopes, auth_time, created_at, expires_at, revoked_at, claims, amr)
			SELECT 'device:' || hash, client_id, user_id, granted_scopes, auth_time, $2, expires_at, $2, '', '' FROM device_codes
			WHERE user_id = $1 ON CONFLICT (id) DO NOTHING`, id, unix(at)); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND revoked_at = 0`, unix(at), id)
		return err
	})
}

// ---- clients

const clientCols = `id, name, secret_hash, is_public, redirect_uris, grant_types, scopes, created_at, require_par, registration_token_hash, auth_method, jwks, jwks_uri, backchannel_logout_uri, pairwise, secret_sealed, sector_identifier_uri, id_token_alg, pkce_policy,
	client_uri, logo_uri, policy_uri, tos_uri, verified, second_factor, dpop_bound`

func scanClient(r scanner) (*storage.Client, error) {
	var c storage.Client
	var public, requirePAR, pairwise, verified, secondFactor, dpopBound int
	var uris, grants, scopes string
	var created int64
	if err := r.Scan(&c.ID, &c.Name, &c.SecretHash, &public, &uris, &grants, &scopes, &created, &requirePAR, &c.RegistrationTokenHash,
		&c.AuthMethod, &c.JWKS, &c.JWKSURI, &c.BackchannelLogoutURI, &pairwise, &c.SecretSealed, &c.SectorIdentifierURI, &c.IDTokenAlg, &c.PKCEPolicy,
		&c.ClientURI, &c.LogoURI, &c.PolicyURI, &c.TOSURI, &verified, &secondFactor, &dpopBound); err != nil {
		return nil, notFound(err)
	}
	c.Verified, c.SecondFactor, c.DPoPBound = verified != 0, secondFactor != 0, dpopBound != 0
	if err := json.Unmarshal([]byte(uris), &c.RedirectURIs); err != nil {
		return nil, fmt.Errorf("client %s: redirect_uris: %w", c.ID, err)
	}
	c.Public, c.RequirePAR, c.Pairwise = public != 0, requirePAR != 0, pairwise != 0
	c.GrantTypes = splitList(grants)
	c.Scopes = splitList(scopes)
	c.CreatedAt = fromUnix(created)
	return &c, nil
}

// CreateClient stores a new client.
func (s *Store) CreateClient(ctx context.Context, c storage.Client) error {
	uris, err := json.Marshal(append([]string{}, c.RedirectURIs...))
	if err != nil {
		return err
	}
	return s.insert(ctx, `INSERT INTO clients (`+clientCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17, $18, $19,
		$20, $21, $22, $23, $24, $25, $26)`,
		c.ID, c.Name, c.SecretHash, boolInt(c.Public), string(uris), joinList(c.GrantTypes), joinList(c.Scopes), unix(c.CreatedAt), boolInt(c.RequirePAR),
		c.RegistrationTokenHash, c.AuthMethod, c.JWKS, c.JWKSURI, c.BackchannelLogoutURI, boolInt(c.Pairwise), c.SecretSealed, c.SectorIdentifierURI, c.IDTokenAlg, c.PKCEPolicy,
		c.ClientURI, c.LogoURI, c.PolicyURI, c.TOSURI, boolInt(c.Verified), boolInt(c.SecondFactor), boolInt(c.DPoPBound))
}

// UpdateClient replaces a client's fields.
func (s *Store) UpdateClient(ctx context.Context, c storage.Client) error {
	uris, err := json.Marshal(append([]string{}, c.RedirectURIs...))
	if err != nil {
		return err
	}
	return mustAffect(s.exec(ctx, `UPDATE clients SET name = $1, secret_hash = $2, is_public = $3, redirect_uris = $4, grant_types = $5,
		scopes = $6, require_par = $7, registration_token_hash = $8, auth_method = $9, jwks = $10, jwks_uri = $11,
		backchannel_logout_uri = $12, pairwise = $13, secret_sealed = $14, sector_identifier_uri = $15, id_token_alg = $16, pkce_policy = $17,
		client_uri = $19, logo_uri = $20, policy_uri = $21, tos_uri = $22, verified = $23, second_factor = $24, dpop_bound = $25 WHERE id = $18`,
		c.Name, c.SecretHash, boolInt(c.Public), string(uris), joinList(c.GrantTypes), joinList(c.Scopes), boolInt(c.RequirePAR),
		c.RegistrationTokenHash, c.AuthMethod, c.JWKS, c.JWKSURI, c.BackchannelLogoutURI, boolInt(c.Pairwise), c.SecretSealed, c.SectorIdentifierURI, c.IDTokenAlg, c.PKCEPolicy, c.ID,
		c.ClientURI, c.LogoURI, c.PolicyURI, c.TOSURI, boolInt(c.Verified), boolInt(c.SecondFactor), boolInt(c.DPoPBound)))
}

// GetClient returns the client with this id.
func (s *Store) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	return scanClient(s.readRow(ctx, `SELECT `+clientCols+` FROM clients WHERE id = $1`, id))
}

// ListClients returns every client ordered by id.
func (s *Store) ListClients(ctx context.Context) ([]storage.Client, error) {
	return list(ctx, s, scanClient, `SELECT `+clientCols+` FROM clients ORDER BY id`)
}

// DeleteClient removes the client and its consents and revokes its grants
// as of at.
func (s *Store) DeleteClient(ctx context.Context, id string, at time.Time) error {
	return s.tx(ctx, "delete client", func(tx *sql.Tx) error {
		if err := mustAffect(tx.ExecContext(ctx, `DELETE FROM clients WHERE id = $1`, id)); err != nil {
			return err
		}
		if _, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE client_id = $1`, id); err != nil {
			return err
		}
		_, err := tx.ExecContext(ctx, `UPDATE grants SET revoked_at = $1 WHERE client_id = $2 AND revoked_at = 0`, unix(at), id)
		return err
	})
}

// ---- consents

func scanConsent(r scanner, extra ...any) (*storage.Consent, error) {
	var c storage.Consent
	var scopes string
	var granted, updated, used int64
	if err := r.Scan(append([]any{&c.UserID, &c.ClientID, &scopes, &granted, &updated, &used}, extra...)...); err != nil {
		return nil, notFound(err)
	}
	c.Scopes = splitList(scopes)
	c.GrantedAt = fromUnix(granted)
	c.UpdatedAt = fromUnix(updated)
	c.LastUsedAt = fromUnix(used)
	return &c, nil
}

// GetConsent returns what userID granted clientID.
func (s *Store) GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error) {
	return scanConsent(s.readRow(ctx,
		`SELECT user_id, client_id, scopes, granted_at, updated_at, last_used_at FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID))
}

// SaveConsent creates or replaces a consent; GrantedAt of an existing one is kept.
func (s *Store) SaveConsent(ctx context.Context, c storage.Consent) error {
	_, err := s.exec(ctx, `INSERT INTO consents (user_id, client_id, scopes, granted_at, updated_at, last_used_at) VALUES ($1, $2, $3, $4, $5, $6)
		ON CONFLICT (user_id, client_id) DO UPDATE SET scopes = excluded.scopes, updated_at = excluded.updated_at`,
		c.UserID, c.ClientID, joinList(c.Scopes), unix(c.GrantedAt), unix(c.UpdatedAt), unix(c.LastUsedAt))
	return err
}

// TouchConsent records a use of the consent, at most once per every: the
// condition is in the UPDATE, so that no read races it.
func (s *Store) TouchConsent(ctx context.Context, userID, clientID string, at time.Time, every time.Duration) (bool, error) {
	res, err := s.exec(ctx, `UPDATE consents SET last_used_at = $1 WHERE user_id = $2 AND client_id = $3 AND last_used_at < $4`,
		unix(at), userID, clientID, unix(at.Add(-every))+1)
	if err != nil {
		return false, err
	}
	n, err := res.RowsAffected()
	return n > 0, err
}

// ListConsents returns the consents of a user with client names, newest first.
func (s *Store) ListConsents(ctx context.Context, userID string) ([]storage.ConsentView, error) {
	scan := func(r scanner) (*storage.ConsentView, error) {
		var v storage.ConsentView
		c, err := scanConsent(r, &v.ClientName)
		if err != nil {
			return nil, err
		}
		v.Consent = *c
		return &v, nil
	}
	return list(ctx, s, scan, `SELECT c.user_id, c.client_id, c.scopes, c.granted_at, c.updated_at, c.last_used_at, COALESCE(cl.name, c.client_id)
		FROM consents c LEFT JOIN clients cl ON cl.id = c.client_id WHERE c.user_id = $1 ORDER BY c.updated_at DESC, c.client_id`, userID)
}

// RevokeConsent deletes a consent and revokes every grant of that pair.
func (s *Store) RevokeConsent(ctx context.Context, userID, clientID string, at time.Time) error {
	return s.tx(ctx, "revoke consent", func(tx *sql.Tx) error {
		res, err := tx.ExecContext(ctx, `DELETE FROM consents WHERE user_id = $1 AND client_id = $2`, userID, clientID)
		if err != nil {
			return err
		}
		n, err := res.RowsAffected()
		if err != nil {
			return err
		}
		res, err = tx.ExecContext(ctx, `UPDATE grants SET revoked_at = $1 WHERE user_id = $2 AND client_id = $3 AND revoked_at = 0`, unix(at), userID, clientID)
		if err != nil {
			return err
		}
		m, err := res.RowsAffected()
		if err != nil {
			return err
		}
		if n+m == 0 {
			return storage.ErrNotFound
		}
		return nil
	})
}

// ListClientConsents lists the consents given to a client.
func (s *Store) ListClientConsents(ctx context.Context, clientID string) ([]storage.Consent, error) {
	return list(ctx, s, func(r scanner) (*storage.Consent, error) { return scanConsent(r) },
		`SELECT user_id, client_id, scopes, granted_at, updated_at, last_used_at FROM consents WHERE client_id = $1 ORDER BY updated_at DESC, user_id`, clientID)
}

// ---- grants

// CreateGrant stores a new token family.
func (s *Store) CreateGrant(ctx context.Context, g storage.Grant) error {
	return s.insert(ctx, `INSERT INTO grants (`+grantCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10)`, grantArgs(g)...)
}

// GetGrant returns a grant.
func (s *Store) GetGrant(ctx context.Context, id string) (*storage.Grant, error) {
	return scanGrant(s.readRow(ctx, `SELECT `+grantCols+` FROM grants WHERE id = $1`, id))
}

// RevokeGrant marks a grant revoked; an already revoked grant keeps its time.
func (s *Store) RevokeGrant(ctx context.Context, id string, at time.Time) error {
	res, err := s.exec(ctx, `UPDATE grants SET revoked_at = CASE WHEN revoked_at = 0 THEN $1 ELSE revoked_at END WHERE id = $2`, unix(at), id)
	return mustAffect(res, err)
}

// ---- authorization requests

// CreateAuthRequest stores a pending authorization request.
func (s *Store) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	return s.insert(ctx, `INSERT INTO auth_requests (id, client_id, redirect_uri, scopes, state, nonce, code_challenge, code_challenge_method, prompt, max_age, created_at, expires_at, dpop_jkt, resources, ui_locales, claims, acr_values)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		r.ID, r.ClientID, r.RedirectURI, joinList(r.Scopes), r.State, r.Nonce, r.CodeChallenge, r.CodeChallengeMethod, r.Prompt, r.MaxAge, unix(r.CreatedAt), unix(r.ExpiresAt),
		r.DPoPJKT, joinList(r.Resources), r.UILocales, r.Claims, r.ACRValues)
}

// GetAuthRequest returns a pending authorization request.
func (s *Store) GetAuthRequest(ctx context.Context, id string) (*storage.AuthRequest, error) {
	var r storage.AuthRequest
	var scopes, resources string
	var created, expires int64
	err := s.readRow(ctx, `SELECT id, client_id, redirect_uri, scopes, state, nonce, code_challenge, code_challenge_method, prompt, max_age, created_at, expires_at,
		dpop_jkt, resources, ui_locales, claims, acr_values FROM auth_requests WHERE id = $1`, id).
		Scan(&r.ID, &r.ClientID, &r.RedirectURI, &scopes, &r.State, &r.Nonce, &r.CodeChallenge, &r.CodeChallengeMethod, &r.Prompt, &r.MaxAge, &created, &expires,
			&r.DPoPJKT, &resources, &r.UILocales, &r.Claims, &r.ACRValues)
	if err != nil {
		return nil, notFound(err)
	}
	r.Scopes, r.Resources = splitList(scopes), splitList(resources)
	r.CreatedAt, r.ExpiresAt = fromUnix(created), fromUnix(expires)
	return &r, nil
}

// DeleteAuthRequest removes a pending authorization request.
func (s *Store) DeleteAuthRequest(ctx context.Context, id string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM auth_requests WHERE id = $1`, id))
}

// ---- authorization codes

const codeCols = `hash, grant_id, client_id, user_id, redirect_uri, scopes, nonce, code_challenge, code_challenge_method, auth_time, created_at, expires_at, used_at, dpop_jkt, resources, claims, amr`

func scanCode(r scanner) (*storage.AuthCode, error) {
	var c storage.AuthCode
	var scopes, resources, amr string
	var auth, created, expires, used int64
	if err := r.Scan(&c.Hash, &c.GrantID, &c.ClientID, &c.UserID, &c.RedirectURI, &scopes, &c.Nonce, &c.CodeChallenge, &c.CodeChallengeMethod,
		&auth, &created, &expires, &used, &c.DPoPJKT, &resources, &c.Claims, &amr); err != nil {
		return nil, notFound(err)
	}
	c.Scopes, c.Resources, c.AMR = splitList(scopes), splitList(resources), splitList(amr)
	c.AuthTime, c.CreatedAt, c.ExpiresAt, c.UsedAt = fromUnix(auth), fromUnix(created), fromUnix(expires), fromUnix(used)
	return &c, nil
}

// CreateAuthCode stores an issued code.
func (s *Store) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	return s.insert(ctx, `INSERT INTO auth_codes (`+codeCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11, $12, $13, $14, $15, $16, $17)`,
		c.Hash, c.GrantID, c.ClientID, c.UserID, c.RedirectURI, joinList(c.Scopes), c.Nonce, c.CodeChallenge, c.CodeChallengeMethod,
		unix(c.AuthTime), unix(c.CreatedAt), unix(c.ExpiresAt), unix(c.UsedAt), c.DPoPJKT, joinList(c.Resources), c.Claims, joinList(c.AMR))
}

// ConsumeAuthCode marks a code used with one conditional UPDATE, and
// reads the code's user: in the same statement where the dialect runs
// UPDATE inside WITH, after it elsewhere.
func (s *Store) ConsumeAuthCode(ctx context.Context, hash string, at time.Time) (*storage.AuthCode, *storage.User, error) {
	var c *storage.AuthCode
	var u *storage.User
	var err error
	if s.d.WritableCTE {
		c, u, err = s.consumeWithUser(ctx, hash, at)
	} else {
		c, err = scanCode(s.writeRow(ctx, `UPDATE auth_codes SET used_at = $1 WHERE hash = $2 AND used_at = 0 RETURNING `+codeCols, unix(at), hash))
		if err == nil {
			u, err = s.GetUser(ctx, c.UserID)
			if errors.Is(err, storage.ErrNotFound) {
				u, err = nil, nil
			}
		}
	}
	if !errors.Is(err, storage.ErrNotFound) {
		return c, u, err
	}
	c, err = scanCode(s.readRow(ctx, `SELECT `+codeCols+` FROM auth_codes WHERE hash = $1`, hash))
	if err != nil {
		return nil, nil, err
	}
	return c, nil, storage.ErrAlreadyUsed
}

// ---- refresh tokens

const refreshCols = `hash, grant_id, client_id, user_id, scopes, auth_time, created_at, expires_at, used_at, jkt, next_hash`

func refreshArgs(t storage.RefreshToken) []any {
	return []any{t.Hash, t.GrantID, t.ClientID, t.UserID, joinList(t.Scopes), unix(t.AuthTime), unix(t.CreatedAt), unix(t.ExpiresAt), unix(t.UsedAt),
		t.JKT, t.NextHash}
}

const insertRefresh = `INSERT INTO refresh_tokens (` + refreshCols + `) VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9, $10, $11)`

// CreateRefreshToken stores an issued refresh token.
func (s *Store) CreateRefreshToken(ctx context.Context, t storage.RefreshToken) error {
	return s.insert(ctx, insertRefresh, refreshArgs(t)...)
}

// GetRefreshToken returns a refresh token by hash.
func (s *Store) GetRefreshToken(ctx context.Context, hash string) (*storage.RefreshToken, error) {
	return scanRefresh(s.readRow(ctx, `SELECT `+refreshCols+` FROM refresh_tokens WHERE hash = $1`, hash))
}

// usedOrMissing tells, after a conditional update of oldHash changed
// nothing, whether the token exists (ErrAlreadyUsed) or not (ErrNotFound).
func usedOrMissing(ctx context.Context, tx *sql.Tx, oldHash string) error {
	var one int
	if err := tx.QueryRowContext(ctx, `SELECT 1 FROM refresh_tokens WHERE hash = $1`, oldHash).Scan(&one); err != nil {
		return notFound(err)
	}
	return storage.ErrAlreadyUsed
}

// RetryRotation gives a just-rotated token a new successor and spends the
// old successor, in one transaction. The first UPDATE is conditional on
// the successor it expects, so that of concurrent retries one wins: the
// others, once the winner commits, match no row (PostgreSQL re-checks the
// condition on the locked row; SQLite runs one writer at a time).
func (s *Store) RetryRotation(ctx context.Context, oldHash, successorHash string, next storage.RefreshToken, since, at time.Time) error {
	return s.tx(ctx, "retry refresh rotation", func(tx *sql.Tx) error {
		err := mustAffect(tx.ExecContext(ctx, `UPDATE refresh_tokens SET next_hash = $1
			WHERE hash = $2 AND used_at <> 0 AND used_at >= $3 AND next_hash = $4 AND next_hash <> ''`,
			next.Hash, oldHash, unix(since), successorHash))
		if errors.Is(err, storage.ErrNotFound) {
			return usedOrMissing(ctx, tx, oldHash)
		}
		if err != nil {
			return err
		}
		err = mustAffect(tx.ExecContext(ctx, `UPDATE refresh_tokens SET used_at = $1, next_hash = '' WHERE hash = $2 AND used_at = 0`,
			unix(at), successorHash))
		if errors.Is(err, storage.ErrNotFound) {
			return storage.ErrAlreadyUsed // the client moved on with the successor
		}
		if err != nil {
			return err
		}
		_, err = tx.ExecContext(ctx, insertRefresh, refreshArgs(next)...)
		return err
	})
}

// ---- revoked access tokens

// RevokeToken adds a jti to the deny list.
func (s *Store) RevokeToken(ctx context.Context, jti string, expiresAt time.Time) error {
	_, err := s.exec(ctx, `INSERT INTO revoked_tokens (jti, expires_at) VALUES ($1, $2) ON CONFLICT (jti) DO NOTHING`, jti, unix(expiresAt))
	return err
}

// IsTokenRevoked reports whether a jti is on the deny list.
func (s *Store) IsTokenRevoked(ctx context.Context, jti string) (bool, error) {
	var one int
	err := s.readRow(ctx, `SELECT 1 FROM revoked_tokens WHERE jti = $1`, jti).Scan(&one)
	if errors.Is(err, sql.ErrNoRows) {
		return false, nil
	}
	return err == nil, err
}

// ---- sessions

// CreateSession stores a browser session.
func (s *Store) CreateSession(ctx context.Context, se storage.Session) error {
	return s.insert(ctx, `INSERT INTO sessions (id_hash, user_id, auth_time, created_at, expires_at, amr, upstream, upstream_subject, upstream_sid)
		VALUES ($1, $2, $3, $4, $5, $6, $7, $8, $9)`,
		se.IDHash, se.UserID, unix(se.AuthTime), unix(se.CreatedAt), unix(se.ExpiresAt), joinList(se.AMR), se.Upstream.Upstream, se.Upstream.Subject, se.Upstream.SID)
}

// GetSession returns a session by the hash of its id.
func (s *Store) GetSession(ctx context.Context, idHash string) (*storage.Session, error) {
	return one(ctx, s, scanSession, `SELECT `+sessionCols+` FROM sessions WHERE id_hash = $1`, idHash)
}

// DeleteUserSessions removes every session of a user.
func (s *Store) DeleteUserSessions(ctx context.Context, userID string) (int64, error) {
	res, err := s.exec(ctx, `DELETE FROM sessions WHERE user_id = $1`, userID)
	if err != nil {
		return 0, err
	}
	return res.RowsAffected()
}

// DeleteSession removes a session.
func (s *Store) DeleteSession(ctx context.Context, idHash string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM sessions WHERE id_hash = $1`, idHash))
}

// ---- signing keys

// CreateSigningKey stores a private key.
func (s *Store) CreateSigningKey(ctx context.Context, k storage.SigningKey) error {
	return s.insert(ctx, `INSERT INTO signing_keys (id, algorithm, private_jwk, created_at, retired_at) VALUES ($1, $2, $3, $4, $5)`,
		k.ID, k.Algorithm, string(k.PrivateJWK), unix(k.CreatedAt), unix(k.RetiredAt))
}

// ListSigningKeys returns every key, newest first.
func (s *Store) ListSigningKeys(ctx context.Context) ([]storage.SigningKey, error) {
	scan := func(r scanner) (*storage.SigningKey, error) {
		var k storage.SigningKey
		var jwk string
		var created, retired int64
		if err := r.Scan(&k.ID, &k.Algorithm, &jwk, &created, &retired); err != nil {
			return nil, err
		}
		k.PrivateJWK = []byte(jwk)
		k.CreatedAt, k.RetiredAt = fromUnix(created), fromUnix(retired)
		return &k, nil
	}
	return list(ctx, s, scan, `SELECT id, algorithm, private_jwk, created_at, retired_at FROM signing_keys ORDER BY created_at DESC, retired_at = 0 DESC, retired_at DESC, id DESC`)
}

// RetireSigningKey stops a key from signing; it stays published.
func (s *Store) RetireSigningKey(ctx context.Context, id string, at time.Time) error {
	return mustAffect(s.exec(ctx, `UPDATE signing_keys SET retired_at = $1 WHERE id = $2 AND retired_at = 0`, unix(at), id))
}

// DeleteSigningKey removes a key for good.
func (s *Store) DeleteSigningKey(ctx context.Context, id string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM signing_keys WHERE id = $1`, id))
}

// ---- shared secrets

// Secret returns the secret named name, storing value if none exists yet.
func (s *Store) Secret(ctx context.Context, name string, value []byte) ([]byte, error) {
	if _, err := s.exec(ctx, `INSERT INTO secrets (name, value) VALUES ($1, $2) ON CONFLICT (name) DO NOTHING`, name, hex.EncodeToString(value)); err != nil {
		return nil, err
	}
	var hexValue string
	if err := s.readRow(ctx, `SELECT value FROM secrets WHERE name = $1`, name).Scan(&hexValue); err != nil {
		return nil, err
	}
	out, err := hex.DecodeString(hexValue)
	if err != nil {
		return nil, fmt.Errorf("secret %s: %w", name, err)
	}
	return out, nil
}

// ---- failure counters

// AddFailure counts a failure in one statement, so that concurrent failures
// on several nodes are all counted.
func (s *Store) AddFailure(ctx context.Context, key string, at, expiresAt time.Time) (int, error) {
	var n int
	err := s.writeRow(ctx, `INSERT INTO failures (key, count, last_ms, expires_ms) VALUES ($1, 1, $2, $3)
		ON CONFLICT (key) DO UPDATE SET
			count = CASE WHEN failures.expires_ms < $2 THEN 1 ELSE failures.count + 1 END,
			last_ms = $2, expires_ms = $3
		RETURNING count`, key, at.UnixMilli(), expiresAt.UnixMilli()).Scan(&n)
	return n, err
}

// Failures reads key's live counter.
func (s *Store) Failures(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	var n int
	var last int64
	err := s.readRow(ctx, `SELECT count, last_ms FROM failures WHERE key = $1 AND expires_ms >= $2`, key, now.UnixMilli()).Scan(&n, &last)
	if errors.Is(err, sql.ErrNoRows) {
		return 0, time.Time{}, nil
	}
	if err != nil {
		return 0, time.Time{}, err
	}
	return n, time.UnixMilli(last).UTC(), nil
}

// ResetFailures deletes key's counter.
func (s *Store) ResetFailures(ctx context.Context, key string) error {
	_, err := s.exec(ctx, `DELETE FROM failures WHERE key = $1`, key)
	return err
}

// ReserveAttempt counts the attempt first, in one statement: the upsert
// locks the key's row, so of concurrent callers on any number of nodes each
// sees the count the one before left, and only those the policy allows
// are counted. Refused, the statement changes and returns nothing. The
// delay is Throttle.Delay written in SQL: Base shifted left by the count
// beyond Free, up to Max.
func (s *Store) ReserveAttempt(ctx context.Context, key string, now time.Time, t storage.Throttle) (int, time.Duration, error) {
	ms := now.UnixMilli()
	for range 3 {
		var n int
		err := s.writeRow(ctx, `INSERT INTO failures (key, count, pending, last_ms, expires_ms) VALUES ($1, 1, 1, $2, $3)
			ON CONFLICT (key) DO UPDATE SET
				count = CASE WHEN failures.expires_ms < $2 THEN 1 ELSE failures.count + 1 END,
				pending = CASE WHEN failures.expires_ms < $2 THEN 1 ELSE failures.pending + 1 END,
				last_ms = $2, expires_ms = $3
			WHERE failures.expires_ms < $2 OR failures.count < $4 OR failures.last_ms + (CASE
				WHEN failures.count - $4 >= 30 THEN $6
				WHEN (CAST($5 AS BIGINT) << CAST(failures.count - $4 AS INTEGER)) >= $6 THEN $6
				ELSE (CAST($5 AS BIGINT) << CAST(failures.count - $4 AS INTEGER)) END) <= $2
			RETURNING count`, key, ms, now.Add(t.Max).UnixMilli(), t.Free, t.Base.Milliseconds(), t.Max.Milliseconds()).Scan(&n)
		if err == nil {
			return n, 0, nil
		}
		if !errors.Is(err, sql.ErrNoRows) {
			return 0, 0, err
		}
		// Refused: say why. Should the wait have ended meanwhile (a
		// success, an expiry), try again.
		var pending int
		var last int64
		err = s.readRow(ctx, `SELECT count, pending, last_ms FROM failures WHERE key = $1`, key).Scan(&n, &pending, &last)
		if errors.Is(err, sql.ErrNoRows) {
			continue
		}
		if err != nil {
			return 0, 0, err
		}
		if n-pending < t.Free {
			return 0, 0, nil // attempts in flight fill the budget
		}
		if wait := time.UnixMilli(last).Add(t.Delay(n)).Sub(now); wait > 0 {
			return 0, wait, nil
		}
	}
	return 0, max(t.Base, time.Millisecond), nil
}

// EndAttempt settles an attempt ReserveAttempt counted. A success keeps
// only the attempts still in flight, so that it does not clear guesses
// racing it.
func (s *Store) EndAttempt(ctx context.Context, key string, o storage.Outcome) error {
	var q string
	switch o {
	case storage.AttemptFailed:
		q = `UPDATE failures SET pending = pending - 1 WHERE key = $1 AND pending > 0`
	case storage.AttemptSucceeded:
		q = `UPDATE failures SET count = pending - 1, pending = pending - 1 WHERE key = $1 AND pending > 0`
	case storage.AttemptReleased:
		q = `UPDATE failures SET count = count - 1, pending = pending - 1 WHERE key = $1 AND pending > 0`
	default:
		return fmt.Errorf("%s: unknown attempt outcome %d", s.d.Name, o)
	}
	_, err := s.exec(ctx, q, key)
	return err
}

// ---- device codes

const deviceCols = `hash, user_code, client_id, scopes, poll_interval, created_at, expires_at, last_poll_ms, status, user_id, granted_scopes, auth_time, used_at, amr`

func scanDevice(r scanner) (*storage.DeviceCode, error) {
	var d storage.DeviceCode
	var scopes, granted, amr string
	var created, expires, lastPoll, authTime, used int64
	if err := r.Scan(&d.Hash, &d.UserCode, &d.ClientID, &scopes, &d.Interval, &created, &expires, &lastPoll, &d.Status, &d.UserID,
		&granted, &authTime, &used, &amr); err != nil {
		return nil, err
	}
	d.Scopes, d.GrantedScopes, d.AMR = splitList(scopes), splitList(granted), splitList(amr)
	d.CreatedAt, d.ExpiresAt, d.AuthTime, d.UsedAt = fromUnix(created), fromUnix(expires), fromUnix(authTime), fromUnix(used)
	if lastPoll != 0 {
		d.LastPoll = time.UnixMilli(lastPoll).UTC()
	}
	return &d, nil
}

// CreateDeviceCode stores a pending device code.
func (s *Store) CreateDeviceCode(ctx context.Context, d storage.DeviceCode) error {
	return s.insert(ctx, `INSERT INTO device_codes (`+deviceCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, 0, $8, '', '', 0, 0, '')`,
		d.Hash, d.UserCode, d.ClientID, joinList(d.Scopes), d.Interval, unix(d.CreatedAt), unix(d.ExpiresAt), storage.DevicePending)
}

// GetDeviceCodeByUserCode reads a device code by the code the user types.
func (s *Store) GetDeviceCodeByUserCode(ctx context.Context, userCode string) (*storage.DeviceCode, error) {
	d, err := scanDevice(s.readRow(ctx, `SELECT `+deviceCols+` FROM device_codes WHERE user_code = $1`, userCode))
	return d, notFound(err)
}

// DecideDeviceCode answers a pending device code, once.
func (s *Store) DecideDeviceCode(ctx context.Context, userCode string, approved bool, userID string, granted, amr []string, authTime, at time.Time) error {
	status := storage.DeviceDenied
	if approved {
		status = storage.DeviceApproved
	}
	return mustAffect(s.exec(ctx, `UPDATE device_codes SET status = $1, user_id = $2, granted_scopes = $3, auth_time = $4, amr = $8
		WHERE user_code = $5 AND status = $6 AND expires_at > $7`,
		status, userID, joinList(granted), unix(authTime), userCode, storage.DevicePending, unix(at), joinList(amr)))
}

// PollDeviceCode reads the code, then records the poll only if no other
// poll came in between (compare and set on last_poll_ms).
func (s *Store) PollDeviceCode(ctx context.Context, hash string, at time.Time) (*storage.DeviceCode, error) {
	d, err := scanDevice(s.readRow(ctx, `SELECT `+deviceCols+` FROM device_codes WHERE hash = $1`, hash))
	if err != nil {
		return nil, notFound(err)
	}
	var prev int64
	if !d.LastPoll.IsZero() {
		prev = d.LastPoll.UnixMilli()
	}
	res, err := s.exec(ctx, `UPDATE device_codes SET last_poll_ms = $1 WHERE hash = $2 AND last_poll_ms = $3`, at.UnixMilli(), hash, prev)
	if err != nil {
		return nil, err
	}
	if n, err := res.RowsAffected(); err != nil {
		return nil, err
	} else if n == 0 {
		d.LastPoll = at // another poll won the race: this one is too fast
	}
	return d, nil
}

// ConsumeDeviceCode marks an approved code used, at most once.
func (s *Store) ConsumeDeviceCode(ctx context.Context, hash string, at time.Time) error {
	err := mustAffect(s.exec(ctx, `UPDATE device_codes SET used_at = $1 WHERE hash = $2 AND status = $3 AND used_at = 0`,
		unix(at), hash, storage.DeviceApproved))
	if errors.Is(err, storage.ErrNotFound) {
		return fmt.Errorf("%w: device code", storage.ErrAlreadyUsed)
	}
	return err
}

// ---- scopes

// ListScopes reads the catalog.
func (s *Store) ListScopes(ctx context.Context) ([]storage.ScopeDef, error) {
	return list(ctx, s, func(r scanner) (*storage.ScopeDef, error) {
		var d storage.ScopeDef
		var desc, explain, claims string
		var sensitive, required int
		if err := r.Scan(&d.Name, &d.Position, &desc, &sensitive, &required, &claims, &explain); err != nil {
			return nil, err
		}
		if err := json.Unmarshal([]byte(desc), &d.Description); err != nil {
			return nil, fmt.Errorf("scope %s: descriptions: %w", d.Name, err)
		}
		if explain != "" {
			if err := json.Unmarshal([]byte(explain), &d.Explanation); err != nil {
				return nil, fmt.Errorf("scope %s: explanations: %w", d.Name, err)
			}
		}
		d.Sensitive, d.Required, d.Claims = sensitive != 0, required != 0, splitList(claims)
		return &d, nil
	}, `SELECT name, position, descriptions, sensitive, required, claims, explanations FROM scopes ORDER BY position, name`)
}

// SaveScope upserts a scope.
func (s *Store) SaveScope(ctx context.Context, d storage.ScopeDef) error {
	desc, err := json.Marshal(d.Description)
	if err != nil {
		return err
	}
	explain, err := json.Marshal(d.Explanation)
	if err != nil {
		return err
	}
	_, err = s.exec(ctx, `INSERT INTO scopes (name, position, descriptions, sensitive, required, claims, explanations) VALUES ($1, $2, $3, $4, $5, $6, $7)
		ON CONFLICT (name) DO UPDATE SET position = $2, descriptions = $3, sensitive = $4, required = $5, claims = $6, explanations = $7`,
		d.Name, d.Position, string(desc), boolInt(d.Sensitive), boolInt(d.Required), joinList(d.Claims), string(explain))
	return err
}

// DeleteScope removes a scope.
func (s *Store) DeleteScope(ctx context.Context, name string) error {
	return mustAffect(s.exec(ctx, `DELETE FROM scopes WHERE name = $1`, name))
}

// ---- single-use values

// UseOnce inserts key; a key present already is a replay.
func (s *Store) UseOnce(ctx context.Context, key string, expiresAt time.Time) error {
	err := s.insert(ctx, `INSERT INTO used_once (key, expires_at) VALUES ($1, $2)`, key, unix(expiresAt))
	if errors.Is(err, storage.ErrAlreadyExists) {
		return fmt.Errorf("%w: %s", storage.ErrAlreadyUsed, key)
	}
	return err
}

// ---- audit log

// AddAuditEvent appends an event.
func (s *Store) AddAuditEvent(ctx context.Context, e storage.AuditEvent) error {
	return s.insert(ctx, `INSERT INTO audit_events (`+auditCols+`) VALUES ($1, $2, $3, $4, $5, $6, $7, $8)`, auditArgs(e)...)
}

// ListAuditEvents filters with fixed SQL: each condition is disabled by an
// empty (or zero) parameter, so one prepared statement serves every filter.
func (s *Store) ListAuditEvents(ctx context.Context, f storage.AuditFilter) ([]storage.AuditEvent, error) {
	if strings.ContainsAny(f.Upstream, `%_\`) {
		return nil, nil // no upstream id: LIKE must not read it as a pattern
	}
	limit := f.Limit
	if limit <= 0 {
		limit = 100
	}
	var until int64 = math.MaxInt64
	if !f.Until.IsZero() {
		until = f.Until.UnixMilli()
	}
	scan := func(r scanner) (*storage.AuditEvent, error) {
		var e storage.AuditEvent
		var at, exp int64
		if err := r.Scan(&e.ID, &at, &e.Type, &e.UserID, &e.ClientID, &e.IP, &e.Detail, &exp); err != nil {
			return nil, err
		}
		e.Time, e.ExpiresAt = time.UnixMilli(at).UTC(), fromUnix(exp)
		return &e, nil
	}
	return list(ctx, s, scan, `SELECT id, at_ms, type, user_id, client_id, ip, detail, expires_at FROM audit_events
		WHERE ($1 = '' OR user_id = $1) AND ($2 = '' OR client_id = $2) AND ($3 = '' OR type = $3) AND at_ms >= $4 AND at_ms < $5
		AND ($7 = '' OR detail LIKE $8 OR detail LIKE $9 OR detail LIKE $10 OR detail LIKE $11)
		ORDER BY at_ms DESC, id DESC LIMIT $6`, f.UserID, f.ClientID, f.Type, f.Since.UnixMilli(), until, limit,
		f.Upstream, "%upstream:"+f.Upstream, "%upstream:"+f.Upstream+"+%", "%upstream="+f.Upstream, "%upstream="+f.Upstream+";%")
}

// ---- garbage collection

// DeleteExpired removes what expired before now, all of it. Grants are
// kept while any refresh token of theirs lives, and revoked access tokens
// while they could still be presented.
func (s *Store) DeleteExpired(ctx context.Context, now time.Time) (int64, error) {
	return s.Prune(ctx, storage.Prune{Now: now, MaxBatches: math.MaxInt32})
}
