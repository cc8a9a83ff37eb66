// Package mail sends bawwab's mail: email verification and password reset
// links, and notices of security events. A request never talks to the
// mail relay: it writes the message to a durable outbox in the store
// (Outbox), and a Sender on every node claims due messages with a lease
// and delivers them over SMTP (RFC 5321) through github.com/wneessen/go-mail,
// retrying with backoff while the relay is down. A relay outage thus
// loses no message, and of several nodes one sends each message.
//
// With no relay configured, messages are written to the log instead,
// clearly labelled: for development and the demo only.
package mail

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"log/slog"
	netmail "net/mail"
	"strings"
	"sync"
	"time"
	"unicode"

	"github.com/bawwab/bawwab/internal/storage"
)

// Message is a plain-text message to one address.
type Message struct {
	To      string
	Subject string
	Body    string
	// Kind names what it is for (verify, reset, notice): logs only.
	Kind string
}

// ErrBadAddress means an address is not a single plain address.
var ErrBadAddress = errors.New("mail: not a valid email address")

// MaxAddressLen bounds an address (RFC 5321 §4.5.3.1.3: a path of 256
// octets, less the angle brackets).
const MaxAddressLen = 254

// CheckAddress reports whether addr is one plain address
// (local@domain, RFC 5322 §3.4.1) whose domain is a valid domain name,
// internationalised or not (storage.CheckEmailDomain), with nothing around
// it: no display name, no group, no line break or other control character
// that could end a header and start another.
func CheckAddress(addr string) error {
	if addr == "" || len(addr) > MaxAddressLen || strings.IndexFunc(addr, unicode.IsControl) >= 0 {
		return ErrBadAddress
	}
	a, err := netmail.ParseAddress(addr)
	if err != nil || a.Name != "" || a.Address != addr || !strings.Contains(addr, "@") || storage.CheckEmailDomain(addr) != nil {
		return ErrBadAddress
	}
	return nil
}

// headerText makes s safe as a header value: every control character
// (CR and LF among them, which would end the header and start another) is
// a space, and the length is bounded.
func headerText(s string) string {
	s = strings.Map(func(r rune) rune {
		if unicode.IsControl(r) {
			return ' '
		}
		return r
	}, s)
	if len(s) > 200 {
		s = s[:200]
	}
	return strings.TrimSpace(s)
}

// Outbox writes messages to the store for the Senders to deliver.
type Outbox struct {
	Store storage.Storage
	Now   func() time.Time
	// TTL is how long a message may wait for delivery; one not delivered
	// by then is dropped, since the links in it have expired.
	TTL time.Duration
	// Kick, when set, is told of each message, so that this node's
	// Sender sends it at once rather than at its next poll.
	Kick func()
}

// Send stores m for delivery. The recipient must be a plain address and
// the subject loses any control character, so that nothing a person typed
// (a name, an address) can add a header or a recipient.
func (o *Outbox) Send(ctx context.Context, m Message) error {
	if err := CheckAddress(m.To); err != nil {
		return err
	}
	now := o.Now()
	err := o.Store.EnqueueMail(ctx, storage.Mail{ID: newID(now), To: m.To, Subject: headerText(m.Subject), Body: m.Body, Kind: headerText(m.Kind),
		CreatedAt: now, NextAt: now, ExpiresAt: now.Add(o.TTL)})
	if err == nil && o.Kick != nil {
		o.Kick()
	}
	return err
}

// newID sorts by time, then at random across nodes.
func newID(now time.Time) string {
	return fmt.Sprintf("%016x%s", now.UnixNano(), rand.Text()[:10])
}

// Transport delivers one message.
type Transport interface {
	Deliver(ctx context.Context, m storage.Mail) error
}

