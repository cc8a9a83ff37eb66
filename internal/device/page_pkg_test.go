package device

import (
	"context"
	"errors"
	"path/filepath"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestPendingCode pins which typed user codes lead on to login and
// consent (RFC 8628 §3.3): a pending, unexpired code, however it is
// typed; anything else is unknown to the user, whatever the reason.
func TestPendingCode(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	now := time.Now().Truncate(time.Second)
	if err := s.CreateClient(ctx, storage.Client{ID: "tv", Public: true, GrantTypes: []string{granttype.DeviceCode}, Scopes: []string{"openid"}}); err != nil {
		t.Fatal(err)
	}
	for _, dc := range []storage.DeviceCode{
		{Hash: "h1", UserCode: "BCDFGHJK", ClientID: "tv", Scopes: []string{"openid"}, Interval: 5, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Status: storage.DevicePending},
		{Hash: "h2", UserCode: "CCCCDDDD", ClientID: "tv", Scopes: []string{"openid"}, Interval: 5, CreatedAt: now.Add(-time.Hour), ExpiresAt: now.Add(-time.Minute), Status: storage.DevicePending},
		{Hash: "h3", UserCode: "FFFFGGGG", ClientID: "tv", Scopes: []string{"openid"}, Interval: 5, CreatedAt: now, ExpiresAt: now.Add(10 * time.Minute), Status: storage.DevicePending},
	} {
		if err := s.CreateDeviceCode(ctx, dc); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.DecideDeviceCode(ctx, "FFFFGGGG", false, "u1", nil, nil, now, now); err != nil {
		t.Fatal(err)
	}
	p := &Page{Store: s, RequestTTL: 30 * time.Minute, Now: func() time.Time { return now }}
	tests := []struct {
		name, typed string
		wantFound   bool
	}{
		{"as shown", "BCDF-GHJK", true},
		{"lower case with a space", "bcdf ghjk", true},
		{"unknown", "ZZZZ-ZZZZ", false},
		{"expired", "CCCC-DDDD", false},
		{"decided", "FFFF-GGGG", false},
		{"text no code has", "BCDF\x00GHJK", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			dc, err := p.pendingCode(ctx, tt.typed)
			if !tt.wantFound {
				if !errors.Is(err, storage.ErrNotFound) {
					t.Fatalf("got %v, %v; want ErrNotFound", dc, err)
				}
				return
			}
			if err != nil || dc.UserCode != "BCDFGHJK" {
				t.Fatalf("got %v, %v", dc, err)
			}
			// The request always asks for consent (§5.4) and lives no
			// longer than the code.
			req := p.request(dc, &storage.Client{ID: "tv"})
			if !IsRequest(req) || req.Prompt != "consent" || req.State != dc.UserCode || !req.ExpiresAt.Equal(dc.ExpiresAt) || req.MaxAge != -1 {
				t.Errorf("request %+v", req)
			}
		})
	}
}
