package server

import (
	"log/slog"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/account"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// newAccounts builds the mail sender (over the configured relay, or to the
// log without one) and the sign-up, verification and reset pages.
func newAccounts(cfg config.Config, store storage.Storage, sessions *session.Manager, pages *ui.UI, auditLog *audit.Log,
	logouts *backchannel.Notifier, log *slog.Logger, now func() time.Time, pw password.Params) (*mail.Sender, *account.Handler, error) {
	// Without a relay, mails go to the log: whole on a development
	// issuer (http, localhost), where the demo's links are read there;
	// dropped on an https one, since the links would let whoever reads
	// the logs into accounts.
	var transport mail.Transport = mail.LogTransport{Log: log, Body: !strings.HasPrefix(cfg.Issuer, "https://")}
	if cfg.MailRelay != "" {
		relay, err := mail.ParseRelay(cfg.MailRelay)
		if err != nil {
			return nil, nil, err
		}
		transport = &mail.SMTP{Relay: relay, From: cfg.MailSender()}
	}
	sender := &mail.Sender{Store: store, Transport: transport, Log: log, Now: now, Interval: time.Second, Lease: 2 * time.Minute, Batch: 20,
		Base: 2 * time.Second, Max: 10 * time.Minute}
	outbox := &mail.Outbox{Store: store, Now: now, TTL: cfg.EmailLinkTTL, Kick: sender.Kick}
	h := &account.Handler{Store: store, Sessions: sessions, UI: pages, Outbox: outbox, Audit: auditLog, Logouts: logouts,
		Issuer: cfg.Issuer, Product: pages.Product, Log: log, Now: now, Password: pw, Signup: cfg.Signup, LinkTTL: cfg.EmailLinkTTL,
		// Three mails to one address or account at once, then one an
		// hour at most.
		Sends: &ratelimit.Backoff{Counter: store, Free: 3, Base: 5 * time.Minute, Max: time.Hour, Now: now},
		// Twenty sign-ups or reset requests from one network at once.
		Creations: &ratelimit.Backoff{Counter: store, Free: 20, Base: time.Second, Max: 15 * time.Minute, Now: now},
		// Links that match nothing: a few typos, not a search.
		Guesses: &ratelimit.Backoff{Counter: store, Free: 10, Base: time.Second, Max: 15 * time.Minute, Now: now},
	}
	return sender, h, nil
}
