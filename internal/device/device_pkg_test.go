package device

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
)

// TestUserCodes: user codes are 8 characters of the consonant alphabet
// (RFC 8628 §6.1: no vowels, so no words), shown as XXXX-XXXX and read
// back whatever the case, dashes or spaces the user types.
func TestUserCodes(t *testing.T) {
	seen := map[string]bool{}
	for range 200 {
		c := NewUserCode()
		if len(c) != 8 || strings.Trim(c, userCodeAlphabet) != "" {
			t.Fatalf("user code %q is not 8 characters of %s", c, userCodeAlphabet)
		}
		seen[c] = true
	}
	if len(seen) < 190 {
		t.Fatalf("only %d distinct user codes in 200", len(seen))
	}
	tests := []struct{ typed, normal, shown string }{
		{"BCDF-GHJK", "BCDFGHJK", "BCDF-GHJK"},
		{"bcdf ghjk", "BCDFGHJK", "BCDF-GHJK"},
		{" b-c-d-f-g-h-j-k ", "BCDFGHJK", "BCDF-GHJK"},
		{"BCD", "BCD", "BCD"},
	}
	for _, tt := range tests {
		if got := Normalize(tt.typed); got != tt.normal {
			t.Errorf("Normalize(%q) = %q, want %q", tt.typed, got, tt.normal)
		}
		if got := Format(Normalize(tt.typed)); got != tt.shown {
			t.Errorf("Format(%q) = %q, want %q", tt.normal, got, tt.shown)
		}
	}
}

// TestDeviceAuthorization pins POST /device_authorization (RFC 8628
// §3.1, §3.2): each row a request and the error, or the response.
func TestDeviceAuthorization(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().Truncate(time.Second)
	for _, c := range []storage.Client{
		{ID: "tv", Public: true, GrantTypes: []string{token.DeviceCodeGrantType}, Scopes: []string{"openid", "profile", "nonsense"}},
		{ID: "web", Public: true, GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}},
	} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	e := &Endpoint{Auth: &clientauth.Authenticator{Store: s}, Store: s, Scopes: scope.Default(), Issuer: "https://issuer.example",
		Log: slog.New(slog.DiscardHandler), Now: func() time.Time { return now }, TTL: 10 * time.Minute, Interval: 5}
	mux := http.NewServeMux()
	e.Register(mux)
	tests := []struct {
		name       string
		form       url.Values
		wantStatus int
		wantErr    string
		wantDesc   string
	}{
		{"no client", url.Values{"scope": {"openid"}}, 401, oautherr.InvalidClient, "client authentication is missing"},
		{"client without the grant", url.Values{"client_id": {"web"}, "scope": {"openid"}}, 400, oautherr.UnauthorizedClient, "not allowed the device_code grant"},
		{"no scope", url.Values{"client_id": {"tv"}}, 400, oautherr.InvalidScope, "scope is required"},
		{"malformed scope", url.Values{"client_id": {"tv"}, "scope": {`"openid"`}}, 400, oautherr.InvalidScope, "not allowed by RFC 6749"},
		{"scope not of the client", url.Values{"client_id": {"tv"}, "scope": {"openid email"}}, 400, oautherr.InvalidScope, "may not ask for scope email"},
		{"scope unknown to the server", url.Values{"client_id": {"tv"}, "scope": {"nonsense"}}, 400, oautherr.InvalidScope, "may not ask for scope nonsense"},
		{"valid", url.Values{"client_id": {"tv"}, "scope": {"openid profile"}}, 200, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := httptest.NewRequest("POST", "/device_authorization", strings.NewReader(tt.form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			rec := httptest.NewRecorder()
			mux.ServeHTTP(rec, r)
			var body map[string]any
			if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
				t.Fatalf("%d %q", rec.Code, rec.Body)
			}
			if rec.Code != tt.wantStatus || tt.wantErr != "" && (body["error"] != tt.wantErr || !strings.Contains(body["error_description"].(string), tt.wantDesc)) {
				t.Fatalf("got %d %v, want %d %s mentioning %q", rec.Code, body, tt.wantStatus, tt.wantErr, tt.wantDesc)
			}
			if tt.wantErr != "" {
				return
			}
			var resp Response
			_ = json.Unmarshal(rec.Body.Bytes(), &resp)
			if resp.VerificationURI != "https://issuer.example/device" || resp.ExpiresIn != 600 || resp.Interval != 5 ||
				resp.VerificationURIComplete != resp.VerificationURI+"?user_code="+resp.UserCode || len(resp.UserCode) != 9 {
				t.Fatalf("response %+v", resp)
			}
			d, err := s.GetDeviceCodeByUserCode(ctx, Normalize(resp.UserCode))
			if err != nil || d.Hash != storage.Hash(resp.DeviceCode) || d.ClientID != "tv" || d.Status != storage.DevicePending ||
				strings.Join(d.Scopes, " ") != "openid profile" || !d.ExpiresAt.Equal(now.Add(10*time.Minute)) {
				t.Fatalf("stored %+v, %v", d, err)
			}
		})
	}
}
