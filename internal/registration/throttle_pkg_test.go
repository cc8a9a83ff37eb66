package registration

import (
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/ratelimit"
)

// step is one registration request of a throttle scenario.
type step struct {
	bearer, body, addr string
	want               int
}

// TestRegistrationThrottle pins the throttle of registrations: refused
// ones are counted per stored initial access token (wherever they come
// from), or per client network for open registration, and those of the
// configured token (of unlimited uses anyway) not at all; beyond the budget (two here) the answer is 429 slow_down with
// Retry-After, before the body is read, so that good metadata is refused
// too and costs no use. Successful registrations are not counted (their
// token's uses bound them), and a token that is not live is refused before
// anything is counted.
func TestRegistrationThrottle(t *testing.T) {
	const good, bad = `{"redirect_uris":["https://a.example/cb"]}`, `{"redirect_uris":["http://a.example/cb"]}`
	const one, other = "192.0.2.1:1234", "198.51.100.7:1234"
	tests := []struct {
		name  string
		mode  string
		steps []step
		token string // a stored token whose uses to check at the end
		uses  int
	}{
		{"refusals of a single-use token", Token, []step{
			{"tok-once", bad, one, 400}, {"tok-once", bad, other, 400}, {"tok-once", bad, one, 429}, {"tok-once", good, other, 429},
		}, "once", 0},
		{"successes are not counted", Token, []step{
			{"tok-live", good, one, 201}, {"tok-live", good, one, 201}, {"tok-live", good, one, 201},
			{"tok-live", bad, one, 400}, {"tok-live", bad, one, 400}, {"tok-live", good, one, 429},
		}, "live", 3},
		{"a refusal before the budget is spent leaves the use", Token, []step{
			{"tok-once", bad, one, 400}, {"tok-once", good, one, 201}, {"tok-once", good, one, 401},
		}, "once", 1},
		{"one token's refusals are its own", Token, []step{
			{"tok-once", bad, one, 400}, {"tok-once", bad, one, 400}, {"tok-once", bad, one, 429}, {"tok-later", bad, one, 400},
			{"initial-token", bad, one, 400},
		}, "later", 0},
		{"dead tokens are refused before counting", Token, []step{
			{"tok-revoked", bad, one, 401}, {"tok-revoked", bad, one, 401}, {"tok-revoked", bad, one, 401}, {"tok-usedup", good, one, 401},
			{"tok-once", bad, one, 400}, {"tok-once", bad, one, 400}, {"tok-once", bad, one, 429},
		}, "once", 0},
		{"the configured token is not counted", Token, []step{
			{"initial-token", bad, one, 400}, {"initial-token", bad, one, 400}, {"initial-token", bad, one, 400},
			{"initial-token", good, one, 201},
		}, "", 0},
		{"open registration, per network", Open, []step{
			{"", bad, one, 400}, {"", bad, one, 400}, {"", good, one, 429}, {"", good, other, 201}, {"", "{not json", other, 400},
		}, "", 0},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := iatEnv(t)
			r.e.Mode = tt.mode
			r.e.Attempts = &ratelimit.Backoff{Counter: r.store, Free: 2, Base: time.Minute, Max: time.Hour, Now: r.e.Now}
			for i, s := range tt.steps {
				req := httptest.NewRequest("POST", "/register", strings.NewReader(s.body))
				req.RemoteAddr = s.addr
				if s.bearer != "" {
					req.Header.Set("Authorization", "Bearer "+s.bearer)
				}
				rec := httptest.NewRecorder()
				r.mux.ServeHTTP(rec, req)
				if rec.Code != s.want {
					t.Fatalf("step %d (%s from %s): %d %s, want %d", i, s.bearer, s.addr, rec.Code, rec.Body, s.want)
				}
				if s.want == 429 && (rec.Header().Get("Retry-After") != "60" || !strings.Contains(rec.Body.String(), `"slow_down"`)) {
					t.Fatalf("step %d: throttled with Retry-After %q and %s", i, rec.Header().Get("Retry-After"), rec.Body)
				}
			}
			if tt.token != "" && r.uses(tt.token) != tt.uses {
				t.Fatalf("%s has %d uses, want %d", tt.token, r.uses(tt.token), tt.uses)
			}
		})
	}
}

// TestManageThrottle: every change of a registered client, each of which
// may fetch its URLs again, counts against the client, successful or not;
// reading and deleting do not.
func TestManageThrottle(t *testing.T) {
	r := newRegEnv(t, Open)
	now := time.Now()
	r.e.Now = func() time.Time { return now }
	r.e.Attempts = &ratelimit.Backoff{Counter: r.store, Free: 2, Base: time.Minute, Max: time.Hour, Now: r.e.Now}
	st, c := r.do("POST", "/register", "", `{"redirect_uris":["https://a.example/cb"]}`)
	if st != 201 {
		t.Fatalf("register: %d %v", st, c)
	}
	id, tok := c["client_id"].(string), c["registration_access_token"].(string)
	body := `{"client_id":"` + id + `","redirect_uris":["https://b.example/cb"]}`
	for i, want := range []int{200, 400, 429, 429} {
		b := body
		if want == 400 {
			b = `{"client_id":"` + id + `","redirect_uris":["http://b.example/cb"]}`
		}
		if st, out := r.do("PUT", "/register/"+id, tok, b); st != want {
			t.Fatalf("update %d: %d %v, want %d", i, st, out, want)
		}
	}
	if st, _ := r.do("GET", "/register/"+id, tok, ""); st != 200 {
		t.Fatalf("read while changes are throttled: %d", st)
	}
	// A wrong registration access token is refused before anything counts.
	if st, _ := r.do("PUT", "/register/"+id, "wrong", body); st != 401 {
		t.Fatalf("update with a wrong token: %d", st)
	}
}
