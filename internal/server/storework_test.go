package server_test

import (
	"context"
	"fmt"
	"maps"
	"net/url"
	"path/filepath"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/testenv"
	"github.com/bawwab/bawwab/internal/token"
)

// opCounter counts the store's statements and transactions by the names
// the store reports them under ("select users", "tx rotate refresh token").
type opCounter struct {
	mu sync.Mutex
	n  map[string]int
}

func (c *opCounter) observe(op string, _ time.Duration) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.n[op]++
}

// during returns what fn made the store do.
func (c *opCounter) during(fn func()) map[string]int {
	c.mu.Lock()
	c.n = map[string]int{}
	c.mu.Unlock()
	fn()
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.n
}

func format(m map[string]int) string {
	var b strings.Builder
	for _, k := range slices.Sorted(maps.Keys(m)) {
		fmt.Fprintf(&b, "\n\t%-28s %d", k, m[k])
	}
	return b.String()
}

// TestStoreWorkPerOperation pins the store statements of each hot path:
// a statement added to one (another read of the user, a write that a
// throttle should have spared) fails here, and is added to the table only
// on purpose. The clock stands still, so that what is cached for a second
// (clients, clean throttle keys) or recorded once a minute (an app's use of
// its consent) stays so however slow the machine; each path runs once
// before it is counted, as it does in steady state.
func TestStoreWorkPerOperation(t *testing.T) {
	t.Run("sqlite", func(t *testing.T) {
		store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bawwab.db"))
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		storeWork(t, store, map[string]map[string]int{})
	})
	// On PostgreSQL, where each statement is a round trip, a consumed
	// code comes with its user in one statement (sqlstore.Dialect.WritableCTE).
	t.Run("postgres", func(t *testing.T) {
		dsn, schema := testenv.PostgresSchema(t)
		store, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		storeWork(t, store, map[string]map[string]int{
			"code redemption": {"update auth_codes": 1, "tx start grant": 1},
		})
	})
}

// storeWork runs TestStoreWorkPerOperation on store; differ replaces the
// wanted work of the paths it names.
func storeWork(t *testing.T, store storage.Storage, differ map[string]map[string]int) {
	now := time.Now()
	clock := func() time.Time { return now }
	s := newBenchOn(t, store, server.Options{Password: &cheap, Now: clock}, "")
	counter := &opCounter{n: map[string]int{}}
	s.store.(interface {
		SetObserver(func(string, time.Duration))
	}).SetObserver(counter.observe)

	authURL, cookies := s.signIn(t, "openid email offline_access")
	verifier := strings.Repeat("v", 43)
	redeem := func(t *testing.T, code string) string {
		return s.post(t, "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
			"code_verifier": {verifier}}.Encode())["refresh_token"].(string)
	}
	refresh := func(t *testing.T, rt string) string {
		return s.post(t, "/token", "grant_type=refresh_token&refresh_token="+rt)["refresh_token"].(string)
	}
	var code, rt, at string
	paths := []struct {
		name    string
		prepare func(t *testing.T) // before each run, not counted
		op      func(t *testing.T)
		want    map[string]int
	}{
		{"authorize, signed in, consent remembered", nil, func(t *testing.T) { code = s.authorize(t, authURL, cookies) }, map[string]int{
			"select sessions": 1, "select users": 1, "select consents": 1, // who, and what they allowed
			"select totp_secrets":  1, // second factors enrolled, passkeys too (signin.Policy.AskEnrolled, storage.Factors.Enrolment)
			"delete auth_requests": 1, "insert auth_codes": 1,
		}},
		// A "tx" is one commit; on PostgreSQL (sqlstore.Dialect.WritableCTE)
		// "tx start grant" and "tx rotate refresh token" are one statement,
		// one round trip.
		{"code redemption", func(t *testing.T) { code = s.authorize(t, authURL, cookies) }, func(t *testing.T) { rt = redeem(t, code) }, map[string]int{
			"update auth_codes": 1, "select users": 1,
			"tx start grant": 1, // the grant, its refresh token and the audit event
		}},
		{"refresh", nil, func(t *testing.T) { rt = refresh(t, rt) }, map[string]int{
			"select refresh_tokens":   1, // with its grant and user, joined
			"tx rotate refresh token": 1, // with the audit event
		}},
		{"introspect refresh token", nil, func(t *testing.T) { s.post(t, "/introspect", "token="+rt+"&token_type_hint=refresh_token") }, map[string]int{
			"select refresh_tokens": 1, // with its grant and user, joined
		}},
		{"client_credentials", nil, func(t *testing.T) {
			at = s.post(t, "/token", "grant_type=client_credentials&scope=files.read")["access_token"].(string)
		}, map[string]int{}},
		{"introspect JWT", nil, func(t *testing.T) { s.post(t, "/introspect", "token="+at) }, map[string]int{
			"select revoked_tokens": 1, // a revocation takes effect at once, on every node
		}},
	}
	for _, p := range paths {
		if w, ok := differ[p.name]; ok {
			p.want = w
		}
		t.Run(p.name, func(t *testing.T) {
			for run := range 2 { // the first warms: caches filled, the app's use recorded
				if p.prepare != nil {
					p.prepare(t)
				}
				got := counter.during(func() { p.op(t) })
				if run == 1 && !maps.Equal(got, p.want) {
					t.Errorf("store work:%s\nwant:%s", format(got), format(p.want))
				}
			}
		})
	}

	// An app's use of its consent (Connected apps) is written at most once
	// a minute per user and app, whatever the rate of refreshes.
	for _, tc := range []struct {
		advance time.Duration
		want    int
	}{{0, 0}, {30 * time.Second, 0}, {token.UseInterval, 1}, {time.Second, 0}} {
		now = now.Add(tc.advance)
		got := counter.during(func() {
			for range 5 {
				rt = refresh(t, rt)
			}
		})
		if got["update consents"] != tc.want || got["tx rotate refresh token"] != 5 {
			t.Errorf("5 refreshes %v later: %d consent writes, %d rotations, want %d and 5:%s", tc.advance, got["update consents"],
				got["tx rotate refresh token"], tc.want, format(got))
		}
	}
}
