package postgres_test

import (
	"context"
	"errors"
	"io"
	"net"
	"net/url"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/testenv"
)

// proxy forwards TCP connections to addr until cut, which closes the
// listener and every connection: the database is then out of reach.
type proxy struct {
	l     net.Listener
	mu    sync.Mutex
	conns []net.Conn
}

func newProxy(t *testing.T, addr string) *proxy {
	t.Helper()
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	p := &proxy{l: l}
	go func() {
		for {
			c, err := l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", addr)
			if err != nil {
				c.Close()
				continue
			}
			p.mu.Lock()
			p.conns = append(p.conns, c, up)
			p.mu.Unlock()
			go func() { _, _ = io.Copy(up, c); up.Close() }()
			go func() { _, _ = io.Copy(c, up); c.Close() }()
		}
	}()
	t.Cleanup(p.cut)
	return p
}

func (p *proxy) cut() {
	p.l.Close()
	p.mu.Lock()
	defer p.mu.Unlock()
	for _, c := range p.conns {
		c.Close()
	}
}

// TestHotPathsUnavailable cuts the store off the database: every combined
// call of the token endpoint's hot paths then fails with
// storage.ErrUnavailable (503), never an error that reads as a bug (500)
// or as an unknown token (invalid_grant).
func TestHotPathsUnavailable(t *testing.T) {
	dsn, schema := testenv.PostgresSchema(t)
	u, err := url.Parse(dsn)
	if err != nil {
		t.Fatal(err)
	}
	p := newProxy(t, u.Host)
	u.Host = p.l.Addr().String()
	s := open(t, u.String(), schema)
	ctx := context.Background()
	now := time.Now().Truncate(time.Second)
	if err := s.CreateClient(ctx, storage.Client{ID: "notes", Name: "Notes", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	rt := storage.RefreshToken{Hash: "r1", GrantID: "g1", ClientID: "notes", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	ev := storage.AuditEvent{ID: "e1", Time: now, Type: "token_issued", UserID: "u1", ClientID: "notes", ExpiresAt: now.Add(time.Hour)}
	g := storage.Grant{ID: "g1", ClientID: "notes", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}
	if err := s.StartGrant(ctx, g, &rt, ev); err != nil {
		t.Fatal(err)
	}
	code := storage.AuthCode{Hash: "c1", GrantID: "g2", ClientID: "notes", UserID: "u1", CreatedAt: now, ExpiresAt: now.Add(time.Minute)}
	if err := s.CreateAuthCode(ctx, code); err != nil {
		t.Fatal(err)
	}
	// Every statement prepared while the database answered, so that the
	// outage strikes each at its execution.
	next := rt
	next.Hash = "r2"
	ev2 := ev
	ev2.ID = "e2"
	if err := s.RotateRefreshToken(ctx, "r1", next, now, ev2); err != nil {
		t.Fatal(err)
	}
	if _, err := s.GetRefreshTokenChain(ctx, "r2"); err != nil {
		t.Fatal(err)
	}
	if _, err := s.Enrolment(ctx, "u1"); err != nil {
		t.Fatal(err)
	}
	p.cut()

	after := rt
	after.Hash = "r3"
	calls := []struct {
		name string
		call func() error
	}{
		{"ConsumeAuthCode", func() error { _, _, err := s.ConsumeAuthCode(ctx, "c1", now); return err }},
		{"GetRefreshTokenChain", func() error { _, err := s.GetRefreshTokenChain(ctx, "r2"); return err }},
		{"StartGrant", func() error {
			return s.StartGrant(ctx, storage.Grant{ID: "g2", ClientID: "notes", UserID: "u1", ExpiresAt: now.Add(time.Hour)}, &after, ev)
		}},
		{"StartGrant bare", func() error {
			return s.StartGrant(ctx, storage.Grant{ID: "g3", ClientID: "notes", UserID: "u1", ExpiresAt: now.Add(time.Hour)}, nil)
		}},
		{"RotateRefreshToken", func() error { return s.RotateRefreshToken(ctx, "r2", after, now, ev2) }},
		{"Enrolment", func() error { _, err := s.Enrolment(ctx, "u1"); return err }},
	}
	for _, c := range calls {
		t.Run(c.name, func(t *testing.T) {
			if err := c.call(); !errors.Is(err, storage.ErrUnavailable) {
				t.Fatalf("%s with the database out of reach: %v, want storage.ErrUnavailable", c.name, err)
			}
		})
	}
}
