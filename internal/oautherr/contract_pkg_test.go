package oautherr_test

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"log/slog"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
)

// TestHTTPStatus pins the status of each code (RFC 6749 §5.2: 400, or 401
// for invalid_client; RFC 6750 §3.1: 401 and 403; RFC 8628 §3.5 lets a
// grant set 400 for slow_down); an explicit Status wins.
func TestHTTPStatus(t *testing.T) {
	tests := []struct {
		err  *oautherr.Error
		want int
	}{
		{oautherr.New(oautherr.InvalidRequest, ""), 400},
		{oautherr.New(oautherr.InvalidGrant, ""), 400},
		{oautherr.New(oautherr.InvalidScope, ""), 400},
		{oautherr.New(oautherr.UnsupportedGrantType, ""), 400},
		{oautherr.New(oautherr.InvalidClient, ""), 401},
		{oautherr.New(oautherr.InvalidToken, ""), 401},
		{oautherr.New(oautherr.InsufficientScope, ""), 403},
		{oautherr.New(oautherr.AccessDenied, ""), 403},
		{oautherr.New(oautherr.ServerError, ""), 500},
		{oautherr.New(oautherr.TemporarilyUnavailable, ""), 503},
		{oautherr.New(oautherr.SlowDown, ""), 429},
		{&oautherr.Error{Code: oautherr.SlowDown, Status: 400}, 400},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%d", tt.err.Code, tt.err.Status), func(t *testing.T) {
			if got := tt.err.HTTPStatus(); got != tt.want {
				t.Fatalf("HTTPStatus = %d, want %d", got, tt.want)
			}
		})
	}
}

// TestErrorChain: errors.Is matches by code through %w wrapping, the
// private cause is reachable with errors.Is but never in Description,
// and Code reads the code of any wrapped *Error.
func TestErrorChain(t *testing.T) {
	cause := errors.New("sql: connection reset")
	e := oautherr.Newf(oautherr.InvalidGrant, "code %s was used", "abc").WithCause(cause)
	wrapped := fmt.Errorf("exchange: %w", e)
	tests := []struct {
		name   string
		err    error
		target error
		want   bool
	}{
		{"same code", wrapped, oautherr.New(oautherr.InvalidGrant, "other text"), true},
		{"other code", wrapped, oautherr.New(oautherr.InvalidRequest, ""), false},
		{"the cause", wrapped, cause, true},
		{"not an Error", wrapped, errors.New("x"), false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := errors.Is(tt.err, tt.target); got != tt.want {
				t.Fatalf("errors.Is = %v, want %v", got, tt.want)
			}
		})
	}
	if e.Description != "code abc was used" || strings.Contains(e.Description, "sql") {
		t.Fatalf("Description %q", e.Description)
	}
	if got := e.Error(); got != "invalid_grant: code abc was used: sql: connection reset" {
		t.Fatalf("Error() = %q", got)
	}
	if got := oautherr.New(oautherr.InvalidScope, "").Error(); got != "invalid_scope" {
		t.Fatalf("Error() without description = %q", got)
	}
	for _, c := range []struct {
		err  error
		want string
	}{{wrapped, oautherr.InvalidGrant}, {cause, ""}, {nil, ""}} {
		if got := oautherr.Code(c.err); got != c.want {
			t.Errorf("Code(%v) = %q, want %q", c.err, got, c.want)
		}
	}
	// Wrap hides the cause from the client.
	w := oautherr.Wrap(cause)
	if w.Code != oautherr.ServerError || strings.Contains(w.Description, "sql") || !errors.Is(w, cause) {
		t.Fatalf("Wrap = %+v", w)
	}
}

func TestClip(t *testing.T) {
	for _, tt := range []struct{ in, want string }{
		{"short", "short"},
		{strings.Repeat("a", 40), strings.Repeat("a", 40)},
		{strings.Repeat("a", 41), strings.Repeat("a", 40) + "..."},
	} {
		if got := oautherr.Clip(tt.in); got != tt.want {
			t.Errorf("Clip(%d chars) = %q, want %q", len(tt.in), got, tt.want)
		}
	}
}

