package config

import (
	"testing"
	"time"
)

// TestRefreshGrace: the rotation grace period defaults to 30 s, may be
// turned off with 0, and is capped at MaxRefreshGrace.
func TestRefreshGrace(t *testing.T) {
	if d := Default().RefreshGrace; d != 30*time.Second {
		t.Fatalf("default refresh_grace = %v, want 30s", d)
	}
	tests := []struct {
		value   string
		want    time.Duration
		wantErr bool
	}{
		{"0s", 0, false},
		{"45s", 45 * time.Second, false},
		{"60s", 60 * time.Second, false},
		{"61s", 0, true},
		{"-1s", 0, true},
		{"soon", 0, true},
	}
	for _, tt := range tests {
		t.Run(tt.value, func(t *testing.T) {
			c := Default()
			f, ok := field("refresh_grace")
			if !ok {
				t.Fatal("no refresh_grace setting")
			}
			err := f.Set(&c, tt.value)
			if (err != nil) != tt.wantErr {
				t.Fatalf("Set(%q) error = %v, wantErr %v", tt.value, err, tt.wantErr)
			}
			if err == nil && c.RefreshGrace != tt.want {
				t.Fatalf("Set(%q) = %v, want %v", tt.value, c.RefreshGrace, tt.want)
			}
		})
	}
}
