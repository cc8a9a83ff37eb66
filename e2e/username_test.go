package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/admin"
)

// TestUsernameLookalikes: usernames that differ only in case or width
// name one account. Sign-up refuses Admin while admin exists, saying why;
// the admin API refuses ａｄｍｉｎ and a name with an invisible character;
// a just-in-time account whose upstream name is taken that way gets a
// free variant of it instead of failing.
func TestUsernameLookalikes(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	e2, _ := startMailing(t)
	ctx := context.Background()
	// admin beside sign-up; Admin beside the upstream, whose usernames
	// are made lower case: only the key makes them collide there.
	for s, name := range map[*env]string{e: "Admin", e2: "admin"} {
		if _, err := admin.AddUser(ctx, s.Store, admin.UserSpec{Username: name, Password: "a long and unusual phrase", Name: "Admin"}, testPassword); err != nil {
			t.Fatal(err)
		}
	}
	p := e2.browser().signup("/signup", url.Values{"name": {"Mallory"}, "email": {"mallory@example.net"}, "username": {"Admin"},
		"password": {"a long new passphrase"}})
	if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "That username is taken, or one that differs from it only in upper and lower case") {
		t.Fatalf("sign-up as Admin beside admin: %d %s", p.Status, p.Body)
	}
	if u, err := e2.Store.GetUserByUsername(ctx, "Admin"); err == nil {
		t.Fatalf("Admin was made: %+v", u)
	}

	for _, name := range []string{"ａｄｍｉｎ", "admin"} {
		status, out := e.adminCall("POST", "/admin/users", adminToken, map[string]any{"username": name, "password": "a long and unusual phrase"}, nil)
		if status != http.StatusConflict || !strings.Contains(out, "differs from it only in case or character width") {
			t.Fatalf("admin API user %s: %d %s", name, status, out)
		}
	}
	status, out := e.adminCall("POST", "/admin/users", adminToken, map[string]any{"username": "ad\u200bmin", "password": "a long and unusual phrase"}, nil)
	if status != http.StatusBadRequest || !strings.Contains(out, "invisible") {
		t.Fatalf("admin API user with a zero-width space: %d %s", status, out)
	}

	before := countUsers(t, e)
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ = b.upstreamLogin(op, r, "fake", upstreamUser{Username: "Admin", Email: "someone@corp.example", EmailVerified: true})
	b.finishDownstream(p, r)
	l := linkOf(t, e, "fake", "sub-Admin")
	if l == nil || countUsers(t, e) != before+1 {
		t.Fatalf("the just-in-time account was not made: %v", l)
	}
	u, err := e.Store.GetUser(ctx, l.UserID)
	if err != nil || !strings.HasPrefix(u.Username, "admin-") || len(u.Username) != len("admin-")+5 {
		t.Fatalf("the just-in-time account's name: %+v %v, want a free variant of admin", u, err)
	}
}
