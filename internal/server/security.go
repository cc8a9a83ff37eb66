package server

import (
	"context"
	"crypto/rand"
	"fmt"
	"log/slog"
	"net"
	"net/url"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/console"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/security"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
	"github.com/bawwab/bawwab/internal/upstream"
)

// newSecurity builds the second factors, the Security page, and the
// sign-in pipeline: the password, a passkey or an upstream identity
// provider (its requests sent through fetch), then a second factor where
// the policy (policyOf) wants one.
func newSecurity(ctx context.Context, cfg config.Config, store storage.Storage, sessions *session.Manager, pages *ui.UI, auditLog *audit.Log,
	log *slog.Logger, pw password.Params, logouts *backchannel.Notifier, now func() time.Time, userFailures, ipFailures *ratelimit.Backoff,
	fetch *outbound.Client,
) (*security.Handler, *signin.Pipeline, error) {
	sealer, err := factors.StoreSealer(ctx, store)
	if err != nil {
		return nil, nil, fmt.Errorf("factor sealer: %w", err)
	}
	progressKey, err := store.Secret(ctx, "signin-progress", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, nil, fmt.Errorf("sign-in progress key: %w", err)
	}
	issuer := factors.IssuerName(cfg.Issuer)
	// A guess at a six-digit code, three time steps accepted, wins three
	// times in a million. Five free guesses, then a wait doubling up to an
	// hour: under 9,000 guesses a year, below a 3 % chance, by someone who
	// holds the password already, each failure in the audit log.
	guard := &factors.Guard{Attempts: &ratelimit.Backoff{Counter: store, Free: 5, Base: time.Second, Max: time.Hour, Now: now}}
	passkeys, err := newPasskeys(ctx, cfg, store, sealer, pages, log, now)
	if err != nil {
		return nil, nil, err
	}
	h := &security.Handler{Passkeys: passkeys, Issuer: cfg.Issuer, Store: store, Sessions: sessions, UI: pages, Audit: auditLog, Log: log,
		Password: pw, Now: now,
		TOTP:     &factors.TOTP{Store: store, Sealer: sealer, Guard: guard, Issuer: issuer, Now: now},
		Recovery: &factors.Recovery{Store: store, Guard: guard, Now: now},
		Reauth:   &ratelimit.Backoff{Counter: store, Free: 5, Base: time.Second, Max: 15 * time.Minute, Now: now},
		Logouts:  logouts,
	}
	totp := &security.TOTPStep{TOTP: h.TOTP, Recovery: h.Recovery, UI: pages, Sessions: sessions, Audit: auditLog}
	pipeline := &signin.Pipeline{Now: now, Policy: policyOf(cfg), Enrolment: store.Enrolment,
		Progress: &signin.CookieProgress{Key: progressKey, Secure: strings.HasPrefix(cfg.Issuer, "https://"), TTL: 10 * time.Minute, Now: now, Users: store},
		Steps: []signin.Step{
			&signin.Password{Store: store, UI: pages, Audit: auditLog, Params: pw, UserFailures: userFailures, IPFailures: ipFailures},
			&security.PasskeyStep{TOTPStep: *totp, Passkeys: passkeys, Store: store, Issuer: cfg.Issuer},
			totp,
			&security.RecoveryStep{TOTPStep: *totp, Store: store},
		}}
	upstreams, err := newUpstreams(ctx, cfg, store, pages, auditLog, log, fetch, now)
	if err != nil {
		return nil, nil, err
	}
	upstreams.Logouts = logouts
	pipeline.More, pipeline.Finished = upstreams.Steps, upstreams.Finished
	h.Upstreams = upstreams
	return h, pipeline, nil
}

// policyOf is the sign-in policy the settings describe: second_factor
// (off, enrolled or required) and second_factor_scopes. Under every
// setting a client's own second_factor flag, acr_values, an essential acr
// claim and max_age still count, and the account pages ask an enrolled
// second factor (package signin).
//
// The admin console asks a second factor of every admin who set one up,
// or of every admin (console_second_factor), whatever second_factor says.
func policyOf(cfg config.Config) signin.Policy {
	p := signin.Policy{
		SecondFactor:    cfg.SecondFactor == "required",
		AskEnrolled:     cfg.SecondFactor != "off",
		SensitiveScopes: cfg.SecondFactorScopes,
		EnrolledClients: []string{console.ClientID},
	}
	if cfg.ConsoleSecondFactor == console.SecondFactorRequired {
		p.SecondFactorClients = []string{console.ClientID}
	}
	return p
}

// newPasskeys configures passkeys for the issuer's host. WebAuthn scopes
// passkeys to a domain (the RP ID): a server whose issuer names an IP
// address offers none.
func newPasskeys(ctx context.Context, cfg config.Config, store storage.Storage, sealer *factors.Sealer, pages *ui.UI, log *slog.Logger,
	now func() time.Time) (*factors.Passkeys, error) {
	if !passkeysOn(cfg) {
		log.InfoContext(ctx, "passkeys are off: the issuer names an IP address, which WebAuthn does not accept as relying party id", "issuer", cfg.Issuer)
		return nil, nil
	}
	return factors.NewPasskeys(store, sealer, cfg.Issuer, pages.Product, now)
}

// passkeysOn reports whether the server offers passkeys: its issuer names
// a host, not an IP address (WebAuthn's relying party id is a domain).
func passkeysOn(cfg config.Config) bool {
	u, err := url.Parse(cfg.Issuer)
	return err == nil && net.ParseIP(u.Hostname()) == nil
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

// upstreamTTL is how long a node keeps the list of upstreams before
// reading the store again.
const upstreamTTL = 2 * time.Second

// newUpstreams builds sign-in through the configured upstream identity
// providers (package upstream): their requests go through outbound's
// checks, their state through cookies sealed under a key of their own.
func newUpstreams(ctx context.Context, cfg config.Config, store storage.Storage, pages *ui.UI, auditLog *audit.Log, log *slog.Logger,
	fetch *outbound.Client, now func() time.Time) (*upstream.Flow, error) {
	material, err := store.Secret(ctx, "upstream-seal", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, fmt.Errorf("upstream sealer: %w", err)
	}
	sealer, err := clientauth.NewSealer(material)
	if err != nil {
		return nil, fmt.Errorf("upstream sealer: %w", err)
	}
	secrets, err := upstream.SecretSealer(ctx, store)
	if err != nil {
		return nil, fmt.Errorf("upstream secret sealer: %w", err)
	}
	// The login page reads the upstreams an operator changed through the
	// admin API, on any node, within upstreamTTL.
	registry := &upstream.Registry{Static: cfg.Upstreams, Store: store, Sealer: secrets, Base: cfg.Issuer, HTTP: fetch.HTTPClient(),
		Now: now, TTL: upstreamTTL, Log: log}
	return &upstream.Flow{Registry: registry, Store: store, Sealer: sealer, UI: pages, Audit: auditLog, Log: log, Now: now,
		Secure: strings.HasPrefix(cfg.Issuer, "https://"), TTL: 10 * time.Minute}, nil
}
