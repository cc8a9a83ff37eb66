package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/storage"
)

// enabledAdmins counts the users who may sign in to the admin console.
func enabledAdmins(t *testing.T, e *env) int {
	t.Helper()
	users, err := e.Store.ListUsers(t.Context())
	if err != nil {
		t.Fatal(err)
	}
	n := 0
	for _, u := range users {
		if u.Admin && !u.Disabled {
			n++
		}
	}
	return n
}

// adminRace sends the two admin API requests at the same moment and
// returns their statuses and error codes.
func adminRace(e *env, reqs [2][2]string) (status [2]int, code [2]string, err error) {
	var wg sync.WaitGroup
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, rq := range reqs {
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest(rq[0], e.AdminURL+rq[1], nil)
			req.Header.Set("Authorization", "Bearer "+adminToken)
			<-start
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			var out struct {
				Error string `json:"error"`
			}
			_ = json.Unmarshal(raw, &out)
			status[i], code[i] = resp.StatusCode, out.Error
		}()
	}
	close(start)
	wg.Wait()
	if errs[0] != nil {
		return status, code, errs[0]
	}
	return status, code, errs[1]
}

// TestLastAdminRace: two admins taking each other's role, disabling or
// deleting each other through the admin API at the same moment, round
// after round: one request succeeds, the other is 409 last_admin, and an
// enabled admin always remains.
func TestLastAdminRace(t *testing.T) { testLastAdminRace(t, start(t)) }

// TestLastAdminRacePostgres is TestLastAdminRace on PostgreSQL, whose
// READ COMMITTED transactions would each count the other admin still
// there.
func TestLastAdminRacePostgres(t *testing.T) {
	store := postgresStore(t)
	testLastAdminRace(t, startOn(t, store))
}

func testLastAdminRace(t *testing.T, e *env) {
	kinds := []struct{ method, rest string }{{"DELETE", "/admin"}, {"POST", "/disable"}, {"DELETE", ""}}
	for round := range 12 {
		a, b := addConsoleUser(t, e, fmt.Sprintf("racer%da", round)), addConsoleUser(t, e, fmt.Sprintf("racer%db", round))
		makeAdmin(t, e, a, true)
		makeAdmin(t, e, b, true)
		k := kinds[round%len(kinds)]
		status, code, err := adminRace(e, [2][2]string{{k.method, "/admin/users/" + a + k.rest}, {k.method, "/admin/users/" + b + k.rest}})
		if err != nil {
			t.Fatal(err)
		}
		ok := (status[0] < 300) != (status[1] < 300)
		for i := range status {
			if status[i] >= 300 && (status[i] != http.StatusConflict || code[i] != "last_admin") {
				ok = false
			}
		}
		if !ok {
			t.Fatalf("round %d, %s %s: statuses %v, codes %v; want one success and one 409 last_admin", round, k.method, k.rest, status, code)
		}
		if n := enabledAdmins(t, e); n != 1 {
			t.Fatalf("round %d: %d enabled admins", round, n)
		}
		for _, id := range []string{a, b} { // the survivor steps down, for the next round
			if err := e.Store.SetUserAdmin(t.Context(), id, false); err != nil && !errors.Is(err, storage.ErrNotFound) {
				t.Fatal(err)
			}
		}
	}
}

