package ids

import (
	"regexp"
	"testing"
)

// TestShape: ids and opaque tokens are URL-safe without escaping, carry at
// least 128 bits (RFC 6749 §10.10), and never contain a dot, so that an
// opaque token is never taken for a JWT.
func TestShape(t *testing.T) {
	base32 := regexp.MustCompile(`^[A-Z2-7]+$`)
	for _, tt := range []struct {
		name    string
		new     func() string
		wantLen int // base32 characters, 5 bits each
	}{
		{"New", New, 26},
		{"NewOpaque", NewOpaque, 32},
	} {
		t.Run(tt.name, func(t *testing.T) {
			seen := map[string]bool{}
			for range 1000 {
				v := tt.new()
				if len(v) != tt.wantLen || !base32.MatchString(v) {
					t.Fatalf("%q: want %d base32 characters", v, tt.wantLen)
				}
				if seen[v] {
					t.Fatalf("%q repeated", v)
				}
				seen[v] = true
			}
		})
	}
}
