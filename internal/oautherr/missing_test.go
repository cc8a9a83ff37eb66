package oautherr_test

import (
	"errors"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
)

// TestMissingToken: ErrMissingToken (RFC 6750 §3.1, no token sent) is
// told apart from every other invalid_token error with errors.Is, through
// wrapping, while it still matches its code; WriteBearer gives it the bare
// challenge and any other invalid_token error the error and description.
func TestMissingToken(t *testing.T) {
	expired := oautherr.New(oautherr.InvalidToken, "expired")
	tests := []struct {
		name        string
		err, target error
		want        bool
	}{
		{"itself", oautherr.ErrMissingToken, oautherr.ErrMissingToken, true},
		{"wrapped", fmt.Errorf("resource: %w", oautherr.ErrMissingToken), oautherr.ErrMissingToken, true},
		{"another invalid_token error", expired, oautherr.ErrMissingToken, false},
		{"another, wrapped", fmt.Errorf("resource: %w", expired), oautherr.ErrMissingToken, false},
		{"another code", oautherr.New(oautherr.InvalidRequest, ""), oautherr.ErrMissingToken, false},
		{"it still matches its code", oautherr.ErrMissingToken, oautherr.New(oautherr.InvalidToken, ""), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Fatalf("errors.Is(%v, %v) = %v, want %v", tt.err, tt.target, got, tt.want)
			}
		})
	}
	challenges := []struct {
		name string
		err  error
		want string
	}{
		{"missing, wrapped", fmt.Errorf("resource: %w", oautherr.ErrMissingToken), `Bearer realm="api"`},
		{"expired, wrapped", fmt.Errorf("resource: %w", expired), `Bearer realm="api", error="invalid_token", error_description="expired"`},
	}
	for _, tt := range challenges {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			oautherr.WriteBearer(rec, tt.err, "api", "")
			if got := rec.Header().Get("WWW-Authenticate"); rec.Code != 401 || got != tt.want {
				t.Fatalf("got %d %q, want 401 %q", rec.Code, got, tt.want)
			}
		})
	}
}