// TestLastAdminOneByOne: an admin demotes the only other one, then
// themself: the second is refused, and so are disabling and deleting the
// last admin; a store with no admin at all disables and deletes users as
// before.
func TestLastAdminOneByOne(t *testing.T) {
	e := start(t)
	a, b := addConsoleUser(t, e, "amira"), addConsoleUser(t, e, "basma")
	makeAdmin(t, e, a, true)
	makeAdmin(t, e, b, true)
	if status, u := e.adminUser("DELETE", b, "/admin", nil); status != 200 || u["admin"] != false {
		t.Fatalf("demote the other admin: %d %v", status, u)
	}
	for _, rq := range [][2]string{{"DELETE", "/admin"}, {"POST", "/disable"}, {"DELETE", ""}} {
		status, out := e.adminUser(rq[0], a, rq[1], nil)
		if status != http.StatusConflict || out["error"] != "last_admin" || !strings.Contains(fmt.Sprint(out["error_description"]), "no enabled admin") {
			t.Fatalf("%s %s of the last admin: %d %v", rq[0], rq[1], status, out)
		}
	}
	if u, err := e.Store.GetUser(t.Context(), a); err != nil || !u.Admin || u.Disabled {
		t.Fatalf("the last admin after the refusals: %+v %v", u, err)
	}
	// A disabled admin is no way in: the last enabled one stays refused.
	makeAdmin(t, e, b, true)
	if status, _ := e.adminUser("POST", b, "/disable", nil); status != 200 {
		t.Fatalf("disable the other admin: %d", status)
	}
	if status, _ := e.adminUser("DELETE", a, "/admin", nil); status != http.StatusConflict {
		t.Fatalf("demote the last enabled admin beside a disabled one: %d", status)
	}
	// No admin at all (a store of before the role): nothing is refused.
	makeAdmin(t, e, a, false)
	if status, _ := e.adminUser("POST", a, "/disable", nil); status != 200 {
		t.Fatalf("disable with no admin: %d", status)
	}
	if status, _ := e.adminUser("DELETE", a, "", nil); status != 204 {
		t.Fatalf("delete with no admin: %d", status)
	}
}

// TestCLILastAdmin: on the store directly, the command line refuses to
// take the last admin's role (or disable or delete them) unless --force,
// and makes an admin again; --force with --server is refused, and the
// server refuses the change.
func TestCLILastAdmin(t *testing.T) {
	run := newCLI(t, "BAWWAB_ADMIN_TOKEN="+adminToken).run
	dir := t.TempDir()
	run(true, "user", "add", "--username", "nadia", "--admin", "--password", "a long and unusual phrase", "--data-dir", dir)
	var users []struct {
		ID string `json:"id"`
	}
	if err := json.Unmarshal([]byte(run(true, "user", "list", "-o", "json", "--data-dir", dir)), &users); err != nil || len(users) != 1 {
		t.Fatalf("user list: %v %v", users, err)
	}
	for _, args := range [][]string{{"user", "admin", "nadia", "--off"}, {"user", "disable", "nadia"}, {"user", "delete", users[0].ID}} {
		if out := run(false, append(args, "--data-dir", dir)...); !strings.Contains(out, "no enabled admin") {
			t.Fatalf("%v of the last admin:\n%s", args, out)
		}
	}
	run(true, "user", "admin", "nadia", "--off", "--force", "--data-dir", dir)
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !strings.Contains(out, `"admin": false`) {
		t.Fatalf("user admin --off --force:\n%s", out)
	}
	run(true, "user", "admin", "nadia", "--data-dir", dir) // recovery
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !strings.Contains(out, `"admin": true`) {
		t.Fatalf("user admin (recovery):\n%s", out)
	}

	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	if out := run(false, "user", "admin", userName, "--off", "--force", "--server", e.AdminURL); !strings.Contains(out, "--force works only on the store directly") {
		t.Fatalf("--force with --server:\n%s", out)
	}
	if out := run(false, "user", "admin", userName, "--off", "--server", e.AdminURL); !strings.Contains(out, "no enabled admin") {
		t.Fatalf("remote demotion of the last admin:\n%s", out)
	}
	if out := run(true, "user", "admin", "--help"); !strings.Contains(out, "--force") || !strings.Contains(out, "last enabled admin") {
		t.Fatalf("help of user admin:\n%s", out)
	}
}

// TestDeleteAccountLastAdmin: the last enabled admin cannot delete their
// own account from the Security pages (409, the page says why, the
// account stays); once another admin exists, they can.
func TestDeleteAccountLastAdmin(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	b.authorize(e.notesRequest("openid"), "openid")
	p := b.deleteAccount(userPassword)
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "the last admin") {
		t.Fatalf("the last admin deletes their account: %d %s", p.Status, p.Body)
	}
	if _, err := e.Store.GetUser(t.Context(), e.UserID); err != nil {
		t.Fatalf("the last admin's account went: %v", err)
	}
	makeAdmin(t, e, addConsoleUser(t, e, "deputy"), true)
	if p := b.deleteAccount(userPassword); p.Status != http.StatusOK {
		t.Fatalf("delete with another admin: %d %s", p.Status, p.Body)
	}
	if _, err := e.Store.GetUser(t.Context(), e.UserID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the account is still there: %v", err)
	}
}

