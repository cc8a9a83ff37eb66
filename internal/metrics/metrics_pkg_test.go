package metrics

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"
)

// TestMetrics: requests are counted by route pattern (never by raw path,
// which a client chooses) and status; token, audit, attack and store
// observations appear on the scrape.
func TestMetrics(t *testing.T) {
	m := New(time.Now)
	mux := http.NewServeMux()
	mux.HandleFunc("GET /users/{id}", func(w http.ResponseWriter, r *http.Request) { w.WriteHeader(http.StatusTeapot) })
	mux.HandleFunc("GET /ok", func(w http.ResponseWriter, r *http.Request) { _, _ = w.Write([]byte("ok")) })
	h := m.Middleware(mux)
	for _, path := range []string{"/users/1", "/users/2", "/ok", "/nope-" + strings.Repeat("x", 10)} {
		h.ServeHTTP(httptest.NewRecorder(), httptest.NewRequest("GET", path, nil))
	}
	m.TokenIssued("client_credentials")
	m.AuditEvent("login", false)
	m.AuditEvent("code_replay", true)
	m.StoreOp("get_client", time.Millisecond)

	rec := httptest.NewRecorder()
	m.Handler().ServeHTTP(rec, httptest.NewRequest("GET", "/metrics", nil))
	body, _ := io.ReadAll(rec.Body)
	scrape := string(body)
	tests := []struct {
		name, line string
		want       bool
	}{
		{"pattern and status", `bawwab_http_requests_total{code="418",endpoint="GET /users/{id}"} 2`, true},
		{"a write without WriteHeader is 200", `bawwab_http_requests_total{code="200",endpoint="GET /ok"} 1`, true},
		{"unmatched", `bawwab_http_requests_total{code="404",endpoint="unmatched"} 1`, true},
		{"no raw path", `/users/1`, false},
		{"latency", `bawwab_http_request_duration_seconds_count{endpoint="GET /ok"} 1`, true},
		{"tokens", `bawwab_tokens_issued_total{grant_type="client_credentials"} 1`, true},
		{"audit events", `bawwab_audit_events_total{type="login"} 1`, true},
		{"attacks", `bawwab_attacks_detected_total{type="code_replay"} 1`, true},
		{"no attack for a login", `bawwab_attacks_detected_total{type="login"}`, false},
		{"store", `bawwab_store_operation_duration_seconds_count{op="get_client"} 1`, true},
		{"go runtime", `go_goroutines`, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Contains(scrape, tt.line); got != tt.want {
				t.Fatalf("scrape contains %q: %v, want %v", tt.line, got, tt.want)
			}
		})
	}
}

// TestStatusWriter: the first status wins, and Unwrap gives the
// http.ResponseController the underlying writer.
func TestStatusWriter(t *testing.T) {
	rec := httptest.NewRecorder()
	w := &statusWriter{ResponseWriter: rec, status: http.StatusOK}
	w.WriteHeader(http.StatusCreated)
	w.WriteHeader(http.StatusInternalServerError)
	if w.status != http.StatusCreated || w.Unwrap() != rec {
		t.Fatalf("status %d, Unwrap %v", w.status, w.Unwrap())
	}
	if err := http.NewResponseController(w).Flush(); err != nil {
		t.Fatalf("Flush through the wrapper: %v", err)
	}
}
