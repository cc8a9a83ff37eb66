package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/storage"
)

// consoleToken signs the browser in to the console and returns its CSRF
// token, read from the users page.
func consoleToken(t *testing.T, e *env, b *browser) string {
	t.Helper()
	wantStatus(t, b.consoleSignIn(userName, userPassword).Status, http.StatusOK, "console sign-in", nil)
	p := b.get(e.AdminURL + "/console/users")
	m := consoleCSRF.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("users page has no CSRF token: %s", p.Body)
	}
	return m[1]
}

var shownPassword = regexp.MustCompile(`id="new-password" dir="ltr">([^<]+)<`)

// signedIn reports whether the browser's bawwab session lives.
func signedIn(b *browser) bool { return b.get("/account").Status == http.StatusOK }

// TestConsoleUsers: from a user's console page an operator creates a user
// (a password made and shown once, or typed), resets its password, signs
// it out everywhere, resets its second factors, unlocks it and resends
// its confirmation mail, each through the admin API under the operator's
// name; every action without the console's CSRF token is refused with
// 403 and does nothing; a refused password or username is shown beside
// the form, not as a server error.
func TestConsoleUsers(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	csrf := consoleToken(t, e, b)
	ctx := context.Background()

	made := b.post(e.AdminURL+"/console/users", url.Values{"csrf_token": {csrf}, "username": {"dalia"}, "email": {"dalia@example.com"}})
	wantStatus(t, made.Status, http.StatusCreated, "create a user", made.Body)
	m := shownPassword.FindStringSubmatch(made.Body)
	if m == nil || len(m[1]) < 20 {
		t.Fatalf("no password shown for the new user: %s", made.Body)
	}
	users, _ := e.Store.ListUsers(ctx)
	var dalia *storage.User
	for i := range users {
		if users[i].Username == "dalia" {
			dalia = &users[i]
		}
	}
	if dalia == nil {
		t.Fatal("user not created")
	}
	if _, err := password.Verify(m[1], dalia.PasswordHash, testPassword); err != nil {
		t.Fatal("the password shown is not the user's")
	}
	page := b.get(e.AdminURL + "/console/users/" + dalia.ID)
	if strings.Contains(page.Body, m[1]) || !strings.Contains(page.Body, `id="unverified"`) {
		t.Fatalf("user page after creation: %s", page.Body)
	}
	// Refusals: a taken username, a weak password.
	if p := b.post(e.AdminURL+"/console/users", url.Values{"csrf_token": {csrf}, "username": {"dalia"}, "name": {"Dalia Two"}}); p.Status != http.StatusConflict ||
		!strings.Contains(p.Body, `id="error"`) || !strings.Contains(p.Body, `value="Dalia Two"`) {
		t.Fatalf("taken username: %d %s", p.Status, p.Body)
	}
	user := e.AdminURL + "/console/users/" + dalia.ID
	if p := b.post(user+"/password", url.Values{"csrf_token": {csrf}, "password": {"dalia"}}); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `id="error"`) {
		t.Fatalf("weak password: %d %s", p.Status, p.Body)
	}

	// Without the CSRF token nothing happens.
	other := e.browser()
	other.login("/login", "dalia", m[1])
	if !signedIn(other) {
		t.Fatal("dalia cannot sign in with the password shown")
	}
	for _, path := range []string{"/password", "/do/signout", "/do/factors", "/do/unlock", "/do/verification"} {
		if p := b.post(user+path, url.Values{"password": {"a brand new long phrase"}}); p.Status != http.StatusForbidden {
			t.Fatalf("%s without CSRF token: %d", path, p.Status)
		}
	}
	if !signedIn(other) || len(auditOf(t, e, audit.CSRFRejected)) != 5 {
		t.Fatal("an action without the CSRF token was done, or not audited")
	}

	// Sign out everywhere: her session ends; the audit names the operator.
	if p := b.post(user+"/do/signout", url.Values{"csrf_token": {csrf}}); p.Status != http.StatusSeeOther {
		t.Fatalf("sign out everywhere: %d %s", p.Status, p.Body)
	}
	if signedIn(other) {
		t.Fatal("the user's session lives after sign-out everywhere")
	}
	if evs := auditOf(t, e, audit.UserSignedOut); len(evs) != 1 || evs[0].UserID != dalia.ID || !strings.Contains(evs[0].Detail, "operator="+userName+" (console)") {
		t.Fatalf("sign-out audit: %+v", evs)
	}

	// A typed password: set, not shown; the old one stops working.
	if p := b.post(user+"/password", url.Values{"csrf_token": {csrf}, "password": {"a brand new long phrase"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("set password: %d %s", p.Status, p.Body)
	}
	u, _ := e.Store.GetUser(ctx, dalia.ID)
	if _, err := password.Verify("a brand new long phrase", u.PasswordHash, testPassword); err != nil {
		t.Fatal("the typed password was not set")
	}
	// A made one: shown once.
	p := b.post(user+"/password", url.Values{"csrf_token": {csrf}})
	if m2 := shownPassword.FindStringSubmatch(p.Body); p.Status != http.StatusOK || m2 == nil || m2[1] == m[1] {
		t.Fatalf("made password: %d %s", p.Status, p.Body)
	}

	for path, typ := range map[string]string{"/do/factors": audit.MFAReset, "/do/unlock": audit.UserUnlocked} {
		if p := b.post(user+path, url.Values{"csrf_token": {csrf}}); p.Status != http.StatusSeeOther {
			t.Fatalf("%s: %d %s", path, p.Status, p.Body)
		}
		if evs := auditOf(t, e, typ); len(evs) != 1 || evs[0].UserID != dalia.ID {
			t.Fatalf("%s audit: %+v", path, evs)
		}
	}
	// Resending the mail is the API's answer (sent, or refused with its
	// reason), never a server error.
	if p := b.post(user+"/do/verification", url.Values{"csrf_token": {csrf}}); p.Status >= 500 && p.Status != http.StatusServiceUnavailable {
		t.Fatalf("resend verification: %d %s", p.Status, p.Body)
	}
	if p := b.post(user+"/do/nothing", url.Values{"csrf_token": {csrf}}); p.Status != http.StatusNotFound {
		t.Fatalf("unknown action: %d", p.Status)
	}
	if p := b.get(e.AdminURL + "/console/users/nobody"); p.Status != http.StatusNotFound {
		t.Fatalf("no such user: %d", p.Status)
	}
}
