package audit

import (
	"bytes"
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestRecord: every event is logged (attacks at WARN); events about a
// user, and attacks, are stored with the client's address and expire
// after Retention; other events are logged only. A nil Log records
// nothing.
func TestRecord(t *testing.T) {
	ctx := clientip.With(context.Background(), "203.0.113.7")
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now().Truncate(time.Millisecond)
	var logs bytes.Buffer
	var seen []string
	l := &Log{Store: s, Log: slog.New(slog.NewTextHandler(&logs, nil)), Now: func() time.Time { return now }, Retention: time.Hour,
		OnEvent: func(typ string, attack bool) {
			if attack {
				typ += "!"
			}
			seen = append(seen, typ)
		}}
	tests := []struct {
		name      string
		ev        Event
		wantStore bool
		wantLevel string
	}{
		{"user event", Event{Type: Login, UserID: "u1", Detail: "method=password"}, true, "INFO"},
		{"client event", Event{Type: TokenIssued, ClientID: "svc"}, false, "INFO"},
		{"attack without a user", Event{Type: ClientThrottled, ClientID: "svc"}, true, "WARN"},
		{"attack on a user", Event{Type: RefreshReuse, UserID: "u2", ClientID: "app"}, true, "WARN"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			logs.Reset()
			l.Record(ctx, tt.ev)
			if !strings.Contains(logs.String(), "level="+tt.wantLevel) || !strings.Contains(logs.String(), "event="+tt.ev.Type) ||
				!strings.Contains(logs.String(), "ip=203.0.113.7") {
				t.Fatalf("log %q, want %s with the event and ip", logs.String(), tt.wantLevel)
			}
			got, err := s.ListAuditEvents(ctx, storage.AuditFilter{Type: tt.ev.Type})
			if err != nil {
				t.Fatal(err)
			}
			if (len(got) == 1) != tt.wantStore {
				t.Fatalf("stored %v, want stored %v", got, tt.wantStore)
			}
			if tt.wantStore {
				e := got[0]
				if e.UserID != tt.ev.UserID || e.ClientID != tt.ev.ClientID || e.IP != "203.0.113.7" || !e.Time.Equal(now) ||
					e.ExpiresAt.Unix() != now.Add(time.Hour).Unix() || e.ID == "" {
					t.Fatalf("stored %+v", e)
				}
			}
		})
	}
	if got := strings.Join(seen, " "); got != "login token_issued client_throttled! refresh_reuse!" {
		t.Fatalf("OnEvent saw %q", got)
	}
	var nilLog *Log
	nilLog.Record(ctx, Event{Type: Login, UserID: "u1"}) // must not panic
}

func TestAttack(t *testing.T) {
	attacks := []string{LoginThrottled, CodeReplay, CodeWrongClient, RefreshReuse, RefreshWrongClient, ClientThrottled, CSRFRejected, OutboundRefused}
	others := []string{Login, LoginFailed, Logout, Consent, ConsentDenied, AppRevoked, TokenIssued, TokenRefreshed, TokenRevoked, RefreshRetried, ""}
	for _, typ := range attacks {
		if !Attack(typ) {
			t.Errorf("Attack(%q) = false", typ)
		}
	}
	for _, typ := range others {
		if Attack(typ) {
			t.Errorf("Attack(%q) = true", typ)
		}
	}
}

// TestEventIDsSort: ids sort by time, so that listing by id is listing
// by time, and two events of one instant differ.
func TestEventIDsSort(t *testing.T) {
	t0 := time.Unix(1_700_000_000, 0)
	a, b, c := eventID(t0), eventID(t0), eventID(t0.Add(time.Nanosecond))
	if a == b || !(a[:16] < c[:16]) || !(b < c) {
		t.Fatalf("ids %s %s %s do not sort by time", a, b, c)
	}
}
