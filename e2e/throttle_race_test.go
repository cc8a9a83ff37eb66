package e2e

import (
	"context"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
	"unicode/utf8"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// Throttling that holds under concurrency (online guessing, RFC 6819
// §4.4.3.6; user codes, RFC 8628 §5.1). Each test fires dozens of guesses at once, as
// an attacker with many connections would, and counts how many of them the
// server verified (answered as a wrong or right secret rather than as
// throttled): never more than the budget the server is configured with
// (server.New), however the requests interleave.

// Budgets and the first wait, as server.New configures them.
const (
	userFree    = 5  // logins per account
	ipFree      = 50 // logins per network, and user codes per network
	clientFree  = 10 // client authentications per client and network
	backoffBase = time.Second
)

// allowed is the most attempts of one key that may be verified within
// elapsed: the free ones, then one after backoffBase, one more after twice
// that, and so on. Most races end well within backoffBase, where it is
// free itself.
func allowed(free int, elapsed time.Duration) int {
	n, wait, at := free, backoffBase, backoffBase
	for at <= elapsed {
		n, wait = n+1, 2*wait
		at += wait
	}
	return n
}

// answer is the response to one request of a race.
type answer struct {
	Status int
	Header http.Header
	Body   string
}

// raceClient is a client with many connections to one server, keeping
// cookies, following no redirects. Its connections close with the test, so
// that the server's shutdown need not wait for them.
func raceClient(t *testing.T, jar http.CookieJar) *http.Client {
	c := &http.Client{Jar: jar, Timeout: 60 * time.Second,
		Transport:     &http.Transport{MaxIdleConnsPerHost: 100},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	t.Cleanup(c.CloseIdleConnections)
	return c
}

// race sends every request at once and returns the answers in order and
// how long the race took. The request at index late (none if negative) is
// held back until verified has held for free of the others' answers, or
// every other answer is in: it arrives once the budget is spent, while
// other guesses may still be in flight.
func race(t *testing.T, c *http.Client, reqs []*http.Request, late, free int, verified func(answer) bool) ([]answer, time.Duration) {
	t.Helper()
	answers := make([]answer, len(reqs))
	var mu sync.Mutex
	var once sync.Once
	seen, counted := 0, 0
	spent, start := make(chan struct{}), make(chan struct{})
	var wg sync.WaitGroup
	for i, req := range reqs {
		wg.Go(func() {
			<-start
			if i == late {
				<-spent
			}
			a := answer{}
			resp, err := c.Do(req)
			if err != nil {
				t.Errorf("request %d: %v", i, err)
			} else {
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				a = answer{Status: resp.StatusCode, Header: resp.Header, Body: string(body)}
			}
			mu.Lock()
			defer mu.Unlock()
			answers[i] = a
			if i == late {
				return
			}
			seen++
			if verified(a) {
				counted++
			}
			if counted >= free || seen == len(reqs)-1 || late < 0 {
				once.Do(func() { close(spent) })
			}
		})
	}
	began := time.Now()
	close(start)
	wg.Wait()
	return answers, time.Since(began)
}

// loginRequest is a POST /login of the browser's login form.
func loginRequest(t *testing.T, base, csrf, user, pw, forwardedFor string) *http.Request {
	t.Helper()
	form := url.Values{"csrf_token": {csrf}, "username": {user}, "password": {pw}}
	req, err := http.NewRequest("POST", base+"/login", strings.NewReader(form.Encode()))
	if err != nil {
		t.Fatal(err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if forwardedFor != "" {
		req.Header.Set("X-Forwarded-For", forwardedFor)
	}
	return req
}

// loginVerified: a login answered as a wrong (401) or right (303) password
// had its password checked; a throttled one (429) did not.
func loginVerified(t *testing.T) func(answer) bool {
	return func(a answer) bool {
		switch a.Status {
		case http.StatusUnauthorized, http.StatusSeeOther:
			return true
		case http.StatusTooManyRequests:
			if a.Header.Get("Retry-After") == "" {
				t.Errorf("429 without Retry-After")
			}
			return false
		}
		t.Errorf("login answered %d: %s", a.Status, clip(a.Body))
		return false
	}
}

// checkBound fails unless at most the allowed number of answers were
// verified, and the late right secret (at index late) was refused.
func checkBound(t *testing.T, what string, answers []answer, late, free int, elapsed time.Duration, verified func(answer) bool) int {
	t.Helper()
	n := 0
	for i, a := range answers {
		if i != late && verified(a) {
			n++
		}
	}
	if max := allowed(free, elapsed); n > max {
		t.Errorf("%s: %d of %d concurrent guesses were verified in %v, want at most %d", what, n, len(answers), elapsed.Round(time.Millisecond), max)
	}
	if late >= 0 && verified(answers[late]) && n+1 > allowed(free, elapsed) {
		t.Errorf("%s: the right secret, sent after the budget was spent, was verified (answer %d)", what, answers[late].Status)
	}
	return n
}

// startTrusting starts a server that believes X-Forwarded-For from
// loopback, as behind a reverse proxy, so that one test presents many
// client addresses.
func startTrusting(t *testing.T) *env {
	t.Helper()
	store, err := sqlite.Open(context.Background(), t.TempDir()+"/bawwab.db")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	return startNode(t, store, listen(t), "", &clock{}, func(c *config.Config) { c.TrustedProxies = []string{"127.0.0.0/8"} })
}

// loginCSRF opens the login page in a fresh cookie jar and returns the jar
// and the form's CSRF token: valid for every guess of the race.
func loginCSRF(t *testing.T, e *env) (http.CookieJar, string) {
	t.Helper()
	b := e.browser()
	return b.Jar, csrfOf(t, b.get("/login"))
}

// failedLogins counts login_failed audit events.
func failedLogins(t *testing.T, e *env) int {
	t.Helper()
	evs, err := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: "login_failed", Limit: 1000})
	if err != nil {
		t.Fatal(err)
	}
	return len(evs)
}

// TestThrottleRaceLoginOneAccount: 39 wrong passwords for one account from
// one address at once, then the right one: at most the account's budget of
// passwords is checked, and the right one, arriving once it is spent, does
// not get in.
func TestThrottleRaceLoginOneAccount(t *testing.T) {
	e := start(t)
	jar, csrf := loginCSRF(t, e)
	var reqs []*http.Request
	for i := range 39 {
		reqs = append(reqs, loginRequest(t, e.URL, csrf, userName, fmt.Sprintf("guess %d", i), ""))
	}
	reqs = append(reqs, loginRequest(t, e.URL, csrf, userName, userPassword, ""))
	late := len(reqs) - 1
	answers, elapsed := race(t, raceClient(t, jar), reqs, late, userFree, loginVerified(t))
	n := checkBound(t, "one account, one address", answers, late, userFree, elapsed, loginVerified(t))
	if got := failedLogins(t, e); got != n {
		t.Errorf("%d login_failed events for %d wrong passwords answered", got, n)
	}
	if answers[late].Status == http.StatusSeeOther && elapsed < backoffBase {
		t.Errorf("the right password got in while the account was throttled")
	}
}

// TestThrottleRaceLoginManyAccounts: one address guessing a different
// account with each request is held to the address's budget.
func TestThrottleRaceLoginManyAccounts(t *testing.T) {
	e := start(t)
	jar, csrf := loginCSRF(t, e)
	var reqs []*http.Request
	for i := range 150 {
		reqs = append(reqs, loginRequest(t, e.URL, csrf, fmt.Sprintf("user%d", i), "guess", ""))
	}
	reqs = append(reqs, loginRequest(t, e.URL, csrf, userName, userPassword, ""))
	late := len(reqs) - 1
	answers, elapsed := race(t, raceClient(t, jar), reqs, late, ipFree, loginVerified(t))
	checkBound(t, "many accounts, one address", answers, late, ipFree, elapsed, loginVerified(t))
}

// TestThrottleRaceLoginManyAddresses: one account guessed from 40
// addresses at once (through a trusted proxy) is held to the account's
// budget.
func TestThrottleRaceLoginManyAddresses(t *testing.T) {
	e := startTrusting(t)
	jar, csrf := loginCSRF(t, e)
	var reqs []*http.Request
	for i := range 40 {
		reqs = append(reqs, loginRequest(t, e.URL, csrf, userName, fmt.Sprintf("guess %d", i), fmt.Sprintf("198.51.100.%d", i+1)))
	}
	reqs = append(reqs, loginRequest(t, e.URL, csrf, userName, userPassword, "203.0.113.200"))
	late := len(reqs) - 1
	answers, elapsed := race(t, raceClient(t, jar), reqs, late, userFree, loginVerified(t))
	checkBound(t, "one account, many addresses", answers, late, userFree, elapsed, loginVerified(t))
}

// TestThrottleRaceLoginIPv6: addresses in one IPv6 /64 share one budget,
// since one subscriber holds them all; the next /64 has its own.
//
// The clock stands still: the budget's first wait (backoffBase) is shorter
// than a loaded machine may take between the race and the guesses after
// it, and past that wait one more guess is rightly let through.
func TestThrottleRaceLoginIPv6(t *testing.T) {
	e := startTrusting(t)
	e.Clock.Freeze()
	jar, csrf := loginCSRF(t, e)
	var reqs []*http.Request
	for i := range 80 {
		reqs = append(reqs, loginRequest(t, e.URL, csrf, fmt.Sprintf("user%d", i), "guess", fmt.Sprintf("2001:db8:1:2:%x::%x", i, i+1)))
	}
	reqs = append(reqs, loginRequest(t, e.URL, csrf, userName, userPassword, "2001:db8:1:2:ffff:ffff:ffff:fffe"))
	late := len(reqs) - 1
	c := raceClient(t, jar)
	answers, elapsed := race(t, c, reqs, late, ipFree, loginVerified(t))
	checkBound(t, "one /64", answers, late, ipFree, elapsed, loginVerified(t))
	// The same /64 written another way is the same network; the next /64 is
	// not throttled.
	jar, csrf = loginCSRF(t, e)
	c = raceClient(t, jar)
	for _, tc := range []struct {
		addr string
		want int
	}{
		{"2001:DB8:1:2:0:0:0:1", http.StatusTooManyRequests},
		{"2001:db8:1:3::1", http.StatusUnauthorized},
	} {
		resp, err := c.Do(loginRequest(t, e.URL, csrf, "user-next", "guess", tc.addr))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != tc.want {
			t.Errorf("guess from %s: %d, want %d", tc.addr, resp.StatusCode, tc.want)
		}
	}
}

// TestThrottleRaceDevice (RFC 8628 §5.1): user codes guessed at /device
// from one address at once are held to the address's budget, and the
// right code, arriving once it is spent, is refused too.
func TestThrottleRaceDevice(t *testing.T) {
	e := start(t)
	status, d := e.deviceAuthorize("tv", "openid")
	wantStatus(t, status, 200, "device_authorization", d)
	b := e.browser()
	csrf := csrfOf(t, b.get("/device"))
	codeRequest := func(code string) *http.Request {
		form := url.Values{"csrf_token": {csrf}, "user_code": {code}}
		req, _ := http.NewRequest("POST", e.URL+"/device", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return req
	}
	var reqs []*http.Request
	for i := range 300 {
		reqs = append(reqs, codeRequest(fmt.Sprintf("ZZZZ-%04d", i)))
	}
	reqs = append(reqs, codeRequest(d.UserCode))
	late := len(reqs) - 1
	verified := func(a answer) bool {
		switch a.Status {
		case http.StatusBadRequest, http.StatusFound, http.StatusSeeOther: // wrong code; right code, on to login
			return true
		case http.StatusTooManyRequests:
			return false
		}
		t.Errorf("/device answered %d: %s", a.Status, clip(a.Body))
		return false
	}
	answers, elapsed := race(t, raceClient(t, b.Jar), reqs, late, ipFree, verified)
	checkBound(t, "user codes", answers, late, ipFree, elapsed, verified)
}

// TestThrottleRaceClientAuth: wrong client secrets sent at once with
// client_secret_basic (RFC 6749 §2.3.1) are held to the client's budget
// per address, and the right secret, arriving once it is spent, is refused.
func TestThrottleRaceClientAuth(t *testing.T) {
	e := start(t)
	tokenRequest := func(secret string) *http.Request {
		req, _ := http.NewRequest("POST", e.URL+"/token", strings.NewReader("grant_type=client_credentials&scope=files.read"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("robot", url.QueryEscape(secret))
		return req
	}
	// A client that authenticates well is not slowed by the throttle, even
	// with many requests at once.
	var good []*http.Request
	for range 40 {
		good = append(good, tokenRequest(e.RobotSecret))
	}
	answers, _ := race(t, raceClient(t, nil), good, -1, 0, func(answer) bool { return true })
	for i, a := range answers {
		if a.Status != http.StatusOK {
			t.Fatalf("good request %d of 40 at once: %d %s", i, a.Status, clip(a.Body))
		}
	}

	var reqs []*http.Request
	for i := range 40 {
		reqs = append(reqs, tokenRequest(fmt.Sprintf("guess-%d", i)))
	}
	reqs = append(reqs, tokenRequest(e.RobotSecret))
	late := len(reqs) - 1
	verified := func(a answer) bool {
		switch {
		case a.Status == http.StatusOK:
			return true
		case a.Status == http.StatusUnauthorized && a.Header.Get("Retry-After") == "":
			return true // wrong secret
		case a.Status == http.StatusUnauthorized || a.Status == http.StatusTooManyRequests:
			return false // throttled, with Retry-After
		}
		t.Errorf("/token answered %d: %s", a.Status, clip(a.Body))
		return false
	}
	answers, elapsed := race(t, raceClient(t, nil), reqs, late, clientFree, verified)
	checkBound(t, "client secrets", answers, late, clientFree, elapsed, verified)
}

// TestThrottleRaceClientAuthEndpoints: client secret guesses spread at once
// over every endpoint that authenticates clients share one budget.
func TestThrottleRaceClientAuthEndpoints(t *testing.T) {
	e := start(t)
	forms := map[string]string{
		"/token":                "grant_type=client_credentials&scope=files.read",
		"/introspect":           "token=x",
		"/revoke":               "token=x",
		"/par":                  "response_type=code&redirect_uri=" + url.QueryEscape(notesRedirect) + "&scope=openid",
		"/device_authorization": "scope=openid",
	}
	paths := []string{"/token", "/introspect", "/revoke", "/par", "/device_authorization"}
	var reqs []*http.Request
	for i := range 50 {
		path := paths[i%len(paths)]
		req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(forms[path]))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("notes", fmt.Sprintf("guess-%d", i))
		reqs = append(reqs, req)
	}
	verified := func(a answer) bool {
		switch {
		case a.Status == http.StatusUnauthorized && a.Header.Get("Retry-After") == "":
			return true // wrong secret
		case a.Status == http.StatusUnauthorized || a.Status == http.StatusTooManyRequests:
			return false // throttled, with Retry-After
		}
		t.Errorf("answered %d: %s", a.Status, clip(a.Body))
		return false
	}
	answers, elapsed := race(t, raceClient(t, nil), reqs, -1, clientFree, verified)
	checkBound(t, "client secrets over five endpoints", answers, -1, clientFree, elapsed, verified)
}

// TestThrottleRaceMultiNode: guesses for one account spread over two nodes
// of one PostgreSQL database at once are held to one budget: the attempt
// is counted in the database before the password is checked.
func TestThrottleRaceMultiNode(t *testing.T) {
	nodes := startCluster(t, 2)
	jar, csrf := loginCSRF(t, nodes[0])
	var reqs []*http.Request
	for i := range 40 {
		reqs = append(reqs, loginRequest(t, nodes[i%2].URL, csrf, userName, fmt.Sprintf("guess %d", i), ""))
	}
	reqs = append(reqs, loginRequest(t, nodes[1].URL, csrf, userName, userPassword, ""))
	late := len(reqs) - 1
	answers, elapsed := race(t, raceClient(t, jar), reqs, late, userFree, loginVerified(t))
	n := checkBound(t, "two nodes", answers, late, userFree, elapsed, loginVerified(t))
	if got := failedLogins(t, nodes[0]); got != n {
		t.Errorf("%d login_failed events for %d wrong passwords answered", got, n)
	}
}

// TestOddNames plays names a database may refuse or a throttle may count
// apart: user names, client ids and user codes that are not valid UTF-8 or
// hold NUL, case variants of a user name, and a long non-ASCII user name.
// Each is answered as wrong credentials (never a server error), counted,
// and audited.
func TestOddNames(t *testing.T) { testOddNames(t, start(t)) }

// TestOddNamesPostgres: the same on PostgreSQL, whose text columns refuse
// invalid UTF-8 and NUL.
func TestOddNamesPostgres(t *testing.T) { testOddNames(t, startCluster(t, 1)[0]) }

func testOddNames(t *testing.T, e *env) {
	ctx := context.Background()
	long := "1" + strings.Repeat("أمل", 10) // 61 bytes, one script: audit details are clipped at 40, within a letter
	if _, err := admin.AddUser(ctx, e.Store, admin.UserSpec{Username: long, Password: "another good password"}, testPassword); err != nil {
		t.Fatal(err)
	}
	jar, csrf := loginCSRF(t, e)
	c := raceClient(t, jar)
	do := func(req *http.Request) int {
		t.Helper()
		resp, err := c.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		return resp.StatusCode
	}
	for _, tc := range []struct{ name, user, pw string }{
		{"invalid UTF-8", "am\xffal", userPassword},
		{"NUL", "am\x00al", userPassword},
		{"upper case", "AMAL", userPassword},
		{"title case", "Amal", userPassword},
		{"trailing space", "amal ", userPassword},
		{"fullwidth", "ａｍａｌ", userPassword},
		{"very long", strings.Repeat("a", 15_000), userPassword},
		{"long non-ASCII, wrong password", long, "wrong"},
	} {
		if got := do(loginRequest(t, e.URL, csrf, tc.user, tc.pw, "")); got != http.StatusUnauthorized {
			t.Errorf("login as %s: %d, want 401", tc.name, got)
		}
	}
	evs, err := e.Store.ListAuditEvents(ctx, storage.AuditFilter{Type: "login_failed"})
	if err != nil || len(evs) != 1 || !utf8.ValidString(evs[0].Detail) {
		t.Errorf("failed login of the long non-ASCII name: audit events %+v (%v), want one", evs, err)
	}
	for _, id := range []string{"rob\xffot", "rob\x00ot"} {
		req, _ := http.NewRequest("POST", e.URL+"/token", strings.NewReader("grant_type=client_credentials"))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth(url.QueryEscape(id), "x")
		if got := do(req); got != http.StatusUnauthorized {
			t.Errorf("client id %q: %d, want 401", id, got)
		}
	}
	b := e.browser()
	dc := csrfOf(t, b.get("/device"))
	for _, code := range []string{"BCDF\xffGHJK", "BCDF\x00GHJK"} {
		if p := b.post("/device", url.Values{"csrf_token": {dc}, "user_code": {code}}); p.Status != http.StatusBadRequest {
			t.Errorf("user code %q: %d, want 400", code, p.Status)
		}
	}
	// Each odd name counted against the network: 8 logins above, 42 more
	// fill its budget of 50.
	for i := range ipFree - 8 {
		if got := do(loginRequest(t, e.URL, csrf, fmt.Sprintf("am\x00al%d", i), "x", "")); got != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i, got)
		}
	}
	if got := do(loginRequest(t, e.URL, csrf, "am\xffal", "x", "")); got != http.StatusTooManyRequests {
		t.Errorf("guess beyond the network's budget: %d, want 429", got)
	}
}
