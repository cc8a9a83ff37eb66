package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/upstream"
)

// TestIDNEmailSignupAndReset: an address with an internationalised domain
// is one address in its Unicode and its punycode spelling. Signed up as
// yusra@Bücher.example, the account gets its mail at the domain's ASCII
// form, a reset asked for as yusra@xn--bcher-kva.example reaches it, and
// a second sign-up with the other spelling claims nothing. An address
// whose domain is no valid name is refused as any bad address is.
func TestIDNEmailSignupAndReset(t *testing.T) {
	e, relay := startMailing(t)
	ctx := context.Background()
	const wire = "yusra@xn--bcher-kva.example"
	signup := func(user, addr string) page {
		return e.browser().signup("/signup", url.Values{"name": {"Yusra"}, "email": {addr}, "username": {user}, "password": {"a long new passphrase"}})
	}
	if p := signup("yusra", "yusra@Bücher.example"); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-up with a Unicode domain: %d %s", p.Status, p.Body)
	}
	m := relay.Wait(t, 10*time.Second, mailtest.To(wire))
	if p := e.browser().get(linkIn(t, m, "/verify")); p.Status != 200 {
		t.Fatalf("verify: %d %s", p.Status, p.Body)
	}
	u, err := e.Store.GetUserByUsername(ctx, "yusra")
	if err != nil || !u.EmailVerified || u.Email != "yusra@Bücher.example" {
		t.Fatalf("after verification: %+v %v", u, err)
	}
	if owner, err := e.Store.GetUserByEmail(ctx, wire); err != nil || owner.ID != u.ID {
		t.Fatalf("the punycode spelling finds %+v %v", owner, err)
	}

	// The other spelling is the same address: taken, not a second owner.
	if p := signup("yusra2", "YUSRA@xn--bcher-kva.example"); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-up with the punycode spelling: %d", p.Status)
	}
	relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To(wire)(m) && strings.Contains(m.Body(), "already belongs to your account")
	})
	if second, _ := e.Store.GetUserByUsername(ctx, "yusra2"); second == nil || second.EmailVerified {
		t.Fatalf("the second account: %+v", second)
	}

	// Reset by the punycode spelling: the link sets yusra's password.
	if p := askReset(e, wire); p.Status != 200 {
		t.Fatalf("reset request: %d", p.Status)
	}
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return len(resetLinks(t, relay, wire)) > 0 })
	p := resetWith(e, e.browser(), resetLinks(t, relay, wire)[0], "a fresh reset passphrase", nil)
	if p.Status != 200 || !strings.Contains(p.Body, `id="notice"`) {
		t.Fatalf("reset: %d %s", p.Status, p.Body)
	}
	loginURL := e.browser().get(e.notesRequest("openid").url()).Location
	if p := e.browser().login(loginURL, "yusra", "a fresh reset passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("the reset password does not sign yusra in: %d", p.Status)
	}

	// A domain that is no valid internationalised name is a bad address.
	for _, addr := range []string{"eve@xn--a.example", "eve@ex_ample.com"} {
		if p := signup("eve", addr); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "Enter one email address") {
			t.Fatalf("sign-up with %s: %d", addr, p.Status)
		}
	}
}

// TestIDNEmailUpstream: an upstream's verified address in the other
// spelling of a local account's confirmed address is that account's
// address: the sign-in asks for the local password to link, as for any
// spelling, and makes no second account; unverified, it links nothing.
func TestIDNEmailUpstream(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	ctx := context.Background()
	id, err := admin.AddUser(ctx, e.Store, admin.UserSpec{Username: "yusra", Password: "her very own passphrase", Name: "Yusra",
		Email: "yusra@xn--bcher-kva.example", EmailVerified: true}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	before := countUsers(t, e)
	p, _ := e.browser().upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: "mallory", Email: "Yusra@Bücher.example"})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "was not verified") {
		t.Fatalf("unverified Unicode spelling: %d %s", p.Status, p.Body)
	}
	b := e.browser()
	p, _ = b.upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: "yusra-there", Email: "Yusra@Bücher.example", EmailVerified: true})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `href="/login?`) {
		t.Fatalf("verified Unicode spelling: %d %s", p.Status, p.Body)
	}
	if countUsers(t, e) != before || linkOf(t, e, "fake", "sub-yusra-there") != nil || linkOf(t, e, "fake", "sub-mallory") != nil {
		t.Fatal("the other spelling made an account or linked before the local proof")
	}
	p = b.login(loginLinkOf(t, p), "yusra", "her very own passphrase")
	if !strings.HasPrefix(p.Location, upstream.ConfirmPath) {
		t.Fatalf("after the local sign-in: %d %s, want the confirmation page", p.Status, p.Location)
	}
	if p = b.get(p.Location); p.Status != http.StatusOK || !strings.Contains(p.Body, `id="link-question"`) {
		t.Fatalf("confirmation page: %d %s", p.Status, p.Body)
	}
	b.post(upstream.ConfirmPath, url.Values{"csrf_token": {csrfOf(t, p)}, "answer": {"link"}})
	if l := linkOf(t, e, "fake", "sub-yusra-there"); l == nil || l.UserID != id {
		t.Fatalf("after the local proof: %+v", l)
	}
}
