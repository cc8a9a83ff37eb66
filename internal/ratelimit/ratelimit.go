// Package ratelimit throttles abuse: repeated failures of one key (a login
// name, an IP address, a client id) earn an exponentially growing wait.
//
// The policy (Backoff) is separate from the counting (Counter). bawwab
// counts in its store, so that every node behind one database throttles the
// same attacker; Memory counts in process for one node.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Counter counts failures per key. storage.Storage is a Counter.
type Counter interface {
	// AddFailure counts a failure at the given time, keeps the counter
	// until expiresAt, and returns the count.
	AddFailure(ctx context.Context, key string, at, expiresAt time.Time) (int, error)
	// Failures returns the live count and the time of the last failure.
	Failures(ctx context.Context, key string, now time.Time) (int, time.Time, error)
	ResetFailures(ctx context.Context, key string) error
}

// Backoff throttles by failure count. After Free failures, each further
// failure doubles the wait before the key may try again, from Base up to
// Max. A success resets the key; so does Max without a failure.
type Backoff struct {
	Counter Counter
	Free    int
	Base    time.Duration
	Max     time.Duration
	Now     func() time.Time
	// Fresh is how long a key the Counter showed without failures is
	// trusted without asking again, so that well-behaved callers cost no
	// store round trip. A failure on this node forgets the key at once;
	// failures on other nodes are seen within Fresh, so an attacker spread
	// over N nodes gains at most N tries per Fresh. Zero asks every time.
	Fresh time.Duration

	mu    sync.Mutex
	clean map[string]time.Time // key → when the Counter showed no failures
}

// cleanLimit bounds the clean-key cache; past it the cache starts over.
const cleanLimit = 100_000

func (b *Backoff) isClean(key string, now time.Time) bool {
	if b.Fresh <= 0 {
		return false
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	at, ok := b.clean[key]
	return ok && now.Sub(at) < b.Fresh
}

func (b *Backoff) setClean(key string, now time.Time, clean bool) {
	if b.Fresh <= 0 {
		return
	}
	b.mu.Lock()
	defer b.mu.Unlock()
	if !clean {
		delete(b.clean, key)
		return
	}
	if b.clean == nil || len(b.clean) >= cleanLimit {
		b.clean = map[string]time.Time{}
	}
	b.clean[key] = now
}

// keyLimit bounds stored keys: longer ones (a megabyte-long user name, say)
// are stored as their hash.
const keyLimit = 128

func storedKey(key string) string {
	if len(key) <= keyLimit {
		return key
	}
	return "sha256:" + storage.Hash(key)
}

// Wait returns how long key must still wait; zero means it may try now.
func (b *Backoff) Wait(ctx context.Context, key string) (time.Duration, error) {
	now := b.Now()
	if b.isClean(key, now) {
		return 0, nil
	}
	n, last, err := b.Counter.Failures(ctx, storedKey(key), now)
	if err != nil {
		return 0, err
	}
	b.setClean(key, now, n == 0)
	return max(last.Add(b.delay(n)).Sub(now), 0), nil
}

// Fail records a failure of key and returns the wait it now has.
func (b *Backoff) Fail(ctx context.Context, key string) (time.Duration, error) {
	now := b.Now()
	b.setClean(key, now, false)
	n, err := b.Counter.AddFailure(ctx, storedKey(key), now, now.Add(b.Max))
	if err != nil {
		return 0, err
	}
	return b.delay(n), nil
}

// Reset forgets key's failures. A key known clean costs nothing.
func (b *Backoff) Reset(ctx context.Context, key string) error {
	now := b.Now()
	if b.isClean(key, now) {
		return nil
	}
	if err := b.Counter.ResetFailures(ctx, storedKey(key)); err != nil {
		return err
	}
	b.setClean(key, now, true)
	return nil
}

// delay is the wait after n failures.
func (b *Backoff) delay(n int) time.Duration {
	over := n - b.Free
	if over <= 0 {
		return 0
	}
	d := b.Base << min(over-1, 30)
	if d > b.Max || d <= 0 {
		d = b.Max
	}
	return d
}

// RetrySeconds is d as the whole seconds a Retry-After header carries
// (RFC 9110 §10.2.3), rounded up so that a retry is never early.
func RetrySeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}

// Memory is a Counter in process memory: one node's view only.
type Memory struct {
	mu    sync.Mutex
	state map[string]memoryEntry
	swept time.Time
}

type memoryEntry struct {
	count     int
	last      time.Time
	expiresAt time.Time
}

func (m *Memory) AddFailure(_ context.Context, key string, at, expiresAt time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	if m.state == nil {
		m.state = map[string]memoryEntry{}
	}
	m.sweep(at)
	e := m.state[key]
	if e.expiresAt.Before(at) {
		e = memoryEntry{}
	}
	e.count++
	e.last, e.expiresAt = at, expiresAt
	m.state[key] = e
	return e.count, nil
}

func (m *Memory) Failures(_ context.Context, key string, now time.Time) (int, time.Time, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.state[key]
	if !ok || e.expiresAt.Before(now) {
		return 0, time.Time{}, nil
	}
	return e.count, e.last, nil
}

func (m *Memory) ResetFailures(_ context.Context, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	delete(m.state, key)
	return nil
}

// sweep drops expired keys, at most once a minute.
func (m *Memory) sweep(now time.Time) {
	if now.Sub(m.swept) < time.Minute {
		return
	}
	m.swept = now
	for k, e := range m.state {
		if e.expiresAt.Before(now) {
			delete(m.state, k)
		}
	}
}
