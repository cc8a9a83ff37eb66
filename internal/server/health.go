package server

import (
	"cmp"
	"context"
	"net/http"
	"os"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/storage"
)

// probeInterval is how often the store is asked to commit a probe row.
const probeInterval = 2 * time.Second

// health remembers whether the store commits: a background probe writes a
// row every probeInterval, and /readyz answers from the last result, so
// that readiness sees writes that fail (disk full, read-only file system,
// a database that went standby) without a write per probe request.
type health struct {
	store storage.Storage
	node  string
	now   func() time.Time
	log   logger
	// onProbe, when not nil, is told each probe's outcome (metrics).
	onProbe func(ok bool)

	probing sync.Mutex // held while a probe runs
	mu      sync.Mutex
	at      time.Time // when the last probe ended; zero before the first
	err     error     // its result
}

// logger is the part of *slog.Logger health uses.
type logger interface {
	ErrorContext(ctx context.Context, msg string, args ...any)
	InfoContext(ctx context.Context, msg string, args ...any)
}

func newHealth(store storage.Storage, log logger, now func() time.Time) *health {
	host, _ := os.Hostname()
	return &health{store: store, node: cmp.Or(host, "node"), now: now, log: log}
}

// probe commits the probe row once and records the result, logging each
// change between healthy and failing. A probe already running is not
// doubled.
func (h *health) probe(ctx context.Context) {
	if !h.probing.TryLock() {
		return
	}
	defer h.probing.Unlock()
	pctx, cancel := context.WithTimeout(ctx, probeInterval)
	defer cancel()
	err := h.store.Ping(pctx, h.node, h.now())
	if ctx.Err() != nil {
		return // shutting down: not the store's fault
	}
	if h.onProbe != nil {
		h.onProbe(err == nil)
	}
	h.mu.Lock()
	was, first := h.err, h.at.IsZero()
	h.at, h.err = time.Now(), err
	h.mu.Unlock()
	switch {
	case err != nil && (was == nil || first):
		h.log.ErrorContext(ctx, "store cannot commit: not ready", "err", err)
	case err == nil && was != nil:
		h.log.InfoContext(ctx, "store commits again: ready")
	}
}

// status returns the last probe's result. When no probe ran for three
// intervals (the background loop is not running, or the probe hangs), it
// probes now.
func (h *health) status(ctx context.Context) error {
	h.mu.Lock()
	stale := time.Since(h.at) > 3*probeInterval
	h.mu.Unlock()
	if stale {
		h.probe(ctx)
	}
	h.mu.Lock()
	defer h.mu.Unlock()
	if time.Since(h.at) > 3*probeInterval {
		return context.DeadlineExceeded // the probe hangs
	}
	return h.err
}

// ready answers /readyz: 200 when the store answers a read now (this
// node's last probe, Storage.LastPing), committed the last write probe,
// and a signing key is loaded; 503 otherwise.
func ready(h *health, keys *jwks.Manager) http.HandlerFunc {
	return func(w http.ResponseWriter, r *http.Request) {
		ctx, cancel := context.WithTimeout(r.Context(), probeInterval)
		defer cancel()
		_, err := h.store.LastPing(ctx, h.node)
		switch {
		case err != nil:
			w.Header().Set("Retry-After", "2")
			http.Error(w, "store unreachable", http.StatusServiceUnavailable)
		case h.status(ctx) != nil:
			w.Header().Set("Retry-After", "2")
			http.Error(w, "store cannot commit", http.StatusServiceUnavailable)
		case keys.ActiveKID() == "":
			http.Error(w, "no signing key", http.StatusServiceUnavailable)
		default:
			_, _ = w.Write([]byte("ready\n"))
		}
	}
}
