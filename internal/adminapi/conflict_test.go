package adminapi_test

import (
	"bytes"
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// updateInserts is a store whose UpdateClient inserts instead, so that
// updating an existing client meets the database's own unique violation:
// a conflict the admin package did not put into words.
type updateInserts struct{ storage.Storage }

func (s updateInserts) UpdateClient(ctx context.Context, c storage.Client) error {
	return s.Storage.CreateClient(ctx, c)
}

// TestConflictAnswers: a 409 says what exists in the caller's terms when
// the admin package named it, and otherwise a fixed sentence; the
// database's message goes to the log, never to the caller.
func TestConflictAnswers(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	var log bytes.Buffer
	const token = "an-admin-token-of-at-least-32-characters"
	api := &adminapi.API{Store: updateInserts{s}, Scopes: scope.Default(), Log: slog.New(slog.NewTextHandler(&log, nil)),
		Now: time.Now, Token: token}
	h := api.Handler()
	call := func(method, path, body string) (int, string, string) {
		r := httptest.NewRequest(method, path, strings.NewReader(body))
		r.Header.Set("Authorization", "Bearer "+token)
		w := httptest.NewRecorder()
		h.ServeHTTP(w, r)
		var out struct {
			Error       string `json:"error"`
			Description string `json:"error_description"`
		}
		_ = json.Unmarshal(w.Body.Bytes(), &out)
		return w.Code, out.Error, out.Description
	}
	const client = `{"client_id": "reports", "grant_types": ["client_credentials"], "scopes": ["openid"]}`
	if status, code, desc := call("POST", "/admin/clients", client); status != http.StatusCreated {
		t.Fatalf("create: %d %s %s", status, code, desc)
	}
	tests := []struct {
		name, method, path string
		want               string // the whole description
		wantLog            bool   // the database's message logged
	}{
		{"duplicate id, named by admin", "POST", "/admin/clients", "a client with id 'reports' exists already", false},
		{"unique violation from the database", "PUT", "/admin/clients/reports", "this conflicts with something that exists already (the same id or name)", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			log.Reset()
			status, code, desc := call(tt.method, tt.path, client)
			if status != http.StatusConflict || code != "conflict" || desc != tt.want {
				t.Fatalf("got %d %s %q, want 409 conflict %q", status, code, desc, tt.want)
			}
			if logged := strings.Contains(log.String(), "UNIQUE"); logged != tt.wantLog {
				t.Fatalf("database message logged: %v, want %v; log: %s", logged, tt.wantLog, log.String())
			}
		})
	}
}
