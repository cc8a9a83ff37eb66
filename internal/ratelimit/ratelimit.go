// Package ratelimit throttles guessing: the attempts of one key (a login
// name, a client network, a client id) beyond a free budget earn an
// exponentially growing wait.
//
// An attempt is counted before the secret is checked, never after: a
// caller Reserves an attempt, checks the secret only when the reservation
// is granted, and then ends the attempt as failed, succeeded or released.
// Checking first and counting afterwards lets every request of a parallel
// burst pass the check while none of them is counted yet: a throttle of
// online guessing (RFC 6819 §4.4.3.6) that a burst walks through is none.
//
// The policy (Backoff) is separate from the counting (Counter). bawwab
// counts in its store, so that every node behind one database throttles the
// same attacker.
package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Counter counts attempts and failures per key. storage.Storage is a
// Counter; the methods are documented there.
type Counter interface {
	ReserveAttempt(ctx context.Context, key string, now time.Time, t storage.Throttle) (int, time.Duration, error)
	EndAttempt(ctx context.Context, key string, o storage.Outcome) error
	AddFailure(ctx context.Context, key string, at, expiresAt time.Time) (int, error)
	Failures(ctx context.Context, key string, now time.Time) (int, time.Time, error)
	ResetFailures(ctx context.Context, key string) error
}

// Backoff throttles the attempts of each key. The first Free may be made
// at once, including at the same time; after that, each attempt must wait
// Base after the one before, the wait doubling with each further attempt
// up to Max (storage.Throttle). Attempts in flight count as failures until
// they end. A success forgets the key's failures; so does Max without an
// attempt.
//
// With Fresh zero, every attempt is counted in the Counter first, in one
// atomic step (Counter.ReserveAttempt): the budget holds exactly across
// any number of nodes sharing the store, at the price of two store writes
// an attempt. That suits logins, which cost an argon2id hash anyway.
//
// With Fresh positive, a key whose failures this node read from the Counter
// within Fresh is decided in process: attempts in flight are counted in
// memory, under one lock, and only failures are written to the Counter.
// A key with no failures then costs no store round trip, which suits client
// authentication on every token request. The budget still holds exactly on
// each node (concurrent attempts beyond it wait for those in flight to
// end); failures on other nodes are seen within Fresh, so N nodes may
// together let through up to N×Free attempts before all of them throttle
// the key, and one more each per wait after that.
type Backoff struct {
	Counter Counter
	Free    int
	Base    time.Duration
	Max     time.Duration
	Now     func() time.Time
	// Fresh is how long this node trusts the failures it read of a key;
	// zero counts every attempt in the Counter.
	Fresh time.Duration

	mu   sync.Mutex
	keys map[string]*entry // Fresh > 0: this node's view of each key
}

// entry is this node's view of a key, when Fresh > 0. Guarded by Backoff.mu.
type entry struct {
	failures int       // failures counted (read from the Counter, plus this node's since)
	last     time.Time // of the latest failure, or attempt let through after a wait
	inFlight int       // attempts let through and not yet ended
	readAt   time.Time // when failures was read from the Counter; zero before
	reading  bool      // a read is under way
	writes   int       // writes to the Counter under way
	changes  int       // counts local changes, so that a read that overlaps one is not applied
	wake     chan struct{}
}

// waiter returns a channel closed at e's next change.
func (e *entry) waiter() <-chan struct{} {
	if e.wake == nil {
		e.wake = make(chan struct{})
	}
	return e.wake
}

// changed wakes those waiting for a change of e.
func (e *entry) changed() {
	if e.wake != nil {
		close(e.wake)
		e.wake = nil
	}
}

// begin and end bracket a write of e's failures to the Counter.
func (e *entry) begin() {
	e.writes++
	e.changes++
	e.changed()
}

func (e *entry) end() {
	e.writes--
	e.changes++
	e.changed()
}

func (e *entry) idle() bool { return e.inFlight == 0 && e.writes == 0 && !e.reading && e.wake == nil }

