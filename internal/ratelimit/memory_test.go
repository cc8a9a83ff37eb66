package ratelimit

import (
	"context"
	"sync"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Memory is a Counter in process memory: one node's view only. The tests
// run the throttles on it beside the store's Counter.
type Memory struct {
	mu    sync.Mutex
	state map[string]memoryEntry
	swept time.Time
}

type memoryEntry struct {
	count, pending int
	last           time.Time
	expiresAt      time.Time
}

// live returns key's entry, empty when it expired before now.
func (m *Memory) live(key string, now time.Time) memoryEntry {
	if m.state == nil {
		m.state = map[string]memoryEntry{}
	}
	m.sweep(now)
	e := m.state[key]
	if e.expiresAt.Before(now) {
		return memoryEntry{}
	}
	return e
}

func (m *Memory) ReserveAttempt(_ context.Context, key string, now time.Time, t storage.Throttle) (int, time.Duration, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.live(key, now)
	if wait := e.last.Add(t.Delay(e.count)).Sub(now); e.count > 0 && wait > 0 {
		if e.count-e.pending < t.Free {
			return 0, 0, nil // attempts in flight fill the budget
		}
		return 0, wait, nil
	}
	e.count++
	e.pending++
	e.last, e.expiresAt = now, now.Add(t.Max)
	m.state[key] = e
	return e.count, 0, nil
}

func (m *Memory) EndAttempt(_ context.Context, key string, o storage.Outcome) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	e, ok := m.state[key]
	if !ok || e.pending == 0 {
		return nil
	}
	switch o {
	case storage.AttemptSucceeded:
		e.count = e.pending - 1
	case storage.AttemptReleased:
		e.count--
	}
	e.pending--
	m.state[key] = e
	return nil
}

func (m *Memory) AddFailure(_ context.Context, key string, at, expiresAt time.Time) (int, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	e := m.live(key, at)
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
