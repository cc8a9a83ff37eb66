package logout

import (
	"context"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestRequest pins the checks of an RP-initiated logout request without
// id_token_hint (OpenID Connect RP-Initiated Logout 1.0 §2, §3): the
// redirect must be one the named client registered.
func TestRequest(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if err := s.CreateClient(ctx, storage.Client{ID: "web", Name: "Notes", GrantTypes: []string{"authorization_code"},
		RedirectURIs: []string{"https://app.example/cb", "https://app.example/bye"}, Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	h := &Handler{Store: s}
	tests := []struct {
		name     string
		v        url.Values
		wantName string
		wantErr  string
	}{
		{"nothing: a plain sign-out", url.Values{}, "", ""},
		{"client alone", url.Values{"client_id": {"web"}}, "Notes", ""},
		{"registered redirect", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://app.example/bye"}, "state": {"s"}}, "Notes", ""},
		{"redirect without client", url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}}, "", "needs client_id or id_token_hint"},
		{"unknown client", url.Values{"client_id": {"nobody"}}, "", "no client is registered"},
		{"unregistered redirect", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://evil.example/"}}, "", "not a redirect URI registered"},
		{"redirect with a fragment", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://app.example/bye#"}}, "", "not a redirect URI registered"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			d, err := h.request(httptest.NewRequest("GET", "/end_session", nil), tt.v)
			if tt.wantErr != "" {
				e := oautherr.From(err)
				if err == nil || e.Code != oautherr.InvalidRequest || !strings.Contains(e.Description, tt.wantErr) {
					t.Fatalf("err = %v, want invalid_request mentioning %q", err, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if d.ClientName != tt.wantName || d.RedirectURI != tt.v.Get("post_logout_redirect_uri") || d.State != tt.v.Get("state") {
				t.Errorf("got %+v", d)
			}
		})
	}
}
