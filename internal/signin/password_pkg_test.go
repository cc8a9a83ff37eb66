package signin

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestPassword runs the password step through a sequence of posts: the
// right password proves pwd, a wrong one or an unknown name fails and is
// audited, and once the account's budget is spent the next try is
// throttled before any password is checked, even the right one.
func TestPassword(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	cheap := password.Params{Memory: 1024, Time: 1, Threads: 1}
	hash, err := password.Hash("correct horse", cheap)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now().Truncate(time.Second)
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", Name: "Amal", PasswordHash: hash, CreatedAt: now}); err != nil {
		t.Fatal(err)
	}
	clock := func() time.Time { return now }
	p := &Password{Store: s, Params: cheap, Audit: &audit.Log{Store: s, Log: slog.New(slog.DiscardHandler), Now: clock, Retention: time.Hour},
		UserFailures: &ratelimit.Backoff{Counter: s, Free: 2, Base: time.Minute, Max: time.Hour, Now: clock},
		IPFailures:   &ratelimit.Backoff{Counter: s, Free: 50, Base: time.Minute, Max: time.Hour, Now: clock}}
	tests := []struct {
		name, username, password string
		want                     Result
		wantUser                 string
	}{
		{"right password", "amal", "correct horse", Proved, "u1"},
		{"unknown name", "nobody", "correct horse", Failed, ""},
		{"name no user can have", "a\x00b", "x", Failed, ""},
		{"wrong password", "amal", "wrong", Failed, ""},
		{"wrong again: the budget is spent", "amal", "wrong", Failed, ""},
		{"then even the right one waits", "amal", "correct horse", Throttled, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			form := url.Values{"username": {tt.username}, "password": {tt.password}}
			r := httptest.NewRequest(http.MethodPost, "/login", strings.NewReader(form.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if err := r.ParseForm(); err != nil {
				t.Fatal(err)
			}
			out, err := p.Verify(ctx, r, &Attempt{})
			if err != nil {
				t.Fatal(err)
			}
			if out.Result != tt.want {
				t.Fatalf("result %d, want %d (%+v)", out.Result, tt.want, out)
			}
			if tt.wantUser != "" && (out.User == nil || out.User.ID != tt.wantUser) {
				t.Errorf("user %+v, want %s", out.User, tt.wantUser)
			}
			if out.Result == Throttled && (out.Retry <= 0 || out.Message != "login.throttled") {
				t.Errorf("throttled outcome %+v", out)
			}
			if out.Result == Failed && out.Message != "login.failed" {
				t.Errorf("failure message %q", out.Message)
			}
		})
	}
	// Failures of a known account are stored (an unknown name is only
	// logged), and the failure that spends the budget says so.
	for typ, want := range map[string]int{audit.LoginFailed: 2, audit.LoginThrottled: 1} {
		evs, err := s.ListAuditEvents(ctx, storage.AuditFilter{Type: typ, UserID: "u1"})
		if err != nil {
			t.Fatal(err)
		}
		if len(evs) != want {
			t.Errorf("%d %s events, want %d", len(evs), typ, want)
		}
	}
}