// entryLimit bounds the keys a node keeps in memory; past it, keys with
// nothing in flight are forgotten (and read again from the Counter).
const entryLimit = 100_000

// keyLimit bounds stored keys: longer ones (a megabyte-long user name, say)
// are stored as their hash, and so are keys that are not valid UTF-8 or
// hold NUL, which a database's text column may refuse.
const keyLimit = 128

func storedKey(key string) string {
	if len(key) <= keyLimit && storage.ValidText(key) {
		return key
	}
	return "sha256:" + storage.Hash(key)
}

// Reset forgets the stored count of key: an operator lifting the throttle
// of an account. Every Backoff that counts in c with Fresh zero sees it at
// once; one with Fresh positive within Fresh.
func Reset(ctx context.Context, c Counter, key string) error {
	return c.ResetFailures(ctx, storedKey(key))
}

func (b *Backoff) policy() storage.Throttle {
	return storage.Throttle{Free: b.Free, Base: b.Base, Max: b.Max}
}

// Attempt is one attempt of a key that Reserve let through. End it with
// exactly one of Fail, Succeed or Release; later calls do nothing, so a
// deferred Release is a safe guard for paths that end it otherwise. Ending
// writes to the store even when ctx was cancelled: a client that hangs up
// after its guess was checked is still counted.
type Attempt struct {
	b     *Backoff
	key   string
	count int    // Fresh zero: the count the Counter gave this attempt
	e     *entry // Fresh positive
	ended bool
}

