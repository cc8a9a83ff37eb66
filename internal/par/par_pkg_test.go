package par

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestTake pins the redemption of a request_uri (RFC 9126 §4): only one
// this server issued, by the client that pushed it, once, before it
// expires.
func TestTake(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now().Truncate(time.Second)
	for _, c := range []string{"web", "other"} {
		if err := s.CreateClient(ctx, storage.Client{ID: c, GrantTypes: []string{"authorization_code"}, RedirectURIs: []string{"https://app.example/cb"}}); err != nil {
			t.Fatal(err)
		}
	}
	push := func(id string, expires time.Time) {
		t.Helper()
		if err := s.CreateAuthRequest(ctx, storage.AuthRequest{ID: id, ClientID: "web", RedirectURI: "https://app.example/cb",
			Scopes: []string{"openid"}, State: "s", MaxAge: -1, CreatedAt: now, ExpiresAt: expires}); err != nil {
			t.Fatal(err)
		}
	}
	push("par-good", now.Add(TTL))
	push("par-old", now.Add(-time.Second))
	push("plain", now.Add(TTL))
	push("par-theirs", now.Add(TTL))
	e := &Endpoint{Store: s, Now: func() time.Time { return now }}
	tests := []struct {
		name, client, uri, wantErr string
	}{
		{"not ours", "web", "https://app.example/req", "must be one this server issued"},
		{"not pushed", "web", RequestURIPrefix + "plain", "must be one this server issued"},
		{"unknown", "web", RequestURIPrefix + "par-nope", "unknown, used or expired"},
		{"another client's", "other", RequestURIPrefix + "par-theirs", "pushed by another client"},
		{"expired", "web", RequestURIPrefix + "par-old", "has expired"},
		{"good", "web", RequestURIPrefix + "par-good", ""},
		{"used", "web", RequestURIPrefix + "par-good", "unknown, used or expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			req, err := e.Take(ctx, tt.client, tt.uri)
			if tt.wantErr == "" {
				if err != nil || req.ID != "par-good" {
					t.Fatalf("Take = %v, %v", req, err)
				}
				return
			}
			if oe := oautherr.From(err); err == nil || oe.Code != oautherr.InvalidRequest || !strings.Contains(oe.Description, tt.wantErr) {
				t.Fatalf("err = %v, want invalid_request mentioning %q", err, tt.wantErr)
			}
		})
	}
}