// TestConsoleLastAdminRace: two admins, each signed in to the console,
// take each other's role at the same moment: one form succeeds, the other
// is refused (409 with the page that says the user is the last enabled
// admin, or 403 when the other's change came first), and one admin remains.
func TestConsoleLastAdminRace(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	other := addConsoleUser(t, e, "hala")
	makeAdmin(t, e, other, true)
	type side struct {
		b      *browser
		target string
		csrf   string
	}
	sides := []*side{{b: e.browser(), target: other}, {b: e.browser(), target: e.UserID}}
	for i, s := range sides {
		user, pw := userName, userPassword
		if i == 1 {
			user, pw = "hala", "a long and unusual phrase"
		}
		wantStatus(t, s.b.consoleSignIn(user, pw).Status, http.StatusOK, "console sign-in", nil)
		p := s.b.get(e.AdminURL + "/console/users")
		m := consoleCSRF.FindStringSubmatch(p.Body)
		if m == nil {
			t.Fatalf("users page has no CSRF token: %d %s", p.Status, p.Body)
		}
		s.csrf = m[1]
	}
	var wg sync.WaitGroup
	status := make([]int, 2)
	bodies := make([]string, 2)
	errs := make([]error, 2)
	start := make(chan struct{})
	for i, s := range sides {
		form := url.Values{"csrf_token": {s.csrf}, "admin": {"off"}}
		req, _ := http.NewRequest("POST", e.AdminURL+"/console/users/"+s.target+"/role", strings.NewReader(form.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-start
			resp, err := s.b.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			defer resp.Body.Close()
			raw, _ := io.ReadAll(resp.Body)
			status[i], bodies[i] = resp.StatusCode, string(raw)
		}()
	}
	close(start)
	wg.Wait()
	if err := errors.Join(errs...); err != nil {
		t.Fatal(err)
	}
	// The loser is refused by the store (409, the page says why) or, when
	// the winner's change came first, as no admin any more (403).
	won, lost := 0, 0
	for i := range status {
		switch {
		case status[i] == http.StatusSeeOther:
			won++
		case status[i] == http.StatusConflict && strings.Contains(bodies[i], "last enabled admin"),
			status[i] == http.StatusForbidden:
			lost++
		}
	}
	if won != 1 || lost != 1 {
		t.Fatalf("console race: statuses %v; want one 303 and one 409 or 403", status)
	}
	if n := enabledAdmins(t, e); n != 1 {
		t.Fatalf("%d enabled admins", n)
	}
}

// demotingStore takes the admin role of whoever signs in next, and ends
// their sessions, just before the session of that sign-in is stored: the
// demotion an operator makes while the admin's console sign-in is between
// its check of the role and the storing of its session.
type demotingStore struct {
	storage.Storage
	armed atomic.Bool
}

func (s *demotingStore) CreateSession(ctx context.Context, x storage.Session) error {
	if s.armed.CompareAndSwap(true, false) {
		if err := s.Storage.SetUserAdmin(ctx, x.UserID, false); err != nil {
			return err
		}
		if _, err := s.Storage.DeleteUserSessions(ctx, x.UserID); err != nil {
			return err
		}
	}
	return s.Storage.CreateSession(ctx, x)
}

// TestConsoleSignInRacingDemotion: an admin's console sign-in whose role
// is taken between the callback's check and the storing of the session
// gets no session (403, audited): given the role again, the cookie of
// that sign-in opens no console page.
func TestConsoleSignInRacingDemotion(t *testing.T) {
	store := &demotingStore{Storage: sqliteStore(t)}
	e := startOn(t, store)
	makeAdmin(t, e, e.UserID, true)
	b := e.signIn(userPassword)
	store.armed.Store(true)
	p, _ := b.consoleFlow("")
	if p.Status != http.StatusForbidden || store.armed.Load() {
		t.Fatalf("console sign-in racing the demotion: %d (demoted: %v) %s", p.Status, !store.armed.Load(), p.Body)
	}
	makeAdmin(t, e, e.UserID, true)
	if b.consoleSession() {
		t.Fatal("the console session of a sign-in racing the demotion came back with the role")
	}
	if evs := auditOf(t, e, audit.ConsoleRefused); len(evs) != 1 || evs[0].UserID != e.UserID {
		t.Fatalf("refusal audit: %+v", evs)
	}
}
