package metrics

import (
	"slices"
	"testing"
	"time"
)

// TestHistory: counts land in their minute; a minute's slot is emptied
// when the ring comes round to it a day later; the series the console
// draws are counted at the same calls as their Prometheus counters.
func TestHistory(t *testing.T) {
	now := time.Date(2026, 1, 2, 10, 30, 15, 0, time.UTC)
	m := New(func() time.Time { return now })
	m.TokenIssued("authorization_code")
	m.AuditEvent("login", false)
	m.AuditEvent("login_failed", false)
	m.AuditEvent("code_replay", true)
	now = now.Add(2 * time.Minute)
	m.TokenIssued("refresh_token")
	m.TokenIssued("client_credentials")
	m.AuditEvent("consent", false)

	cases := []struct {
		name    string
		series  int
		minutes int
		want    []int
	}{
		{"tokens", Tokens, 4, []int{0, 1, 0, 2}},
		{"logins", Logins, 3, []int{1, 0, 0}},
		{"failures", Failures, 3, []int{1, 0, 0}},
		{"attacks", Attacks, 3, []int{1, 0, 0}},
		{"no minutes", Tokens, 0, []int{}},
		{"no such series", 99, 2, []int{0, 0}},
	}
	for _, c := range cases {
		if got := m.Recent.PerMinute(c.series, c.minutes); !slices.Equal(got, c.want) {
			t.Errorf("%s: %v, want %v", c.name, got, c.want)
		}
	}
	if got := m.Recent.PerMinute(Tokens, 5*HistoryMinutes); len(got) != HistoryMinutes {
		t.Errorf("history longer than a day: %d minutes", len(got))
	}
	// A day later, the same slots hold the new day's minutes only.
	now = now.Add(24 * time.Hour)
	m.TokenIssued("authorization_code")
	if got := m.Recent.PerMinute(Tokens, 3); !slices.Equal(got, []int{0, 0, 1}) {
		t.Errorf("a day later: %v, want the old counts gone", got)
	}
	if got := m.Recent.PerMinute(Tokens, HistoryMinutes); sum(got) != 1 {
		t.Errorf("a day later the day holds %d tokens, want 1", sum(got))
	}
}

func sum(l []int) (n int) {
	for _, v := range l {
		n += v
	}
	return n
}