// Reserve counts an attempt of key before it is made. It returns the
// attempt, or, when the key must wait, nil and how long. With Fresh
// positive it may block until attempts in flight end, or ctx does.
func (b *Backoff) Reserve(ctx context.Context, key string) (*Attempt, time.Duration, error) {
	key = storedKey(key)
	if b.Fresh <= 0 {
		return b.reserveStored(ctx, key)
	}
	for {
		now := b.Now()
		b.mu.Lock()
		e := b.entry(key)
		stale := e.readAt.IsZero() || now.Sub(e.readAt) >= b.Fresh
		if stale && !e.reading {
			if err := b.read(ctx, key, e, now); err != nil {
				return nil, 0, err
			}
			continue
		}
		// As in the store, attempts in flight count as failures.
		wait := e.last.Add(b.policy().Delay(e.failures + e.inFlight)).Sub(now)
		switch {
		case e.readAt.IsZero():
			// The first read is under way: wait for it.
		case e.failures+e.inFlight < b.Free:
			e.inFlight++
			b.mu.Unlock()
			return &Attempt{b: b, key: key, e: e}, 0, nil
		case e.failures < b.Free:
			// The budget is taken by attempts in flight, which may yet
			// succeed: wait for one to end rather than refuse.
		case wait <= 0:
			e.inFlight++
			e.last = now
			b.mu.Unlock()
			return &Attempt{b: b, key: key, e: e}, 0, nil
		default:
			b.mu.Unlock()
			return nil, wait, nil
		}
		changed := e.waiter()
		b.mu.Unlock()
		select {
		case <-changed:
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
	}
}

// busyLimit bounds how long an attempt waits for others in flight to end
// when counted in the store; beyond it, it is refused with a wait of Base.
// Attempts in flight end within an argon2id hash or so, unless the node
// running them died: then they stay counted until the key expires, and
// the key is let through once per wait.
const busyLimit = 5 * time.Second

// reserveStored reserves an attempt in the Counter. While the attempts in
// flight fill the budget, it asks again, more slowly each time: on another
// node, they end unseen.
func (b *Backoff) reserveStored(ctx context.Context, key string) (*Attempt, time.Duration, error) {
	pause, deadline := 5*time.Millisecond, time.Now().Add(busyLimit)
	for {
		n, wait, err := b.Counter.ReserveAttempt(ctx, key, b.Now(), b.policy())
		switch {
		case err != nil || wait > 0:
			return nil, wait, err
		case n > 0:
			return &Attempt{b: b, key: key, count: n}, 0, nil
		case time.Now().After(deadline):
			return nil, b.Base, nil
		}
		select {
		case <-time.After(pause):
		case <-ctx.Done():
			return nil, 0, ctx.Err()
		}
		pause = min(2*pause, 100*time.Millisecond)
	}
}

// read refreshes e from the Counter. Called with b.mu held; returns with
// it released.
func (b *Backoff) read(ctx context.Context, key string, e *entry, now time.Time) error {
	e.reading = true
	before := e.changes
	b.mu.Unlock()
	n, last, err := b.Counter.Failures(ctx, key, now)
	b.mu.Lock()
	defer b.mu.Unlock()
	e.reading = false
	e.changed()
	if err != nil {
		return err
	}
	if e.changes == before && e.writes == 0 {
		e.failures, e.readAt = n, now
		if last.After(e.last) {
			e.last = last
		}
	}
	return nil
}

// entry returns key's entry, making it. Called with b.mu held.
func (b *Backoff) entry(key string) *entry {
	if e, ok := b.keys[key]; ok {
		return e
	}
	if b.keys == nil {
		b.keys = map[string]*entry{}
	}
	if len(b.keys) >= entryLimit {
		for k, e := range b.keys {
			if e.idle() {
				delete(b.keys, k)
			}
		}
	}
	e := &entry{}
	b.keys[key] = e
	return e
}

// Fail ends the attempt as a failure and returns how long the key must
// now wait.
func (a *Attempt) Fail(ctx context.Context) (time.Duration, error) {
	if a == nil || a.ended {
		return 0, nil
	}
	a.ended = true
	b, ctx := a.b, context.WithoutCancel(ctx)
	if a.e == nil {
		return b.policy().Delay(a.count), b.Counter.EndAttempt(ctx, a.key, storage.AttemptFailed)
	}
	now := b.Now()
	b.mu.Lock()
	e := a.e
	e.inFlight--
	e.failures++
	e.last = now
	e.begin()
	b.mu.Unlock()
	n, err := b.Counter.AddFailure(ctx, a.key, now, now.Add(b.Max))
	b.mu.Lock()
	defer b.mu.Unlock()
	e.end()
	if err == nil && n > e.failures {
		e.failures = n
	}
	return b.policy().Delay(e.failures), err
}

// Succeed ends the attempt as a success: the key's failures are forgotten.
func (a *Attempt) Succeed(ctx context.Context) error {
	if a == nil || a.ended {
		return nil
	}
	a.ended = true
	b, ctx := a.b, context.WithoutCancel(ctx)
	if a.e == nil {
		return b.Counter.EndAttempt(ctx, a.key, storage.AttemptSucceeded)
	}
	b.mu.Lock()
	e := a.e
	e.inFlight--
	if e.failures == 0 {
		e.changed()
		b.mu.Unlock()
		return nil // a key known clean costs nothing
	}
	e.failures, e.last = 0, time.Time{}
	e.begin()
	b.mu.Unlock()
	err := b.Counter.ResetFailures(ctx, a.key)
	b.mu.Lock()
	e.end()
	b.mu.Unlock()
	return err
}

// Release ends the attempt without counting it: it decided nothing about
// the key (another key was throttled, the store failed, or it succeeded
// for a key whose failures a success must not clear, such as an address).
func (a *Attempt) Release(ctx context.Context) error {
	if a == nil || a.ended {
		return nil
	}
	a.ended = true
	b := a.b
	if a.e == nil {
		return b.Counter.EndAttempt(context.WithoutCancel(ctx), a.key, storage.AttemptReleased)
	}
	b.mu.Lock()
	a.e.inFlight--
	a.e.changed()
	b.mu.Unlock()
	return nil
}

// RetrySeconds is d as the whole seconds a Retry-After header carries
// (RFC 9110 §10.2.3), rounded up so that a retry is never early.
func RetrySeconds(d time.Duration) int {
	return int((d + time.Second - 1) / time.Second)
}
