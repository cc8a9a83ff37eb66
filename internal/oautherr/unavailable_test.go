package oautherr_test

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestUnavailableMapping checks the one mapping of store outages: however a
// handler wraps an error that wraps storage.ErrUnavailable, the client gets
// 503 temporarily_unavailable with Retry-After and no internals, while
// other errors keep their code.
func TestUnavailableMapping(t *testing.T) {
	outage := fmt.Errorf("postgres: %w: %w", storage.ErrUnavailable, errors.New("dial tcp 10.0.0.5:5432: connection refused"))
	tests := []struct {
		name       string
		err        error
		wantStatus int
		wantCode   string
		wantRetry  string
	}{
		{"bare outage", outage, 503, oautherr.TemporarilyUnavailable, "2"},
		{"outage wrapped with %w", fmt.Errorf("load client: %w", outage), 503, oautherr.TemporarilyUnavailable, "2"},
		{"outage through Wrap", oautherr.Wrap(outage), 503, oautherr.TemporarilyUnavailable, "2"},
		{"server_error WithCause outage", oautherr.New(oautherr.ServerError, "x").WithCause(outage), 503, oautherr.TemporarilyUnavailable, "2"},
		{"invalid_grant keeps its code", oautherr.New(oautherr.InvalidGrant, "no").WithCause(outage), 400, oautherr.InvalidGrant, ""},
		{"a bug stays 500", errors.New("nil map"), 500, oautherr.ServerError, ""},
		{"not found stays 500", storage.ErrNotFound, 500, oautherr.ServerError, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			oautherr.WriteLogged(context.Background(), discard, rec, "test", tt.err)
			if rec.Code != tt.wantStatus {
				t.Errorf("status = %d, want %d", rec.Code, tt.wantStatus)
			}
			if got := rec.Header().Get("Retry-After"); got != tt.wantRetry {
				t.Errorf("Retry-After = %q, want %q", got, tt.wantRetry)
			}
			var body struct {
				Error            string `json:"error"`
				ErrorDescription string `json:"error_description"`
			}
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatal(err)
			}
			if body.Error != tt.wantCode {
				t.Errorf("error = %q, want %q", body.Error, tt.wantCode)
			}
			if tt.wantStatus == http.StatusServiceUnavailable && (body.ErrorDescription == "" || containsAny(body.ErrorDescription, "10.0.0.5", "refused", "postgres")) {
				t.Errorf("description %q is empty or leaks internals", body.ErrorDescription)
			}
		})
	}
}

func containsAny(s string, subs ...string) bool {
	for _, sub := range subs {
		if strings.Contains(s, sub) {
			return true
		}
	}
	return false
}

var discard = slog.New(slog.DiscardHandler)
