package upstream

import (
	"strings"
	"testing"
)

func TestParseStates(t *testing.T) {
	a, b := StateCookieName("one"), StateCookieName("two")
	tests := []struct {
		name, in string
		want     int
	}{
		{"empty", "", 0},
		{"two", "fake:" + a + ":100.corp:" + b + ":200", 2},
		{"round trip", formatStates([]stateEntry{{"fake", a, 1}, {"corp", b, 2}}), 2},
		{"bad upstream id", "FAKE!:" + a + ":100", 0},
		{"not a state cookie", "fake:bawwab_session:100", 0},
		{"bad expiry", "fake:" + a + ":soon", 0},
		{"too many parts", "fake:" + a + ":1:2", 0},
		{"one good of two", "junk.fake:" + a + ":100", 1},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := parseStates(tt.in); len(got) != tt.want {
				t.Fatalf("parseStates(%q) = %+v, want %d entries", tt.in, got, tt.want)
			}
		})
	}
	if a == b || !strings.HasPrefix(a, StatePrefix) || StateCookieName("one") != a {
		t.Fatalf("cookie names %s %s", a, b)
	}
}

func TestLocalEmail(t *testing.T) {
	tests := []struct {
		id   Identity
		want string
	}{
		{Identity{Email: "a@example.com", EmailVerified: true}, "a@example.com"},
		{Identity{Email: "a@example.com"}, ""},
		{Identity{EmailVerified: true}, ""},
	}
	for _, tt := range tests {
		if got := LocalEmail(tt.id); got != tt.want {
			t.Errorf("LocalEmail(%+v) = %q, want %q", tt.id, got, tt.want)
		}
	}
}
