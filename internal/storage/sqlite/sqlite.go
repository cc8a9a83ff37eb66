// Package sqlite opens bawwab's embedded default store: a SQLite file through
// the pure-Go modernc.org/sqlite driver, in WAL mode with a busy timeout and
// immediate write transactions, so that concurrent writers queue instead of
// failing.
package sqlite

import (
	"context"
	"database/sql"
	"errors"
	"fmt"
	"net/url"
	"runtime"

	"modernc.org/sqlite"
	sqlite3 "modernc.org/sqlite/lib"

	"github.com/bawwab/bawwab/internal/storage/sqlstore"
)

// Dialect is SQLite's sqlstore.Dialect.
var Dialect = sqlstore.Dialect{
	Name: "sqlite",
	IsUniqueViolation: func(err error) bool {
		var e *sqlite.Error
		if !errors.As(err, &e) {
			return false
		}
		return e.Code() == sqlite3.SQLITE_CONSTRAINT_UNIQUE || e.Code() == sqlite3.SQLITE_CONSTRAINT_PRIMARYKEY
	},
	IsUnavailable: IsUnavailable,
}

// IsUnavailable reports whether err is a SQLite result that means the
// database cannot serve for now rather than a bug: the disk is full
// (SQLITE_FULL), the file cannot be written or opened (SQLITE_READONLY,
// SQLITE_IOERR, SQLITE_CANTOPEN, for instance out of file descriptors),
// memory ran out (SQLITE_NOMEM), or another process held the lock past the
// busy timeout (SQLITE_BUSY, SQLITE_LOCKED). Extended codes count by their
// primary code.
func IsUnavailable(err error) bool {
	var e *sqlite.Error
	if !errors.As(err, &e) {
		return false
	}
	switch e.Code() & 0xff {
	case sqlite3.SQLITE_FULL, sqlite3.SQLITE_READONLY, sqlite3.SQLITE_IOERR, sqlite3.SQLITE_CANTOPEN,
		sqlite3.SQLITE_NOMEM, sqlite3.SQLITE_BUSY, sqlite3.SQLITE_LOCKED:
		return true
	}
	return false
}

// Open opens (creating if needed) the SQLite database at path and migrates it.
//
// Writes go through one connection: concurrent writers then wait their turn
// in database/sql's pool, in order, instead of sleeping and retrying on
// SQLite's lock. Reads use a pool of their own and, in WAL mode, never wait
// for writes.
func Open(ctx context.Context, path string) (*sqlstore.Store, error) {
	writer, err := open(ctx, path)
	if err != nil {
		return nil, err
	}
	writer.SetMaxOpenConns(1)
	s, err := sqlstore.New(ctx, writer, Dialect)
	if err != nil {
		writer.Close()
		return nil, err
	}
	reader, err := open(ctx, path)
	if err != nil {
		s.Close()
		return nil, err
	}
	reader.SetMaxOpenConns(max(4, runtime.GOMAXPROCS(0)))
	reader.SetMaxIdleConns(max(4, runtime.GOMAXPROCS(0)))
	s.SetReader(reader)
	return s, nil
}

func open(ctx context.Context, path string) (*sql.DB, error) {
	q := url.Values{}
	q.Add("_pragma", "busy_timeout(10000)")
	q.Add("_pragma", "journal_mode(WAL)")
	q.Add("_pragma", "synchronous(NORMAL)")
	q.Add("_pragma", "foreign_keys(ON)")
	q.Set("_txlock", "immediate")
	db, err := sql.Open("sqlite", "file:"+path+"?"+q.Encode())
	if err != nil {
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	if err := db.PingContext(ctx); err != nil {
		db.Close()
		return nil, fmt.Errorf("sqlite: open %s: %w", path, err)
	}
	return db, nil
}
