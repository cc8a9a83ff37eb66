package ui

import (
	"testing"
	"time"
)

// TestDates: days and times ago are written for the page's language, with
// Arabic's dual and plural.
func TestDates(t *testing.T) {
	now := time.Date(2026, 3, 5, 12, 0, 0, 0, time.UTC)
	tests := []struct {
		lang string
		ago  time.Duration
		want string
	}{
		{"en", 10 * time.Second, "just now"},
		{"en", time.Minute, "a minute ago"},
		{"en", 5 * time.Minute, "5 minutes ago"},
		{"en", 3 * time.Hour, "3 hours ago"},
		{"en", 50 * time.Hour, "on 3 March 2026"},
		{"ar", 10 * time.Second, "الآن"},
		{"ar", 2 * time.Minute, "منذ دقيقتين"},
		{"ar", 5 * time.Minute, "منذ 5 دقائق"},
		{"ar", 11 * time.Minute, "منذ 11 دقيقة"},
		{"ar", 2 * time.Hour, "منذ ساعتين"},
		{"ar", 50 * time.Hour, "في 3 مارس 2026"},
	}
	for _, tt := range tests {
		if got := Ago(tt.lang, now.Add(-tt.ago), now); got != tt.want {
			t.Errorf("Ago(%s, -%s) = %q, want %q", tt.lang, tt.ago, got, tt.want)
		}
	}
	if got := Date("en", now); got != "5 March 2026" {
		t.Errorf("Date(en) = %q", got)
	}
	if got := Date("ar", time.Date(2025, 12, 31, 23, 0, 0, 0, time.UTC)); got != "31 ديسمبر 2025" {
		t.Errorf("Date(ar) = %q", got)
	}
}
