package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/upstream"
)

// confirmLink answers the link confirmation page a finished local
// sign-in sent the browser to ("link" or "no") and returns where the
// answer sends it.
func (b *browser) confirmLink(p page, answer string) page {
	b.e.t.Helper()
	if !strings.HasPrefix(p.Location, upstream.ConfirmPath) {
		b.e.t.Fatalf("after the local sign-in: %d %s, want the confirmation page", p.Status, p.Location)
	}
	p = b.get(p.Location)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="link-question"`) || !strings.Contains(p.Body, "You will be able to sign in with it") ||
		!strings.Contains(p.Body, "(amal@example.com)") {
		b.e.t.Fatalf("confirmation page: %d %s", p.Status, p.Body)
	}
	return b.post(upstream.ConfirmPath, url.Values{"csrf_token": {csrfOf(b.e.t, p)}, "answer": {answer}})
}

// startLinkTest starts bawwab with the upstream bawwab op as "corp" and a
// real SMTP relay, and returns amal's identity there: the local amal's
// verified address, so a sign-in with it waits for a link.
func startLinkTest(t *testing.T) (*bawwabOP, *env, *mailtest.Server, upstreamUser) {
	t.Helper()
	op := startBawwabOP(t)
	relay := mailtest.Start(t)
	e := startWith(t, func(c *config.Config) {
		c.Upstreams = []upstream.Config{op.Config("corp")}
		c.MailRelay = "smtp+insecure://" + relay.Addr()
		c.MailFrom = "no-reply@bawwab.test"
	})
	op.Register(t, e.URL+"/upstream/corp/callback")
	return op, e, relay, upstreamUser{Username: userName, Password: userPassword, Email: "amal@example.com", EmailVerified: true}
}

func linksOf(t *testing.T, e *env) int {
	t.Helper()
	l, err := e.Store.ListUpstreamLinks(context.Background(), e.UserID)
	if err != nil {
		t.Fatal(err)
	}
	return len(l)
}

// TestUpstreamLinkConfirmation: after the local proof a link is made only
// when the person answers "Link" on the confirmation page, in a form with
// its CSRF token, and then a security notice is mailed; "Don't link"
// links nothing; either way the request goes on.
func TestUpstreamLinkConfirmation(t *testing.T) {
	op, e, relay, amalThere := startLinkTest(t)

	t.Run("don't link", func(t *testing.T) {
		b := e.browser()
		r := e.notesRequest("openid email")
		p, _ := b.upstreamLogin(op, r, "corp", amalThere)
		p = b.login(loginLinkOf(t, p), userName, userPassword)
		if ar := b.get(upstream.ConfirmPath + "?ui_locales=ar"); ar.Status != http.StatusOK ||
			!strings.Contains(ar.Body, "ستتمكن من تسجيل الدخول به") || !strings.Contains(ar.Body, "amal@example.com") || !strings.Contains(ar.Body, "إكزامبل كورب") {
			t.Fatalf("Arabic confirmation page: %d %s", ar.Status, ar.Body)
		}
		p = b.confirmLink(p, "no")
		if linksOf(t, e) != 0 || auditCount(t, e, "upstream_link_declined", e.UserID) != 1 {
			t.Fatal("\"Don't link\" linked, or is not in the audit log")
		}
		b.finishDownstream(p, r)
		if p := b.get(upstream.ConfirmPath); p.Status != http.StatusSeeOther || strings.Contains(p.Body, "link-question") {
			t.Fatalf("the declined link is still offered: %d", p.Status)
		}
	})

	t.Run("no CSRF token", func(t *testing.T) {
		b := e.browser()
		r := e.notesRequest("openid email")
		p, _ := b.upstreamLogin(op, r, "corp", amalThere)
		p = b.login(loginLinkOf(t, p), userName, userPassword)
		if p := b.post(upstream.ConfirmPath, url.Values{"answer": {"link"}}); p.Status != http.StatusForbidden {
			t.Fatalf("without CSRF token: %d", p.Status)
		}
		if p := b.post(upstream.ConfirmPath, url.Values{"csrf_token": {"forged"}, "answer": {"link"}}); p.Status != http.StatusForbidden {
			t.Fatalf("with a forged CSRF token: %d", p.Status)
		}
		if linksOf(t, e) != 0 {
			t.Fatal("a post without the CSRF token linked")
		}
		// Another browser signed in to amal (no confirmation cookie) cannot answer for it.
		other := e.signIn(userPassword)
		sec := other.get("/account/security")
		if p := other.post(upstream.ConfirmPath, url.Values{"csrf_token": {csrfOf(t, sec)}, "answer": {"link"}}); p.Status != http.StatusSeeOther || linksOf(t, e) != 0 {
			t.Fatalf("another session linked: %d", p.Status)
		}
		// The person's own answer links, and goes on to the request.
		b.finishDownstream(b.confirmLink(p, "link"), r)
		if linksOf(t, e) != 1 || auditCount(t, e, "upstream_linked", e.UserID) != 1 {
			t.Fatal("\"Link\" did not link once")
		}
		m := relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
			return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "an account of another provider was linked")
		})
		if !strings.Contains(m.Header("Subject"), "Security notice") {
			t.Fatalf("subject %q", m.Header("Subject"))
		}
	})
}

// TestUpstreamLinkSharedComputer: someone reaches the link page with the
// victim's address (an upstream that "verifies" it) and leaves; the
// victim's next sign-in in the same browser, for another request, links
// nothing and offers no confirmation, and the wait is over for good.
func TestUpstreamLinkSharedComputer(t *testing.T) {
	op, e, _, amalThere := startLinkTest(t)
	b := e.browser()
	p, _ := b.upstreamLogin(op, e.notesRequest("openid email"), "corp", amalThere)
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "amal@example.com") {
		t.Fatalf("link page: %d %s", p.Status, p.Body)
	}
	// The victim, later, in the same browser, for another request.
	r := e.notesRequest("openid")
	victim := b.login(e.notesLoginOf(t, b, r), userName, userPassword)
	if !strings.HasPrefix(victim.Location, "/consent") {
		t.Fatalf("the victim's sign-in went to %q, not on to the request", victim.Location)
	}
	b.finishDownstream(victim, r)
	if p := b.get(upstream.ConfirmPath); p.Status != http.StatusSeeOther || strings.Contains(p.Body, "link-question") {
		t.Fatalf("a confirmation is offered: %d %s", p.Status, p.Body)
	}
	// A sign-in without a request (the account pages) finds nothing either.
	b2 := e.browser()
	b2.upstreamLogin(op, e.notesRequest("openid"), "corp", amalThere)
	p = b2.login("/login", userName, userPassword)
	if strings.HasPrefix(p.Location, upstream.ConfirmPath) {
		t.Fatal("a sign-in for the account pages picked up a link started for a request")
	}
	if linksOf(t, e) != 0 || auditCount(t, e, "upstream_linked", e.UserID) != 0 {
		t.Fatal("the victim's sign-in linked the other identity")
	}
}

// notesLoginOf starts r in b and returns its login page.
func (e *env) notesLoginOf(t *testing.T, b *browser, r authRequest) string {
	t.Helper()
	p := b.get(r.url())
	if !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("authorize: %d %s", p.Status, p.Location)
	}
	return p.Location
}

// TestUpstreamLinkConfirmRace: answers "Link" posted at once, each with
// the confirmation cookie, make one link and one audit event (and so one
// notice).
func TestUpstreamLinkConfirmRace(t *testing.T) {
	op, e, _, amalThere := startLinkTest(t)
	b := e.browser()
	p, _ := b.upstreamLogin(op, e.notesRequest("openid email"), "corp", amalThere)
	p = b.login(loginLinkOf(t, p), userName, userPassword)
	confirm := b.get(p.Location)
	form := url.Values{"csrf_token": {csrfOf(t, confirm)}, "answer": {"link"}}
	var wg sync.WaitGroup
	statuses := make(chan int, 6)
	for range 6 {
		wg.Go(func() { statuses <- b.post(upstream.ConfirmPath, form).Status })
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusSeeOther {
			t.Errorf("an answer got %d", s)
		}
	}
	if linksOf(t, e) != 1 || auditCount(t, e, "upstream_linked", e.UserID) != 1 {
		t.Fatalf("links %d, upstream_linked events %d; want one each", linksOf(t, e), auditCount(t, e, "upstream_linked", e.UserID))
	}
}
