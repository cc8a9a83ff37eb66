package adminapi

import (
	"context"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestRegistrationTokens pins the admin API of initial access tokens:
// each row a request to issue one and the answer; an issued token is
// stored hashed, listed without it, and revoked by id.
func TestRegistrationTokens(t *testing.T) {
	a, h := newAPI(t)
	tests := []struct {
		name, body string
		wantStatus int
		wantDesc   string
	}{
		{"no limits", `{"label":"ci"}`, 201, ""},
		{"empty body object", `{}`, 201, ""},
		{"limits", `{"label":"partner","expires_in":86400,"max_uses":3}`, 201, ""},
		{"not JSON", `label=x`, 400, "JSON"},
		{"unknown field", `{"token":"mine"}`, 400, "unknown field"},
		{"negative expiry", `{"expires_in":-1}`, 400, "expires_in"},
		{"expiry beyond ten years", `{"expires_in":315360001}`, 400, "expires_in"},
		{"negative uses", `{"max_uses":-1}`, 400, "max_uses"},
		{"too many uses", `{"max_uses":1000001}`, 400, "max_uses"},
		{"NUL in label", `{"label":"a\u0000b"}`, 400, "label"},
		{"label too long", `{"label":"` + strings.Repeat("l", 201) + `"}`, 400, "label"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, obj, raw := call(t, h, "POST", "/admin/registration/tokens", adminToken, tt.body)
			if st != tt.wantStatus || !strings.Contains(raw, tt.wantDesc) {
				t.Fatalf("got %d %s, want %d %q", st, raw, tt.wantStatus, tt.wantDesc)
			}
			if st != 201 {
				return
			}
			tok, _ := obj["token"].(string)
			stored, err := a.Store.GetInitialAccessToken(context.Background(), storage.Hash(tok))
			if len(tok) < 32 || err != nil || stored.ID != obj["id"] || obj["state"] != "live" || obj["created_by"] != "unnamed" {
				t.Fatalf("issued %v, stored %+v %v", obj, stored, err)
			}
		})
	}
	st, _, raw := call(t, h, "GET", "/admin/registration/tokens", adminToken, "")
	if st != 200 || strings.Count(raw, `"id"`) != 3 || strings.Contains(raw, `"token"`) || !strings.Contains(raw, `"max_uses":3`) {
		t.Fatalf("list: %d %s", st, raw)
	}
	if st, obj, _ := call(t, h, "GET", "/admin/registration", adminToken, ""); st != 200 || obj["live_tokens"] != float64(3) {
		t.Fatalf("policy: %d %v", st, obj)
	}
	toks, _ := a.Store.ListInitialAccessTokens(context.Background())
	for _, path := range []string{"nosuch", "%00"} {
		if st, obj, _ := call(t, h, "DELETE", "/admin/registration/tokens/"+path, adminToken, ""); st != 404 ||
			obj["error_description"] != "no such initial access token" {
			t.Fatalf("revoke %s: %d %v", path, st, obj)
		}
	}
	for range 2 { // revoking twice is no error
		if st, _, raw := call(t, h, "DELETE", "/admin/registration/tokens/"+toks[0].ID, adminToken, ""); st != 204 {
			t.Fatalf("revoke: %d %s", st, raw)
		}
	}
	if _, obj, _ := call(t, h, "GET", "/admin/registration", adminToken, ""); obj["live_tokens"] != float64(2) {
		t.Fatalf("policy after a revocation: %v", obj)
	}
}
