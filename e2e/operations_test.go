package e2e

import (
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

func getBody(t *testing.T, u string, header ...string) (int, http.Header, string) {
	t.Helper()
	req, _ := http.NewRequest("GET", u, nil)
	for i := 0; i+1 < len(header); i += 2 {
		req.Header.Set(header[i], header[i+1])
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b)
}

// TestOperations: health and readiness, request ids in responses and logs,
// and the Prometheus series an operator alerts on.
func TestOperations(t *testing.T) {
	e := start(t)
	if status, _, _ := getBody(t, e.URL+"/healthz"); status != 200 {
		t.Fatalf("/healthz: %d", status)
	}
	if status, _, body := getBody(t, e.URL+"/readyz"); status != 200 {
		t.Fatalf("/readyz: %d %s", status, body)
	}

	// Request ids: a sane one is kept, anything else replaced.
	_, h, _ := getBody(t, e.URL+"/jwks.json", "X-Request-Id", "abc-123")
	if h.Get("X-Request-Id") != "abc-123" {
		t.Fatalf("request id not echoed: %q", h.Get("X-Request-Id"))
	}
	_, h, _ = getBody(t, e.URL+"/jwks.json", "X-Request-Id", "bad id\twith <html>")
	if id := h.Get("X-Request-Id"); id == "" || strings.ContainsAny(id, " <\t") {
		t.Fatalf("unsafe request id kept: %q", id)
	}
	e.token(url.Values{"grant_type": {"magic"}}, "robot", e.RobotSecret) // logged with its request id
	if !strings.Contains(e.Logs.String(), `"request_id":"`) {
		t.Fatal("log lines carry no request id")
	}

	// Traffic: tokens, a code replay.
	robot := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
	wantStatus(t, robot.Status, 200, "client_credentials", robot.Description)
	r := e.notesRequest("openid email")
	code := e.browser().authorize(r, "email").Get("code")
	e.redeem(code, r)
	e.redeem(code, r)

	_, _, metrics := getBody(t, e.URL+"/metrics")
	for _, series := range []string{
		`bawwab_http_requests_total{code="200",endpoint="POST /token"} 2`,
		`bawwab_http_requests_total{code="400",endpoint="POST /token"} 2`,
		`bawwab_http_request_duration_seconds_bucket{endpoint="GET /authorize"`,
		`bawwab_tokens_issued_total{grant_type="client_credentials"} 1`,
		`bawwab_tokens_issued_total{grant_type="authorization_code"} 1`,
		`bawwab_attacks_detected_total{type="code_replay"} 1`,
		`bawwab_audit_events_total{type="login"} 1`,
		`bawwab_store_operation_duration_seconds_count{op="update auth_codes"} 2`,
		`bawwab_store_operation_duration_seconds_count{op="select sessions"}`,
		`process_resident_memory_bytes`,
		`go_goroutines`,
	} {
		if !strings.Contains(metrics, series) {
			t.Errorf("/metrics lacks %s", series)
		}
	}
	if t.Failed() {
		t.Log(metrics)
	}
	if strings.Contains(metrics, "/authorize?") || strings.Contains(metrics, code) {
		t.Fatal("metrics carry raw paths or secrets")
	}
}

// TestNotReady: /readyz fails when the store does.
func TestNotReady(t *testing.T) {
	e := start(t)
	e.Store.Close()
	if status, _, _ := getBody(t, e.URL+"/readyz"); status != http.StatusServiceUnavailable {
		t.Fatalf("/readyz with a closed store: %d", status)
	}
	if status, _, _ := getBody(t, e.URL+"/healthz"); status != 200 {
		t.Fatalf("/healthz is liveness only: %d", status)
	}
}
