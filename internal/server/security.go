package server

import (
	"context"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/security"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// registerSecurity builds the second factors and the Security page.
func registerSecurity(ctx context.Context, mux *http.ServeMux, cfg config.Config, store storage.Storage, sessions *session.Manager,
	pages *ui.UI, auditLog *audit.Log, log *slog.Logger, pw password.Params, logouts *backchannel.Notifier, now func() time.Time) error {
	sealer, err := factors.StoreSealer(ctx, store)
	if err != nil {
		return fmt.Errorf("factor sealer: %w", err)
	}
	issuer := cfg.Issuer
	if u, err := url.Parse(cfg.Issuer); err == nil && u.Host != "" {
		issuer = u.Host
	}
	// A guess at a six-digit code, three time steps accepted, wins three
	// times in a million. Five free guesses, then a wait doubling up to an
	// hour: under 9,000 guesses a year, below a 3 % chance, by someone who
	// holds the password already, each failure in the audit log.
	guard := &factors.Guard{Attempts: &ratelimit.Backoff{Counter: store, Free: 5, Base: time.Second, Max: time.Hour, Now: now}}
	// WebAuthn scopes passkeys to a domain (the RP ID): a server whose
	// issuer names an IP address offers none.
	var passkeys *factors.Passkeys
	if u, err := url.Parse(cfg.Issuer); err == nil && net.ParseIP(u.Hostname()) == nil {
		if passkeys, err = factors.NewPasskeys(store, sealer, cfg.Issuer, pages.Product, now); err != nil {
			return err
		}
	} else {
		log.InfoContext(ctx, "passkeys are off: the issuer names an IP address, which WebAuthn does not accept as relying party id", "issuer", cfg.Issuer)
	}
	h := &security.Handler{Passkeys: passkeys, Issuer: cfg.Issuer, Store: store, Sessions: sessions, UI: pages, Audit: auditLog, Log: log, Password: pw, Now: now,
		TOTP:     &factors.TOTP{Store: store, Sealer: sealer, Guard: guard, Issuer: issuer, Now: now},
		Recovery: &factors.Recovery{Store: store, Guard: guard, Now: now},
		Reauth:   &ratelimit.Backoff{Counter: store, Free: 5, Base: time.Second, Max: 15 * time.Minute, Now: now},
		Logouts:  logouts,
	}
	h.Register(mux)
	return nil
}

// contentPolicy is the Content-Security-Policy of a response: no script
// at all, but on the two pages that call the browser's WebAuthn API (the
// login form and the Security page), which load one script file from this
// server and talk to this server only. Inline script stays forbidden
// everywhere.
func contentPolicy(path string) string {
	const base = "default-src 'none'; style-src 'self'; img-src 'self' data: https:; frame-ancestors 'none'; base-uri 'none'"
	if path == "/login" || strings.HasPrefix(path, "/account/security") {
		return base + "; script-src 'self'; connect-src 'self'"
	}
	return base
}
