package server

import (
	"strings"
	"testing"
)

// TestContentPolicy: script runs only on the login form and the Security
// page, from this server only, never inline; every page forbids framing.
func TestContentPolicy(t *testing.T) {
	tests := []struct {
		path   string
		script bool
	}{
		{"/login", true},
		{"/account/security", true},
		{"/account/security/totp", true},
		{"/account", false},
		{"/consent", false},
		{"/authorize", false},
		{"/loginx", false},
		{"/account/securityx", true}, // a prefix: no such page exists, and it allows only 'self'
	}
	for _, tc := range tests {
		csp := contentPolicy(tc.path)
		if got := strings.Contains(csp, "script-src 'self'"); got != tc.script {
			t.Errorf("%s: %q, script allowed %v, want %v", tc.path, csp, got, tc.script)
		}
		if strings.Contains(csp, "unsafe") || !strings.Contains(csp, "frame-ancestors 'none'") || !strings.HasPrefix(csp, "default-src 'none'") {
			t.Errorf("%s: %q", tc.path, csp)
		}
	}
}
