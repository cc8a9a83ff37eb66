package security

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestOutcome pins how a factor check ends a sign-in step: a throttle
// waits, a replay and a wrong code fail with their messages, a store
// error is the server's.
func TestOutcome(t *testing.T) {
	outage := fmt.Errorf("db: %w", storage.ErrUnavailable)
	tests := []struct {
		name    string
		err     error
		want    signin.Result
		message string
		wantErr error
	}{
		{"right", nil, signin.Proved, "", nil},
		{"throttled", &factors.ThrottledError{Wait: 3 * time.Second}, signin.Throttled, "security.throttled", nil},
		{"replayed", fmt.Errorf("x: %w", factors.ErrReplayed), signin.Failed, "security.code.used", nil},
		{"wrong", factors.ErrInvalidCode, signin.Failed, "security.code.wrong", nil},
		{"not enrolled", factors.ErrNotEnrolled, signin.Failed, "security.code.wrong", nil},
		{"store down", outage, 0, "", storage.ErrUnavailable},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			out, err := outcome(context.Background(), nil, "u1", "totp", tc.err)
			if !errors.Is(err, tc.wantErr) || tc.wantErr == nil && err != nil {
				t.Fatalf("err %v, want %v", err, tc.wantErr)
			}
			if out.Result != tc.want || out.Message != tc.message {
				t.Fatalf("outcome %+v, want %v %q", out, tc.want, tc.message)
			}
			if tc.want == signin.Throttled && out.Retry != 3*time.Second {
				t.Fatalf("retry %v", out.Retry)
			}
		})
	}
}

func TestPasskeyName(t *testing.T) {
	tests := []struct{ in, want string }{
		{"  Laptop ", "Laptop"},
		{"حاسوب العمل", "حاسوب العمل"},
		{"a\x00b", ""},
		{string([]byte{0xff, 0xfe}), ""},
		{strings.Repeat("é", 100), strings.Repeat("é", 64)},
		{"", ""},
	}
	for _, tc := range tests {
		if got := passkeyName(tc.in); got != tc.want {
			t.Errorf("passkeyName(%q) = %q, want %q", tc.in, got, tc.want)
		}
	}
}
