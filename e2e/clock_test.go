package e2e

import (
	"net/url"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
)

// TestClockLeeway: an access token just past its exp is still accepted
// within the configured leeway (a node whose clock runs behind), and
// rejected past it; the default leeway is five seconds.
func TestClockLeeway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration // zero: the default
		late   time.Duration // how long after exp the token is presented
		active bool
	}{
		{"default, 3 s late", 0, 3 * time.Second, true},
		{"default, 30 s late", 0, 30 * time.Second, false},
		{"1 min leeway, 30 s late", time.Minute, 30 * time.Second, true},
		{"1 min leeway, 2 min late", time.Minute, 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startWith(t, func(c *config.Config) {
				if tc.leeway != 0 {
					c.ClockLeeway = tc.leeway
				}
			})
			tok := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
			wantStatus(t, tok.Status, 200, "client_credentials", tok.Description)
			e.Clock.Advance(time.Duration(tok.ExpiresIn)*time.Second + tc.late)
			got := e.introspect(tok.AccessToken, "robot", e.RobotSecret)
			if got["active"] != tc.active {
				t.Fatalf("introspection %s after exp: %v, want active=%v", tc.late, got, tc.active)
			}
		})
	}
}
