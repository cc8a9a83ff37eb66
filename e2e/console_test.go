package e2e

import (
	"context"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/console"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// consoleSignIn signs the browser in to the admin console as user,
// through bawwab's login and consent pages; it returns the console's
// last answer (the callback's page, or a refusal).
func (b *browser) consoleSignIn(user, pw string) page {
	b.e.t.Helper()
	p := b.get(b.e.AdminURL + "/console/login")
	for range 8 {
		if p.Status != http.StatusFound && p.Status != http.StatusSeeOther {
			return p
		}
		switch {
		case strings.HasPrefix(p.Location, "/login"):
			p = b.login(p.Location, user, pw)
		case strings.HasPrefix(p.Location, "/consent"):
			p = b.consent(p.Location, true, "openid")
		default:
			p = b.get(p.Location)
		}
	}
	b.e.t.Fatal("console sign-in: too many redirects")
	return p
}

// addConsoleUser adds a user who is not an admin.
func addConsoleUser(t *testing.T, e *env, name string) string {
	t.Helper()
	id, err := admin.AddUser(context.Background(), e.Store, admin.UserSpec{Username: name, Password: "a long and unusual phrase"}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

func makeAdmin(t *testing.T, e *env, id string, on bool) {
	t.Helper()
	if err := e.Store.SetUserAdmin(context.Background(), id, on); err != nil {
		t.Fatal(err)
	}
}

func auditOf(t *testing.T, e *env, typ string) []storage.AuditEvent {
	t.Helper()
	evs, err := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: typ})
	if err != nil {
		t.Fatal(err)
	}
	return evs
}

// TestConsoleSignIn: an admin signs in to the console through bawwab's
// own login (code, PKCE, state, nonce) and gets a session cookie of the
// console's own (HttpOnly, SameSite=Strict, under /console/); the pages
// cannot be framed; a user without the admin role is refused with 403 and
// an audit event; an admin whose role is taken is out at the next page.
func TestConsoleSignIn(t *testing.T) {
	e := start(t)
	if status, u := e.adminUser("PUT", e.UserID, "/admin", nil); status != 200 || u["admin"] != true {
		t.Fatalf("give the admin role: %d %v", status, u)
	}
	b := e.browser()
	if p := b.get(e.AdminURL + "/console/"); p.Status != http.StatusSeeOther || p.Location != "/console/login" {
		t.Fatalf("console without a session: %d %s", p.Status, p.Location)
	}
	start := b.get(e.AdminURL + "/console/login")
	u, err := url.Parse(start.Location)
	if err != nil || !strings.HasPrefix(start.Location, e.URL+"/authorize?") {
		t.Fatalf("console sign-in starts at %q", start.Location)
	}
	q := u.Query()
	for _, k := range []string{"state", "nonce", "code_challenge"} {
		if len(q.Get(k)) < 40 {
			t.Fatalf("console authorization request lacks %s: %s", k, u.RawQuery)
		}
	}
	if q.Get("client_id") != console.ClientID || q.Get("code_challenge_method") != "S256" || !strings.HasSuffix(q.Get("redirect_uri"), "/console/callback") {
		t.Fatalf("console authorization request: %s", u.RawQuery)
	}

	signedIn := b.consoleSignIn(userName, userPassword)
	wantStatus(t, signedIn.Status, http.StatusOK, "console callback", signedIn.Body)
	if !strings.Contains(signedIn.Body, `http-equiv="refresh"`) {
		t.Fatalf("callback page does not go on to the console: %s", signedIn.Body)
	}
	var cookie *http.Cookie
	au, _ := url.Parse(e.AdminURL + "/console/")
	for _, c := range b.Jar.Cookies(au) {
		if c.Name == console.SessionCookie {
			cookie = c
		}
	}
	if cookie == nil {
		t.Fatal("no console session cookie")
	}
	dash := b.get(e.AdminURL + "/console/")
	wantStatus(t, dash.Status, http.StatusOK, "dashboard", dash.Body)
	if !strings.Contains(dash.Body, `id="count-clients"`) || !strings.Contains(dash.Body, `id="operator">`+userName) {
		t.Fatalf("dashboard: %s", dash.Body)
	}
	if evs := auditOf(t, e, audit.ConsoleSignIn); len(evs) != 1 || evs[0].UserID != e.UserID {
		t.Fatalf("console sign-in audit: %+v", evs)
	}

	// The cookie's attributes, as set.
	raw := rawConsoleCookie(t, e, b)
	for _, want := range []string{"Path=/console/", "HttpOnly", "SameSite=Strict"} {
		if !strings.Contains(raw, want) {
			t.Fatalf("console cookie %q lacks %s", raw, want)
		}
	}

	// No framing, no script.
	resp, err := b.Get(e.AdminURL + "/console/")
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
		strings.Contains(resp.Header.Get("Content-Security-Policy"), "script-src") {
		t.Fatalf("console headers: %v", resp.Header)
	}

	// The last enabled admin keeps the role: 409, and the console stays open.
	if status, u := e.adminUser("DELETE", e.UserID, "/admin", nil); status != http.StatusConflict || u["error"] != "last_admin" {
		t.Fatalf("take the last admin's role: %d %v", status, u)
	}
	if p := b.get(e.AdminURL + "/console/"); p.Status != http.StatusOK {
		t.Fatalf("console after a refused demotion: %d", p.Status)
	}
	// With another admin, the role taken through the admin API: audited,
	// out at the next page, and the console session ended: the role given
	// again does not bring the old cookie back.
	keeper := addConsoleUser(t, e, "keeper")
	makeAdmin(t, e, keeper, true)
	if status, u := e.adminUser("DELETE", e.UserID, "/admin", nil); status != 200 || u["admin"] != false {
		t.Fatalf("take the admin role: %d %v", status, u)
	}
	if evs := auditOf(t, e, audit.AdminRevoked); len(evs) != 1 || evs[0].UserID != e.UserID {
		t.Fatalf("admin role taken, audit: %+v", evs)
	}
	if p := b.get(e.AdminURL + "/console/"); p.Status != http.StatusSeeOther {
		t.Fatalf("console after the admin role was taken: %d", p.Status)
	}
	if status, u := e.adminUser("PUT", e.UserID, "/admin", nil); status != 200 || u["admin"] != true {
		t.Fatalf("give the admin role again: %d %v", status, u)
	}
	if p := b.get(e.AdminURL + "/console/"); p.Status != http.StatusSeeOther || p.Location != "/console/login" {
		t.Fatalf("old console session after the role was given again: %d %s", p.Status, p.Location)
	}
	makeAdmin(t, e, keeper, false)
	makeAdmin(t, e, e.UserID, false)

	// A user without the role: refused, audited, no session.
	badr := addConsoleUser(t, e, "badr")
	other := e.browser()
	refused := other.consoleSignIn("badr", "a long and unusual phrase")
	wantStatus(t, refused.Status, http.StatusForbidden, "non-admin at the console", refused.Body)
	if !strings.Contains(refused.Body, ui.T("en", "console.not_admin")) {
		t.Fatalf("refusal page: %s", refused.Body)
	}
	if evs := auditOf(t, e, audit.ConsoleRefused); len(evs) != 1 || evs[0].UserID != badr {
		t.Fatalf("console refusal audit: %+v", evs)
	}
	if p := other.get(e.AdminURL + "/console/"); p.Status != http.StatusSeeOther {
		t.Fatalf("refused user reaches the console: %d", p.Status)
	}
}

// rawConsoleCookie signs in again and returns the console cookie's
// Set-Cookie line from the callback.
func rawConsoleCookie(t *testing.T, e *env, b *browser) string {
	t.Helper()
	p := b.get(e.AdminURL + "/console/login")
	for range 8 {
		if strings.Contains(p.Location, "/console/callback") {
			resp, err := b.Get(p.Location)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			for _, line := range resp.Header.Values("Set-Cookie") {
				if strings.HasPrefix(line, console.SessionCookie+"=") {
					return line
				}
			}
			t.Fatalf("callback sets no console cookie: %v", resp.Header)
		}
		p = b.get(p.Location)
	}
	t.Fatal("no callback")
	return ""
}

var consoleCSRF = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// TestConsoleForms: every form needs the console session's CSRF token
// (403 and nothing done without it, or with the token of bawwab's own
// pages); actions go through the admin API under the operator's name; a
// forged or replayed callback gives no session.
func TestConsoleForms(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	badr := addConsoleUser(t, e, "badr")
	b := e.browser()
	wantStatus(t, b.consoleSignIn(userName, userPassword).Status, http.StatusOK, "console sign-in", nil)
	page := b.get(e.AdminURL + "/console/users")
	wantStatus(t, page.Status, http.StatusOK, "users page", page.Body)
	m := consoleCSRF.FindStringSubmatch(page.Body)
	if m == nil {
		t.Fatalf("users page has no CSRF token: %s", page.Body)
	}
	disable := e.AdminURL + "/console/users/" + badr + "/disable"
	forged := "A" + m[1][1:]
	if forged == m[1] {
		forged = "B" + m[1][1:]
	}
	for name, form := range map[string]url.Values{
		"missing": {},
		"forged":  {"csrf_token": {forged}},
	} {
		p := b.post(disable, form)
		wantStatus(t, p.Status, http.StatusForbidden, "disable with a "+name+" CSRF token", p.Body)
	}
	if u, _ := e.Store.GetUser(context.Background(), badr); u.Disabled {
		t.Fatal("a form without the CSRF token disabled the user")
	}
	if evs := auditOf(t, e, audit.CSRFRejected); len(evs) != 2 {
		t.Fatalf("CSRF refusals audited: %+v", evs)
	}
	// Without a console session (bawwab's own cookie only): 403.
	if p := e.browser().post(disable, url.Values{"csrf_token": {m[1]}}); p.Status != http.StatusForbidden {
		t.Fatalf("form without a console session: %d", p.Status)
	}

	p := b.post(disable, url.Values{"csrf_token": {m[1]}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", p.Status, p.Body)
	}
	if u, _ := e.Store.GetUser(context.Background(), badr); !u.Disabled {
		t.Fatal("the console did not disable the user")
	}
	evs := auditOf(t, e, audit.UserDisabled)
	if len(evs) != 1 || !strings.Contains(evs[0].Detail, "operator="+userName+" (console)") {
		t.Fatalf("disable audit: %+v", evs)
	}
	// The role, given through the console, audited under the operator;
	// not one's own.
	if p := b.post(e.AdminURL+"/console/users/"+badr+"/role", url.Values{"csrf_token": {m[1]}, "admin": {"on"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("make admin: %d %s", p.Status, p.Body)
	}
	if u, _ := e.Store.GetUser(context.Background(), badr); !u.Admin {
		t.Fatal("the console did not give the admin role")
	}
	if evs := auditOf(t, e, audit.AdminGranted); len(evs) != 1 || evs[0].UserID != badr || !strings.Contains(evs[0].Detail, "operator="+userName+" (console)") {
		t.Fatalf("admin role audit: %+v", evs)
	}
	if p := b.post(e.AdminURL+"/console/users/"+e.UserID+"/role", url.Values{"csrf_token": {m[1]}, "admin": {"off"}}); p.Status != http.StatusBadRequest {
		t.Fatalf("taking one's own role: %d", p.Status)
	}
	if u, _ := e.Store.GetUser(context.Background(), e.UserID); !u.Admin {
		t.Fatal("the admin took their own role")
	}
	// The admin cannot disable themself.
	if p := b.post(e.AdminURL+"/console/users/"+e.UserID+"/disable", url.Values{"csrf_token": {m[1]}}); p.Status != http.StatusBadRequest {
		t.Fatalf("self-disable: %d", p.Status)
	}

	// The audit log, filtered and paged: 60 events of one user, 50 on
	// the first page, the 10 older ones on the next.
	base := e.Clock.Now().Add(-time.Hour)
	for i := range 60 {
		if err := e.Store.AddAuditEvent(context.Background(), storage.AuditEvent{ID: fmt.Sprintf("pager-%02d", i), Time: base.Add(time.Duration(i) * time.Millisecond),
			Type: audit.Login, UserID: "pager", IP: "192.0.2.1", Detail: fmt.Sprintf("event %02d", i), ExpiresAt: base.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	first := b.get(e.AdminURL + "/console/audit?user=pager")
	older := regexp.MustCompile(`id="older" href="([^"]+)"`).FindStringSubmatch(first.Body)
	if n := strings.Count(first.Body, "event "); n != 50 || older == nil || !strings.Contains(first.Body, "event 59") || strings.Contains(first.Body, "event 09") {
		t.Fatalf("first audit page: %d events, older link %v", n, older)
	}
	second := b.get(e.AdminURL + html.UnescapeString(older[1]))
	if n := strings.Count(second.Body, "event "); n != 10 || !strings.Contains(second.Body, "event 00") || !strings.Contains(second.Body, "event 09") ||
		strings.Contains(second.Body, `id="older"`) {
		t.Fatalf("second audit page: %d events\n%s", n, second.Body)
	}

	// Filtered by time (UTC, to the minute, as the form's inputs send it):
	// from is inclusive, before exclusive; a time that is none is no filter.
	t0 := e.Clock.Now().UTC().Truncate(time.Minute).Add(-5 * time.Hour)
	for i := range 3 {
		if err := e.Store.AddAuditEvent(context.Background(), storage.AuditEvent{ID: fmt.Sprintf("timed-%d", i), Time: t0.Add(time.Duration(i) * time.Hour),
			Type: audit.Login, UserID: "timed", Detail: fmt.Sprintf("hour %d", i), ExpiresAt: t0.Add(24 * time.Hour)}); err != nil {
			t.Fatal(err)
		}
	}
	at := func(h int) string { return t0.Add(time.Duration(h) * time.Hour).Format("2006-01-02T15:04") }
	for _, tt := range []struct{ query, want string }{
		{"from=" + at(1), "hour 1 hour 2"},
		{"to=" + at(1), "hour 0"},
		{"from=" + at(1) + "&to=" + at(2), "hour 1"},
		{"from=yesterday&to=%ff", "hour 0 hour 1 hour 2"},
	} {
		p := b.get(e.AdminURL + "/console/audit?user=timed&" + tt.query)
		got := strings.Join(regexp.MustCompile(`hour \d`).FindAllString(p.Body, -1), " ")
		if p.Status != http.StatusOK || sortWords(got) != tt.want {
			t.Fatalf("audit ?%s: %d, events %q, want %q", tt.query, p.Status, got, tt.want)
		}
	}
	if p := b.get(e.AdminURL + "/console/audit?user=timed&from=" + at(1)); !strings.Contains(p.Body, `value="`+at(1)+`"`) {
		t.Fatalf("the time filter is not shown back: %s", p.Body)
	}

	// A callback with a state of no sign-in of this browser.
	if p := e.browser().get(e.AdminURL + "/console/callback?code=x&state=y"); p.Status != http.StatusBadRequest {
		t.Fatalf("forged callback: %d", p.Status)
	}
	// A callback replayed in another browser: no session.
	thief := e.browser()
	stolen := ""
	q := b.get(e.AdminURL + "/console/login")
	for range 8 {
		if strings.Contains(q.Location, "/console/callback") {
			stolen = q.Location
			break
		}
		q = b.get(q.Location)
	}
	if stolen == "" {
		t.Fatal("no callback URL")
	}
	if p := thief.get(stolen); p.Status != http.StatusBadRequest {
		t.Fatalf("callback in another browser: %d", p.Status)
	}
	// The same callback sent eight times at once by its own browser: one
	// sign-in, the code being single-use.
	statuses := make(chan int, 8)
	var wg sync.WaitGroup
	for range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := b.Get(stolen)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		}()
	}
	wg.Wait()
	close(statuses)
	ok := 0
	for s := range statuses {
		switch s {
		case http.StatusOK:
			ok++
		case http.StatusBadRequest:
		default:
			t.Errorf("concurrent callback: %d", s)
		}
	}
	if ok != 1 {
		t.Fatalf("%d of 8 concurrent callbacks signed in, want 1", ok)
	}
	if evs := auditOf(t, e, audit.ConsoleSignIn); len(evs) != 2 {
		t.Fatalf("console sign-ins audited: %d, want 2", len(evs))
	}
	if p := thief.get(e.AdminURL + "/console/"); p.Status != http.StatusSeeOther {
		t.Fatalf("thief reaches the console: %d", p.Status)
	}
}

// sortWords is the "word digit" pairs of s in order, joined by spaces.
func sortWords(s string) string {
	f := strings.Fields(s)
	var pairs []string
	for i := 0; i+1 < len(f); i += 2 {
		pairs = append(pairs, f[i]+" "+f[i+1])
	}
	slices.Sort(pairs)
	return strings.Join(pairs, " ")
}
