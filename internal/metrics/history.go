package metrics

import (
	"sync"
	"time"
)

// The series of the recent history, counted at the same calls as their
// Prometheus counters: tokens issued (bawwab_tokens_issued_total),
// sign-ins and failed sign-ins (bawwab_audit_events_total of login and
// login_failed) and detected attacks (bawwab_attacks_detected_total).
const (
	Tokens = iota
	Logins
	Failures
	Attacks
	seriesCount
)

// HistoryMinutes is how far back the history goes: a day.
const HistoryMinutes = 24 * 60

// History counts the series per minute over the last day, in memory, on
// this node: the admin console draws it. A ring of one slot a minute; a
// slot of a minute gone by is emptied when its minute comes round again.
type History struct {
	now   func() time.Time
	mu    sync.Mutex
	slots [HistoryMinutes]slot
}

type slot struct {
	minute int64 // Unix minute the counts are of
	n      [seriesCount]int
}

func newHistory(now func() time.Time) *History { return &History{now: now} }

func minuteOf(t time.Time) int64 { return t.Unix() / 60 }

func (h *History) add(series int) {
	m := minuteOf(h.now())
	h.mu.Lock()
	defer h.mu.Unlock()
	s := &h.slots[m%HistoryMinutes]
	if s.minute != m {
		*s = slot{minute: m}
	}
	s.n[series]++
}

// PerMinute returns the counts of series in each of the last minutes
// (at most HistoryMinutes), oldest first, the current minute last.
func (h *History) PerMinute(series, minutes int) []int {
	minutes = min(max(minutes, 0), HistoryMinutes)
	out := make([]int, minutes)
	if series < 0 || series >= seriesCount {
		return out
	}
	now := minuteOf(h.now())
	h.mu.Lock()
	defer h.mu.Unlock()
	for i := range out {
		m := now - int64(minutes-1-i)
		if s := h.slots[m%HistoryMinutes]; s.minute == m {
			out[i] = s.n[series]
		}
	}
	return out
}

// Now is the history's clock.
func (h *History) Now() time.Time { return h.now() }