// Sender delivers the outbox: every Interval, and when kicked, it claims
// due messages with a lease and hands them to its Transport. A failed
// delivery is tried again after Base, doubling with each failure up to Max.
type Sender struct {
	Store     storage.Storage
	Transport Transport
	Log       *slog.Logger
	Now       func() time.Time
	// Interval between polls; Lease is how long a claimed message is
	// this sender's (past any delivery's timeout); Batch is how many it
	// claims at once.
	Interval, Lease time.Duration
	Batch           int
	Base, Max       time.Duration
	// OnResult, when set, is told of each delivery (metrics, tests).
	OnResult func(kind string, err error)

	once sync.Once
	kick chan struct{}
}

func (s *Sender) kicks() chan struct{} {
	s.once.Do(func() { s.kick = make(chan struct{}, 1) })
	return s.kick
}

// Kick makes a running sender poll now.
func (s *Sender) Kick() {
	select {
	case s.kicks() <- struct{}{}:
	default:
	}
}

// Run delivers until ctx ends. A delivery under way when it ends is
// finished or cut off by its own timeout; an unfinished one stays leased
// and is sent by a sender after the lease.
func (s *Sender) Run(ctx context.Context) {
	t := time.NewTicker(s.Interval)
	defer t.Stop()
	for {
		for s.Poll(ctx) > 0 && ctx.Err() == nil {
		}
		select {
		case <-ctx.Done():
			return
		case <-t.C:
		case <-s.kicks():
		}
	}
}

// Poll claims one batch of due messages and delivers them; it returns how
// many it claimed.
func (s *Sender) Poll(ctx context.Context) int {
	now := s.Now()
	batch, err := s.Store.ClaimMail(ctx, now, now.Add(s.Lease), max(s.Batch, 1))
	if err != nil {
		if ctx.Err() == nil {
			s.Log.WarnContext(ctx, "mail: claim from outbox", "err", err)
		}
		return 0
	}
	for _, m := range batch {
		dctx, cancel := context.WithTimeout(context.WithoutCancel(ctx), s.Lease/2)
		err := s.Transport.Deliver(dctx, m)
		cancel()
		if s.OnResult != nil {
			s.OnResult(m.Kind, err)
		}
		if err != nil {
			next := s.Now().Add(s.backoff(m.Attempts))
			s.Log.WarnContext(ctx, "mail: delivery failed; will retry", "mail_id", m.ID, "kind", m.Kind, "attempt", m.Attempts+1,
				"retry_at", next, "err", err)
			if err := s.Store.MailFailed(context.WithoutCancel(ctx), m.ID, headerText(err.Error()), next); err != nil {
				s.Log.ErrorContext(ctx, "mail: record failed delivery", "mail_id", m.ID, "err", err)
			}
			continue
		}
		s.Log.InfoContext(ctx, "mail: delivered", "mail_id", m.ID, "kind", m.Kind)
		if err := s.Store.MailSent(context.WithoutCancel(ctx), m.ID, s.Now()); err != nil {
			// Delivered but not marked: the lease keeps it from being
			// sent again until it ends, and then it may be, once more.
			s.Log.ErrorContext(ctx, "mail: record delivery", "mail_id", m.ID, "err", err)
		}
	}
	return len(batch)
}

// backoff is the wait after the n+1st failure: Base doubled n times, at
// most Max.
func (s *Sender) backoff(n int) time.Duration {
	d := s.Base << min(n, 30)
	if d <= 0 || d > s.Max {
		d = s.Max
	}
	return d
}

// LogTransport writes messages to the log instead of sending them: for
// development and demos, where no relay is configured. With Body the log
// holds the links, which are secrets: only on a development machine.
type LogTransport struct {
	Log  *slog.Logger
	Body bool
}

// Deliver logs m; its body only when l.Body is set.
func (l LogTransport) Deliver(ctx context.Context, m storage.Mail) error {
	if !l.Body {
		l.Log.ErrorContext(ctx, "MAIL NOT SENT: no mail_relay is configured; the message is dropped (set mail_relay)",
			"mail_id", m.ID, "kind", m.Kind)
		return nil
	}
	l.Log.WarnContext(ctx, "MAIL NOT SENT: no mail_relay is configured, so the message is written here instead (development only)",
		"mail_id", m.ID, "kind", m.Kind, "to", m.To, "subject", m.Subject, "body", m.Body)
	return nil
}
