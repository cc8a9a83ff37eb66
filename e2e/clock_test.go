package e2e

import (
	"context"
	"errors"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestClockLeeway: an access token just past its exp is still accepted
// within the configured leeway (a node whose clock runs behind), and
// rejected past it; the default leeway is five seconds.
func TestClockLeeway(t *testing.T) {
	for _, tc := range []struct {
		name   string
		leeway time.Duration // zero: the default
		late   time.Duration // how long after exp the token is presented
		active bool
	}{
		{"default, 3 s late", 0, 3 * time.Second, true},
		{"default, 30 s late", 0, 30 * time.Second, false},
		{"1 min leeway, 30 s late", time.Minute, 30 * time.Second, true},
		{"1 min leeway, 2 min late", time.Minute, 2 * time.Minute, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			e := startWith(t, func(c *config.Config) {
				if tc.leeway != 0 {
					c.ClockLeeway = tc.leeway
				}
			})
			tok := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
			wantStatus(t, tok.Status, 200, "client_credentials", tok.Description)
			e.Clock.Advance(time.Duration(tok.ExpiresIn)*time.Second + tc.late)
			got := e.introspect(tok.AccessToken, "robot", e.RobotSecret)
			if got["active"] != tc.active {
				t.Fatalf("introspection %s after exp: %v, want active=%v", tc.late, got, tc.active)
			}
		})
	}
}

// TestPruning: the server prunes by itself. A signed-in app's grant and
// refresh token outlive a day of idleness; once the refresh token has
// expired and its access tokens too, both are gone from the store, and so
// are audit events past retention.
func TestPruning(t *testing.T) {
	e := startWith(t, func(c *config.Config) {
		c.PruneInterval = 100 * time.Millisecond
		c.AuditRetention = 30 * 24 * time.Hour
	})
	r := e.notesRequest("openid offline_access")
	tok := e.redeem(e.browser().authorize(r, "openid", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "code redemption", tok.Description)
	ctx := context.Background()
	grantOf := func() error {
		rt, err := e.Store.GetRefreshToken(ctx, storage.Hash(tok.RefreshToken))
		if err != nil {
			return err
		}
		_, err = e.Store.GetGrant(ctx, rt.GrantID)
		return err
	}
	events := func() int {
		evs, err := e.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: e.UserID})
		if err != nil {
			t.Fatal(err)
		}
		return len(evs)
	}
	e.Clock.Advance(24 * time.Hour)
	time.Sleep(500 * time.Millisecond) // several prunings
	if err := grantOf(); err != nil {
		t.Fatalf("a live chain was pruned: %v", err)
	}
	if events() == 0 {
		t.Fatal("audit events within retention were pruned")
	}
	rt, _ := e.Store.GetRefreshToken(ctx, storage.Hash(tok.RefreshToken))
	e.Clock.Advance(31 * 24 * time.Hour) // past refresh_token_ttl and audit_retention
	deadline := time.Now().Add(5 * time.Second)
	for {
		_, gerr := e.Store.GetGrant(ctx, rt.GrantID)
		_, rerr := e.Store.GetRefreshToken(ctx, rt.Hash)
		if errors.Is(gerr, storage.ErrNotFound) && errors.Is(rerr, storage.ErrNotFound) && events() == 0 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("not pruned: grant %v, refresh token %v, %d audit events", gerr, rerr, events())
		}
		time.Sleep(50 * time.Millisecond)
	}
	_, _, m := getBody(t, e.URL+"/metrics")
	if !strings.Contains(m, "bawwab_store_pruned_rows_total ") || strings.Contains(m, "bawwab_store_pruned_rows_total 0\n") {
		t.Error("/metrics does not count pruned rows")
	}
}
