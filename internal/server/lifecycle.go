package server

import (
	"context"
	"errors"
	"net"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// deliveryGrace bounds the wait for back-channel logout deliveries at
// shutdown; each delivery has a timeout of its own a little shorter.
const deliveryGrace = 6 * time.Second

// adminConnections caps the admin API's open connections.
const adminConnections = 32

// Run serves the public listener and, when admin is not nil, the admin
// API, and runs the background jobs (key and scope reload, the readiness
// probe, pruning), until ctx ends. It then shuts down in order:
//
//  1. both listeners stop accepting, and requests in flight finish (for
//     up to ShutdownTimeout);
//  2. the background jobs stop and are waited for;
//  3. back-channel logout deliveries still running are waited for, for a
//     bounded time.
//
// Only then does it return, so that the caller closes the store last and
// nothing uses it after. The public listener is capped at MaxConnections
// (see LimitListener); if either listener fails, both stop.
func (s *Server) Run(ctx context.Context, public, admin net.Listener) error {
	jobs, stopJobs := context.WithCancel(context.WithoutCancel(ctx))
	var wg sync.WaitGroup
	start := func(interval time.Duration, fn func(context.Context)) {
		wg.Add(1)
		go func() { defer wg.Done(); every(jobs, interval, fn) }()
	}
	// Keys rotated on another node reach this one within the reload interval.
	start(30*time.Second, func(ctx context.Context) {
		if err := s.Keys.Reload(ctx); err != nil && ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "reload signing keys", "err", err)
		}
	})
	// Scopes edited on another node, likewise.
	start(30*time.Second, func(ctx context.Context) {
		if err := scope.Load(ctx, s.Store, s.Scopes); err != nil && ctx.Err() == nil {
			s.Log.ErrorContext(ctx, "reload scopes", "err", err)
		}
	})
	start(probeInterval, s.health.probe)
	start(s.Config.PruneInterval, s.prune)
	wg.Go(func() { s.mailer.Run(jobs) })

	serving, stop := context.WithCancel(ctx)
	defer stop()
	grace := s.Config.ShutdownTimeout
	errc := make(chan error, 2)
	n := 1
	go func() {
		errc <- serveUntil(serving, HTTPServer(s.handler, s.Log), LimitListener(public, s.MaxConnections(), s.Log, s.metrics.ConnectionShed), grace)
	}()
	if admin != nil {
		n++
		go func() {
			errc <- serveUntil(serving, HTTPServer(s.admin, s.Log), s.adminListener(LimitListener(admin, adminConnections, s.Log, s.metrics.ConnectionShed)), grace)
		}()
	}
	var err error
	for range n {
		err = errors.Join(err, <-errc)
		stop() // one listener ended: end the other
	}
	stopJobs()
	wg.Wait()
	dctx, cancel := context.WithTimeout(context.Background(), deliveryGrace)
	defer cancel()
	if werr := s.accounts.Wait(dctx); werr != nil {
		s.Log.Warn("shutdown: password reset requests still running were abandoned", "err", werr)
	}
	if werr := s.logouts.Wait(dctx); werr != nil {
		s.Log.Warn("shutdown: back-channel logout deliveries still running were abandoned", "err", werr)
	}
	return err
}

// prune deletes ended rows (package storage, Prune): expired ones, rotated
// refresh tokens past the reuse horizon, grants whose tokens all ended,
// audit events past retention, and initial access tokens that ended
// longer ago than that.
func (s *Server) prune(ctx context.Context) {
	cfg := s.Config
	n, err := s.Store.Prune(ctx, storage.Prune{
		Now:          s.Issuer.Now(),
		ReuseHorizon: cfg.RefreshReuseHorizon,
		// An access token is issued at most CodeTTL after its grant was
		// created, or when a refresh token was; a minute of margin.
		TokenLifetime:  cfg.AccessTokenTTL + cfg.CodeTTL + cfg.ClockLeeway + time.Minute,
		AuditRetention: cfg.AuditRetention,
	})
	s.metrics.Pruned(n)
	switch {
	case err != nil && ctx.Err() == nil:
		s.Log.ErrorContext(ctx, "prune ended rows", "err", err)
	case n > 0:
		s.Log.DebugContext(ctx, "pruned ended rows", "rows", n)
	}
}
