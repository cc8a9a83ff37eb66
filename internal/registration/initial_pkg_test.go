package registration

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/storage"
)

// iatEnv is a token-mode endpoint whose store holds one initial access
// token of each state, each named by its token ("tok-<name>").
func iatEnv(t *testing.T) *regEnv {
	t.Helper()
	r := newRegEnv(t, Token)
	now := time.Now().Truncate(time.Second)
	r.e.Now = func() time.Time { return now }
	r.e.Audit = &audit.Log{Store: r.store, Log: slog.New(slog.DiscardHandler), Now: r.e.Now, Retention: time.Hour}
	for _, tok := range []storage.InitialAccessToken{
		{ID: "live", MaxUses: 0},
		{ID: "once", MaxUses: 1},
		{ID: "usedup", MaxUses: 2, Uses: 2},
		{ID: "expired", ExpiresAt: now.Add(-time.Second)},
		{ID: "expiring", ExpiresAt: now}, // expires this very second: no longer valid
		{ID: "later", ExpiresAt: now.Add(time.Hour), MaxUses: 3},
		{ID: "revoked", RevokedAt: now.Add(-time.Minute)},
	} {
		tok.Hash, tok.CreatedAt, tok.CreatedBy = storage.Hash("tok-"+tok.ID), now.Add(-time.Hour), "alice"
		if err := r.store.CreateInitialAccessToken(context.Background(), tok); err != nil {
			t.Fatal(err)
		}
	}
	return r
}

func (r *regEnv) uses(id string) int {
	r.t.Helper()
	tok, err := r.store.GetInitialAccessToken(context.Background(), storage.Hash("tok-"+id))
	if err != nil {
		r.t.Fatal(err)
	}
	return tok.Uses
}

// TestInitialAccessToken pins the Bearer check of a registration in token
// mode (RFC 7591 §3, RFC 6750 §3): the configured token or a live stored
// one registers; any other is 401 invalid_token with a Bearer challenge
// saying why; metadata the policy refuses costs the token no use.
func TestInitialAccessToken(t *testing.T) {
	good := `{"redirect_uris":["https://a.example/cb"]}`
	bad := `{"redirect_uris":["http://a.example/cb"]}`
	tests := []struct {
		name, bearer, body string
		wantStatus         int
		wantDesc           string
		token              string // a stored token whose uses to check
		wantUses           int
	}{
		{"none sent", "", good, 401, "carries no access token", "", 0},
		{"wrong", "guess", good, 401, "not valid", "", 0},
		{"a hash of a token", storage.Hash("tok-live"), good, 401, "not valid", "live", 0},
		{"a token's id", "live", good, 401, "not valid", "live", 0},
		{"configured", "initial-token", good, 201, "", "", 0},
		{"stored, unlimited", "tok-live", good, 201, "", "live", 1},
		{"stored, single use", "tok-once", good, 201, "", "once", 1},
		{"stored, before expiry", "tok-later", good, 201, "", "later", 1},
		{"used up", "tok-usedup", good, 401, "as many clients as it may", "usedup", 2},
		{"expired", "tok-expired", good, 401, "has expired", "expired", 0},
		{"expiring now", "tok-expiring", good, 401, "has expired", "expiring", 0},
		{"revoked", "tok-revoked", good, 401, "was revoked", "revoked", 0},
		{"refused metadata costs no use", "tok-once", bad, 400, "is not allowed", "once", 0},
		{"refused metadata, used-up token: 401 first", "tok-usedup", bad, 401, "as many clients", "usedup", 2},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := iatEnv(t)
			req := httptest.NewRequest("POST", "/register", strings.NewReader(tt.body))
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			r.mux.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus || !strings.Contains(rec.Body.String(), tt.wantDesc) {
				t.Fatalf("got %d %s, want %d %q", rec.Code, rec.Body, tt.wantStatus, tt.wantDesc)
			}
			ch := rec.Header().Get("WWW-Authenticate")
			switch {
			case tt.wantStatus != 401:
			case tt.bearer == "" && ch != `Bearer realm="bawwab"`:
				t.Fatalf("challenge %q, want the bare one (RFC 6750 §3.1)", ch)
			case tt.bearer != "" && (!strings.HasPrefix(ch, `Bearer realm="bawwab"`) || !strings.Contains(ch, `error="invalid_token"`)):
				t.Fatalf("challenge %q, want Bearer invalid_token", ch)
			}
			if tt.token != "" && r.uses(tt.token) != tt.wantUses {
				t.Fatalf("%s has %d uses, want %d", tt.token, r.uses(tt.token), tt.wantUses)
			}
		})
	}
}

// TestInitialAccessTokenAudit: the audit event of a registration names
// the stored token that allowed it by id, or the configured one; never
// the token.
func TestInitialAccessTokenAudit(t *testing.T) {
	r := iatEnv(t)
	for bearer, want := range map[string]string{"tok-later": "initial_access_token=later", "initial-token": "initial_access_token=configured"} {
		st, body := r.do("POST", "/register", bearer, `{"redirect_uris":["https://a.example/cb"]}`)
		if st != 201 {
			t.Fatalf("%s: %d %v", bearer, st, body)
		}
		evs, err := r.store.ListAuditEvents(context.Background(), storage.AuditFilter{ClientID: body["client_id"].(string)})
		if err != nil || len(evs) != 1 || evs[0].Type != audit.ClientRegistered || evs[0].Detail != want || strings.Contains(evs[0].Detail, bearer) {
			t.Fatalf("audit of %s: %+v %v, want %q", bearer, evs, err, want)
		}
	}
}

// TestInitialAccessTokenRace: concurrent registrations with a token of
// one use: exactly one client, the others 401 used up.
func TestInitialAccessTokenRace(t *testing.T) {
	r := iatEnv(t)
	var mu sync.Mutex
	codes := map[int]int{}
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			req := httptest.NewRequest("POST", "/register", strings.NewReader(`{"redirect_uris":["https://a.example/cb"]}`))
			req.Header.Set("Authorization", "Bearer tok-once")
			rec := httptest.NewRecorder()
			r.mux.ServeHTTP(rec, req)
			mu.Lock()
			defer mu.Unlock()
			codes[rec.Code]++
		})
	}
	wg.Wait()
	clients, err := r.store.ListClients(context.Background())
	if codes[http.StatusCreated] != 1 || codes[http.StatusUnauthorized] != 15 || err != nil || len(clients) != 1 || r.uses("once") != 1 {
		t.Fatalf("statuses %v, %d clients (%v), %d uses: want one 201 and one client", codes, len(clients), err, r.uses("once"))
	}
}
