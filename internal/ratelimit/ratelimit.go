// Package ratelimit throttles abuse: repeated failures of one key (a login
// name, an IP address, a client id) earn an exponentially growing wait.
//
// The counters are in memory, per node.
package ratelimit

import (
	"sync"
	"time"
)

// Backoff counts failures per key. After Free failures, each further failure
// doubles the wait before the key may try again, from Base up to Max. A
// success resets the key.
type Backoff struct {
	Free int
	Base time.Duration
	Max  time.Duration
	Now  func() time.Time

	mu    sync.Mutex
	state map[string]*entry
	swept time.Time
}

type entry struct {
	failures int
	until    time.Time // no tries before this
	last     time.Time
}

// NewBackoff returns a Backoff on the given clock.
func NewBackoff(free int, base, max time.Duration, now func() time.Time) *Backoff {
	return &Backoff{Free: free, Base: base, Max: max, Now: now, state: map[string]*entry{}}
}

// Wait returns how long key must still wait; zero means it may try now.
func (b *Backoff) Wait(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	e, ok := b.state[key]
	if !ok {
		return 0
	}
	if d := e.until.Sub(b.Now()); d > 0 {
		return d
	}
	return 0
}

// Fail records a failure of key and returns the wait it now has.
func (b *Backoff) Fail(key string) time.Duration {
	b.mu.Lock()
	defer b.mu.Unlock()
	now := b.Now()
	b.sweep(now)
	e, ok := b.state[key]
	if !ok {
		e = &entry{}
		b.state[key] = e
	}
	e.failures++
	e.last = now
	if over := e.failures - b.Free; over > 0 {
		d := b.Base << min(over-1, 30)
		if d > b.Max || d <= 0 {
			d = b.Max
		}
		e.until = now.Add(d)
		return d
	}
	return 0
}

// Reset forgets key's failures.
func (b *Backoff) Reset(key string) {
	b.mu.Lock()
	defer b.mu.Unlock()
	delete(b.state, key)
}

// sweep drops keys idle longer than Max, at most once a minute.
func (b *Backoff) sweep(now time.Time) {
	if now.Sub(b.swept) < time.Minute {
		return
	}
	b.swept = now
	for k, e := range b.state {
		if now.Sub(e.last) > b.Max && now.After(e.until) {
			delete(b.state, k)
		}
	}
}

// RetrySeconds is d as the whole seconds a Retry-After header carries
// (RFC 9110 §10.2.3), rounded up so that a retry is never early.
func RetrySeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