// TestParams: an authorization error response carries error, and
// error_description and error_uri only when set (RFC 6749 §4.1.2.1).
func TestParams(t *testing.T) {
	tests := []struct {
		name string
		err  *oautherr.Error
		want string
	}{
		{"code only", oautherr.New(oautherr.AccessDenied, ""), "error=access_denied"},
		{"with description", oautherr.New(oautherr.AccessDenied, "no §1"), "error=access_denied&error_description=no+section+1"},
		{"with uri", &oautherr.Error{Code: oautherr.InvalidRequest, URI: "https://docs.example/e"},
			"error=invalid_request&error_uri=https%3A%2F%2Fdocs.example%2Fe"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := tt.err.Params().Encode(); got != tt.want {
				t.Fatalf("Params = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestRespond: success is no-store JSON (RFC 6749 §5.1); an error is the
// §5.2 JSON body, with a Basic challenge on 401, and a server_error is
// logged with its cause, which the client never sees.
func TestRespond(t *testing.T) {
	var logs bytes.Buffer
	log := slog.New(slog.NewTextHandler(&logs, nil))
	tests := []struct {
		name       string
		resp       any
		err        error
		wantStatus int
		wantBody   string
		wantAuth   string
		wantLog    string
	}{
		{"success", map[string]int{"n": 1}, nil, 200, `{"n":1}`, "", ""},
		{"client error", nil, oautherr.New(oautherr.InvalidRequest, `bad "x"`), 400,
			`{"error":"invalid_request","error_description":"bad 'x'"}`, "", ""},
		{"invalid_client", nil, oautherr.New(oautherr.InvalidClient, "who?"), 401,
			`{"error":"invalid_client","error_description":"who?"}`, `Basic realm="bawwab"`, ""},
		{"bug", nil, errors.New("nil pointer in handler"), 500,
			`{"error":"server_error","error_description":"the server could not complete the request"}`, "", "nil pointer in handler"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			rec := httptest.NewRecorder()
			oautherr.Respond(context.Background(), log, rec, "test", tt.resp, tt.err)
			if rec.Code != tt.wantStatus || strings.TrimSpace(rec.Body.String()) != tt.wantBody {
				t.Fatalf("got %d %s, want %d %s", rec.Code, rec.Body, tt.wantStatus, tt.wantBody)
			}
			if rec.Header().Get("Cache-Control") != "no-store" || !strings.HasPrefix(rec.Header().Get("Content-Type"), "application/json") {
				t.Fatalf("headers %v, want no-store JSON", rec.Header())
			}
			if got := rec.Header().Get("WWW-Authenticate"); got != tt.wantAuth {
				t.Fatalf("WWW-Authenticate %q, want %q", got, tt.wantAuth)
			}
			if !strings.Contains(logs.String(), tt.wantLog) || tt.wantLog == "" && logs.Len() > 0 {
				t.Fatalf("log %q, want %q", logs.String(), tt.wantLog)
			}
		})
	}
}

// TestWriteBearer: a protected resource's error challenge (RFC 6750 §3):
// the bare challenge when no token was sent, else error and description,
// and scope when given.
func TestWriteBearer(t *testing.T) {
	tests := []struct {
		name, scope string
		err         error
		wantStatus  int
		want        string
	}{
		{"no token", "", oautherr.ErrMissingToken, 401, `Bearer realm="api"`},
		{"bad token", "", oautherr.New(oautherr.InvalidToken, "expired"), 401, `Bearer realm="api", error="invalid_token", error_description="expired"`},
		{"scope", "files.read", oautherr.New(oautherr.InsufficientScope, "needs files.read"), 403,
			`Bearer realm="api", error="insufficient_scope", error_description="needs files.read", scope="files.read"`},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			oautherr.WriteBearer(rec, tt.err, "api", tt.scope)
			if rec.Code != tt.wantStatus || rec.Header().Get("WWW-Authenticate") != tt.want {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("WWW-Authenticate"), tt.wantStatus, tt.want)
			}
			var body map[string]string
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil || body["error"] != oautherr.Code(tt.err) {
				t.Fatalf("body %s: %v", rec.Body, err)
			}
		})
	}
}
