// Package mailtest runs a real SMTP server (RFC 5321, through
// github.com/emersion/go-smtp) on a loopback port for tests: it keeps what
// it receives, can require PLAIN authentication, and can be stopped and
// started again on the same port to play a relay outage.
package mailtest

import (
	"errors"
	"io"
	"net"
	"net/mail"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/emersion/go-sasl"
	"github.com/emersion/go-smtp"
)

// Received is one message as the server got it.
type Received struct {
	From string
	To   []string
	Data string // the whole message, headers and body
}

// Header returns the message's header field name, decoded (RFC 2047).
func (r Received) Header(name string) string {
	m, err := mail.ReadMessage(strings.NewReader(r.Data))
	if err != nil {
		return ""
	}
	v := m.Header.Get(name)
	if d, err := new(mimeDecoder).decode(v); err == nil {
		return d
	}
	return v
}

// Body returns the message body, undone of quoted-printable or base64.
func (r Received) Body() string {
	m, err := mail.ReadMessage(strings.NewReader(r.Data))
	if err != nil {
		return ""
	}
	return decodeBody(m)
}

// Server is a test SMTP relay.
type Server struct {
	// Username and Password, when set, must be given with AUTH PLAIN.
	Username, Password string

	t    testing.TB
	addr string
	mu   sync.Mutex
	got  []Received
	srv  *smtp.Server
	l    net.Listener
	cond chan struct{} // closed and renewed on each message
}

// Start starts a server on a free loopback port; it stops with the test.
func Start(t testing.TB) *Server {
	t.Helper()
	s := &Server{t: t, cond: make(chan struct{})}
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	s.addr = l.Addr().String()
	s.serve(l)
	t.Cleanup(s.Stop)
	return s
}

// Addr is host:port.
func (s *Server) Addr() string { return s.addr }

func (s *Server) serve(l net.Listener) {
	srv := smtp.NewServer(backend{s})
	srv.Domain = "relay.test"
	srv.AllowInsecureAuth = true
	srv.ReadTimeout, srv.WriteTimeout = 10*time.Second, 10*time.Second
	s.mu.Lock()
	s.srv, s.l = srv, l
	s.mu.Unlock()
	go func() { _ = srv.Serve(l) }()
}

// Stop closes the server: connections are refused until Restart.
func (s *Server) Stop() {
	s.mu.Lock()
	srv, l := s.srv, s.l
	s.srv, s.l = nil, nil
	s.mu.Unlock()
	if srv != nil {
		_ = l.Close() // Serve may not have taken it over yet
		_ = srv.Close()
	}
}

// Restart listens again on the same port.
func (s *Server) Restart() {
	s.t.Helper()
	var l net.Listener
	var err error
	for range 50 {
		if l, err = net.Listen("tcp", s.addr); err == nil {
			break
		}
		time.Sleep(100 * time.Millisecond)
	}
	if err != nil {
		s.t.Fatal(err)
	}
	s.serve(l)
}

// Messages returns what was received so far.
func (s *Server) Messages() []Received {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]Received(nil), s.got...)
}

// Wait waits until a message matching match has arrived, and returns it.
func (s *Server) Wait(t testing.TB, timeout time.Duration, match func(Received) bool) Received {
	t.Helper()
	deadline := time.After(timeout)
	for {
		s.mu.Lock()
		got, c := append([]Received(nil), s.got...), s.cond
		s.mu.Unlock()
		for _, m := range got {
			if match(m) {
				return m
			}
		}
		select {
		case <-c:
		case <-deadline:
			t.Fatalf("no matching mail within %v; got %d messages", timeout, len(s.Messages()))
			return Received{}
		}
	}
}

// To matches a message to addr.
func To(addr string) func(Received) bool {
	return func(r Received) bool {
		for _, to := range r.To {
			if strings.EqualFold(to, addr) {
				return true
			}
		}
		return false
	}
}

type backend struct{ s *Server }

func (b backend) NewSession(*smtp.Conn) (smtp.Session, error) { return &session{s: b.s}, nil }

type session struct {
	s      *Server
	authed bool
	from   string
	to     []string
}

func (ss *session) AuthMechanisms() []string {
	if ss.s.Username == "" {
		return nil
	}
	return []string{sasl.Plain}
}

func (ss *session) Auth(string) (sasl.Server, error) {
	return sasl.NewPlainServer(func(_, user, pass string) error {
		if user != ss.s.Username || pass != ss.s.Password {
			return errors.New("invalid credentials")
		}
		ss.authed = true
		return nil
	}), nil
}

func (ss *session) Mail(from string, _ *smtp.MailOptions) error {
	if ss.s.Username != "" && !ss.authed {
		return smtp.ErrAuthRequired
	}
	ss.from = from
	return nil
}

func (ss *session) Rcpt(to string, _ *smtp.RcptOptions) error {
	ss.to = append(ss.to, to)
	return nil
}

func (ss *session) Data(r io.Reader) error {
	b, err := io.ReadAll(r)
	if err != nil {
		return err
	}
	ss.s.mu.Lock()
	ss.s.got = append(ss.s.got, Received{From: ss.from, To: ss.to, Data: string(b)})
	close(ss.s.cond)
	ss.s.cond = make(chan struct{})
	ss.s.mu.Unlock()
	return nil
}

func (ss *session) Reset()        { ss.from, ss.to = "", nil }
func (ss *session) Logout() error { return nil }
