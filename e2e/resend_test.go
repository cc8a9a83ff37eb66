package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/mail/mailtest"
)

// signUp makes an account through the sign-up form and returns the
// browser, signed in as it.
func (e *env) signUp(user, addr string) *browser {
	e.t.Helper()
	b := e.browser()
	if p := b.signup("/signup", url.Values{"name": {"Someone"}, "email": {addr}, "username": {user}, "password": {"another long passphrase"}}); p.Status != http.StatusSeeOther {
		e.t.Fatalf("sign-up of %s: %d %s", user, p.Status, p.Body)
	}
	return b
}

// verifyLinks are the confirmation links mailed to addr, oldest first.
func verifyLinks(t *testing.T, relay *mailtest.Server, addr string) []string {
	t.Helper()
	var links []string
	for _, m := range relay.Messages() {
		if mailtest.To(addr)(m) && strings.Contains(m.Body(), "/verify?") {
			links = append(links, linkIn(t, m, "/verify"))
		}
	}
	return links
}

// TestResendVerification: a person whose address is not confirmed asks
// the Security page for a new link (a form with its CSRF token); the new
// link arrives through a real SMTP relay and confirms the address, and the
// earlier link no longer works. Asking again and again mails the address
// three times in all, then no more for a while, with the same answer each
// time; without a session or CSRF token nothing is mailed; an account
// whose address another account confirmed gets the same answer, and the
// address's owner a notice, not a link.
func TestResendVerification(t *testing.T) {
	e, relay := startMailing(t)
	b := e.signUp("rania", "rania@example.net")
	relay.Wait(t, 10*time.Second, mailtest.To("rania@example.net"))
	first := verifyLinks(t, relay, "rania@example.net")
	if len(first) != 1 {
		t.Fatalf("links after sign-up: %v", first)
	}
	if p := b.get("/account/security"); !strings.Contains(p.Body, `id="verify-resend"`) || !strings.Contains(p.Body, "rania@example.net") {
		t.Fatalf("the Security page offers no new link: %s", p.Body)
	}
	// Without the CSRF token, or without a session, nothing is mailed.
	if p := b.post("/verify/resend", url.Values{}); p.Status != http.StatusForbidden {
		t.Fatalf("resend without CSRF token: %d", p.Status)
	}
	anon := e.browser()
	if p := anon.post("/verify/resend", url.Values{"csrf_token": {csrfOf(t, anon.get("/login"))}}); p.Status != http.StatusSeeOther ||
		!strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("resend without a session: %d %s", p.Status, p.Location)
	}
	p := b.securityForm("/verify/resend", url.Values{})
	if p.Status != http.StatusSeeOther || !strings.Contains(p.Location, "done=security.verify.sent") {
		t.Fatalf("resend: %d %s %s", p.Status, p.Location, p.Body)
	}
	answer := p.Location
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return len(verifyLinks(t, relay, "rania@example.net")) >= 2 })
	links := verifyLinks(t, relay, "rania@example.net")
	if len(links) != 2 || links[1] == links[0] {
		t.Fatalf("links after resend: %v", links)
	}
	// Only the newest link works.
	if p := e.browser().get(links[0]); p.Status != http.StatusBadRequest {
		t.Fatalf("the link mailed before the new one: %d", p.Status)
	}
	if p := e.browser().get(links[1]); p.Status != http.StatusOK {
		t.Fatalf("the new link: %d %s", p.Status, p.Body)
	}
	if u, _ := e.Store.GetUserByUsername(t.Context(), "rania"); u == nil || !u.EmailVerified {
		t.Fatalf("after the new link: %+v", u)
	}
	if p := b.get("/account/security"); strings.Contains(p.Body, `id="verify-resend"`) {
		t.Fatal("the Security page offers a link for a confirmed address")
	}

	// Asking again and again: three mails in all (the sign-up's and two
	// more), the same answer each time.
	s := e.signUp("sami", "sami@example.net")
	for i := range 5 {
		if p := s.securityForm("/verify/resend", url.Values{}); p.Status != http.StatusSeeOther || p.Location != answer {
			t.Fatalf("request %d answered %d %s, unlike the first", i+1, p.Status, p.Location)
		}
	}
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return mailsTo(relay, "sami@example.net") >= 3 })
	time.Sleep(time.Second)
	if n := mailsTo(relay, "sami@example.net"); n != 3 {
		t.Fatalf("%d mails for a sign-up and five requests, want 3", n)
	}

	// An address another account confirmed: the same answer; its owner
	// gets a notice and no link that would hand the address over.
	before := mailsTo(relay, "amal@example.com")
	o := e.signUp("badr", "amal@example.com")
	if p := o.securityForm("/verify/resend", url.Values{}); p.Status != http.StatusSeeOther || p.Location != answer {
		t.Fatalf("resend for an address another account owns: %d %s", p.Status, p.Location)
	}
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return mailsTo(relay, "amal@example.com") >= before+2 })
	if links := verifyLinks(t, relay, "amal@example.com"); len(links) != 0 {
		t.Fatalf("the owner of the address got confirmation links: %v", links)
	}
}

// TestResetKeepsSecondFactor: account recovery is no way around a second
// factor. Someone with the account's mailbox (or its reset link) sets a
// new password, but the reset starts no session, leaves the authenticator
// app on, and the next sign-in with the new password still asks for a
// code; the recovery codes keep standing in for the app, once each.
func TestResetKeepsSecondFactor(t *testing.T) {
	e, relay := startMailing(t)
	_, codes := e.signIn(userPassword).enrolTOTP()
	askReset(e, userName)
	link := linkIn(t, relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "/reset/confirm?")
	}), "/reset/confirm")
	b := e.browser()
	if p := resetWith(e, b, link, "a brand new passphrase", nil); p.Status != http.StatusOK {
		t.Fatalf("reset: %d %s", p.Status, p.Body)
	}
	if p := b.get("/account"); p.Status != http.StatusFound {
		t.Fatalf("the reset signed the browser in: %d", p.Status)
	}
	if active, err := e.Store.GetTOTP(t.Context(), e.UserID); err != nil || active.ConfirmedAt.IsZero() {
		t.Fatalf("the authenticator app after a reset: %+v %v", active, err)
	}
	r := e.notesRequest("openid")
	p := b.get(r.url())
	p = b.login(p.Location, userName, "a brand new passphrase")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("sign-in with the new password: %d %s", p.Status, p.Body)
	}
	if q := b.get("/account"); q.Status != http.StatusFound {
		t.Fatalf("signed in with the new password alone: %d", q.Status)
	}
	if p = b.answer(p, r, "recovery", codes[0]); p.Status != http.StatusSeeOther {
		t.Fatalf("a recovery code after the reset: %d %s", p.Status, p.Body)
	}
}
