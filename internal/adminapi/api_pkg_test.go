package adminapi

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

const adminToken = "the-admin-token"

func newAPI(t *testing.T) (*API, http.Handler) {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), time.Now, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	a := &API{Store: s, Keys: keys, Scopes: scope.Default(), Password: password.Params{Memory: 1024, Time: 1, Threads: 1},
		Log: slog.New(slog.DiscardHandler), Now: time.Now, Token: adminToken, Outbound: outbound.New(outbound.Options{})}
	return a, a.Handler()
}

func call(t *testing.T, h http.Handler, method, path, token, body string) (int, map[string]any, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	if token != "" {
		r.Header.Set("Authorization", "Bearer "+token)
	}
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Header().Get("Cache-Control") != "no-store" {
		t.Errorf("%s %s: Cache-Control %q", method, path, rec.Header().Get("Cache-Control"))
	}
	var obj map[string]any
	_ = json.Unmarshal(rec.Body.Bytes(), &obj)
	return rec.Code, obj, rec.Body.String()
}

// TestAdminToken: every route needs the admin token; an empty configured
// token lets nobody in.
func TestAdminToken(t *testing.T) {
	a, h := newAPI(t)
	tests := []struct {
		name, token string
		wantStatus  int
	}{
		{"none", "", 401},
		{"wrong", "guess", 401},
		{"prefix of the token", adminToken[:5], 401},
		{"right", adminToken, 200},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body, _ := call(t, h, "GET", "/admin/clients", tt.token, "")
			if status != tt.wantStatus || tt.wantStatus == 401 && body["error"] != "unauthorized" {
				t.Fatalf("got %d %v, want %d", status, body, tt.wantStatus)
			}
		})
	}
	a.Token = ""
	if status, _, _ := call(t, a.Handler(), "GET", "/admin/clients", "", ""); status != 401 {
		t.Fatalf("an empty admin token let a request without one in: %d", status)
	}
}

// TestAdminAPI walks the API as an operator would: each step a request
// and the status and error code it gets.
func TestAdminAPI(t *testing.T) {
	_, h := newAPI(t)
	steps := []struct {
		name, method, path, body string
		wantStatus               int
		wantErr                  string
	}{
		{"unknown route", "GET", "/admin/nothing", "", 404, "not_found"},
		{"openapi", "GET", "/admin/openapi.json", "", 200, ""},
		{"create client", "POST", "/admin/clients", `{"client_id":"notes","name":"Notes","redirect_uris":["https://notes.example/cb"],"scopes":["openid"]}`, 201, ""},
		{"create it again", "POST", "/admin/clients", `{"client_id":"notes","redirect_uris":["https://notes.example/cb"]}`, 409, "conflict"},
		{"invalid client", "POST", "/admin/clients", `{"redirect_uris":["http://notes.example/cb"]}`, 400, "invalid_request"},
		{"unknown field", "POST", "/admin/clients", `{"redirect_uri":"https://notes.example/cb"}`, 400, "invalid_request"},
		{"not JSON", "POST", "/admin/clients", `client_id=x`, 400, "invalid_request"},
		{"get client", "GET", "/admin/clients/notes", "", 200, ""},
		{"get missing client", "GET", "/admin/clients/nobody", "", 404, "not_found"},
		{"update client", "PUT", "/admin/clients/notes", `{"name":"Notes 2","redirect_uris":["https://notes.example/cb"],"scopes":["openid","profile"]}`, 200, ""},
		{"client grants", "GET", "/admin/clients/notes/grants", "", 200, ""},
		{"create user", "POST", "/admin/users", `{"username":"amal","password":"a long and unusual passphrase"}`, 201, ""},
		{"create user again", "POST", "/admin/users", `{"username":"amal","password":"another long passphrase here"}`, 409, "conflict"},
		{"weak password", "POST", "/admin/users", `{"username":"omar","password":"omar"}`, 400, "invalid_request"},
		{"list users", "GET", "/admin/users", "", 200, ""},
		{"missing user", "GET", "/admin/users/nobody", "", 404, "not_found"},
		{"scopes", "GET", "/admin/scopes", "", 200, ""},
		{"keys", "GET", "/admin/keys", "", 200, ""},
		{"rotate keys", "POST", "/admin/keys/rotate", "", 200, ""},
		{"audit", "GET", "/admin/audit", "", 200, ""},
		{"delete client", "DELETE", "/admin/clients/notes", "", 204, ""},
		{"deleted client", "GET", "/admin/clients/notes", "", 404, "not_found"},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			status, body, raw := call(t, h, st.method, st.path, adminToken, st.body)
			if status != st.wantStatus || st.wantErr != "" && body["error"] != st.wantErr {
				t.Fatalf("got %d %s, want %d %s", status, raw, st.wantStatus, st.wantErr)
			}
			if st.name == "create client" && (body["client_secret"] == "" || body["client_secret"] == nil || body["client_id"] != "notes") {
				t.Fatalf("created client %v: want its id and secret once", body)
			}
			if st.name == "get client" && (body["client_secret"] != nil || strings.Contains(raw, "secret_hash")) {
				t.Fatalf("a client read shows its secret: %s", raw)
			}
			if st.name == "update client" && body["name"] != "Notes 2" {
				t.Fatalf("updated client %v", body)
			}
		})
	}
}

// fakeDown fails every client read as an unreachable store does.
type fakeDown struct{ storage.Storage }

func (fakeDown) GetClient(context.Context, string) (*storage.Client, error) {
	return nil, storage.ErrUnavailable
}

// TestAdminOutage: an unreachable store is 503 temporarily_unavailable
// with Retry-After, not 500.
func TestAdminOutage(t *testing.T) {
	a, _ := newAPI(t)
	a.Store = fakeDown{a.Store}
	r := httptest.NewRequest("GET", "/admin/clients/notes", nil)
	r.Header.Set("Authorization", "Bearer "+adminToken)
	rec := httptest.NewRecorder()
	a.Handler().ServeHTTP(rec, r)
	if rec.Code != 503 || rec.Header().Get("Retry-After") == "" || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Fatalf("got %d %v %s", rec.Code, rec.Header(), rec.Body)
	}
}
