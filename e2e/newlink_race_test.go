package e2e

import (
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestNewLinkRace: two "Mail me a new link" requests on the Security page
// at the same instant, and two password reset requests at the same
// instant, each mail a link through a real SMTP relay, and exactly one of
// the links mailed works: the others open nothing, while the working one
// confirms the address (or opens the new password form). Each request
// voids the earlier links before storing its own; done as two steps,
// both could void before either stored, and both links would work.
func TestNewLinkRace(t *testing.T) {
	e, relay := startMailing(t)
	testNewLinkRace(t, e, relay)
}

// TestNewLinkRacePostgres is TestNewLinkRace on PostgreSQL, whose READ
// COMMITTED transactions do not see each other's links until they commit.
func TestNewLinkRacePostgres(t *testing.T) {
	store := postgresStore(t)
	relay := mailtest.Start(t)
	e := startNode(t, store, listen(t), "", &clock{}, func(c *config.Config) {
		c.Signup, c.MailRelay, c.MailFrom = "open", "smtp+insecure://"+relay.Addr(), "no-reply@bawwab.test"
	})
	testNewLinkRace(t, e, relay)
}

func testNewLinkRace(t *testing.T, e *env, relay *mailtest.Server) {
	// New confirmation links, asked for twice at once by a few people
	// (the race is won or lost at random: each must end with one link).
	for _, who := range []string{"hala", "iyad", "jana"} {
		addr := who + "@example.net"
		b := e.signUp(who, addr)
		relay.Wait(t, 10*time.Second, mailtest.To(addr))
		csrf := csrfOf(t, b.get("/account/security"))
		for _, status := range postAtOnce(t, []*browser{b, b}, "/verify/resend", url.Values{"csrf_token": {csrf}}) {
			if status != http.StatusSeeOther {
				t.Fatalf("%s: resend answered %d", who, status)
			}
		}
		relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return len(verifyLinks(t, relay, addr)) >= 3 })
		links := verifyLinks(t, relay, addr)
		onlyOneWorks(t, e, links, storage.TokenVerifyEmail, http.StatusBadRequest)
		if u, _ := e.Store.GetUserByUsername(t.Context(), who); u == nil || !u.EmailVerified {
			t.Fatalf("%s: the working link did not confirm the address: %+v", who, u)
		}
	}

	// Two reset requests at once for one account.
	reset := []*browser{e.browser(), e.browser()}
	form := url.Values{"csrf_token": {csrfOf(t, reset[0].get("/reset"))}, "login": {userName}}
	form2 := url.Values{"csrf_token": {csrfOf(t, reset[1].get("/reset"))}, "login": {userName}}
	statuses := postAtOnce(t, reset, "/reset", form, form2)
	if statuses[0] != http.StatusOK || statuses[1] != http.StatusOK {
		t.Fatalf("reset requests answered %v", statuses)
	}
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return len(resetLinks(t, relay, "amal@example.com")) >= 2 })
	onlyOneWorks(t, e, resetLinks(t, relay, "amal@example.com"), storage.TokenResetPassword, http.StatusBadRequest)
}

// liveLink returns the one link of links that is live in the store,
// failing when none or more than one is.
func liveLink(t *testing.T, e *env, links []string, kind string) string {
	t.Helper()
	var live string
	for _, l := range links {
		u, _ := url.Parse(l)
		_, err := e.Store.GetAccountToken(t.Context(), storage.Hash(u.Query().Get("token")), kind, time.Now())
		switch {
		case err == nil && live != "":
			t.Fatalf("two of the %d links mailed work: %v", len(links), links)
		case err == nil:
			live = l
		case !errors.Is(err, storage.ErrNotFound):
			t.Fatal(err)
		}
	}
	if live == "" {
		t.Fatalf("none of the %d links mailed works: %v", len(links), links)
	}
	return live
}

// resetLinks are the reset links mailed to addr, oldest first.
func resetLinks(t *testing.T, relay *mailtest.Server, addr string) []string {
	t.Helper()
	var links []string
	for _, m := range relay.Messages() {
		if mailtest.To(addr)(m) && strings.Contains(m.Body(), "/reset/confirm?") {
			links = append(links, linkIn(t, m, "/reset/confirm"))
		}
	}
	return links
}

// onlyOneWorks checks that exactly one of the mailed links is live in the
// store, that each other one opens nothing (answered with the status
// dead, before the live one is opened), and that the live one opens its
// page.
func onlyOneWorks(t *testing.T, e *env, links []string, kind string, dead int) {
	t.Helper()
	live := liveLink(t, e, links, kind)
	for _, l := range links {
		if l != live {
			if p := e.browser().get(l); p.Status != dead {
				t.Fatalf("a replaced link answered %d, want %d: %s", p.Status, dead, p.Body)
			}
		}
	}
	if p := e.browser().get(live); p.Status != http.StatusOK {
		t.Fatalf("the working link answered %d: %s", p.Status, p.Body)
	}
}

// postAtOnce posts forms[i] (or forms[0]) to path from browsers[i], all at
// the same instant, and returns the answers' statuses.
func postAtOnce(t *testing.T, browsers []*browser, path string, forms ...url.Values) []int {
	t.Helper()
	statuses := make([]int, len(browsers))
	errs := make([]error, len(browsers))
	var wg sync.WaitGroup
	start := make(chan struct{})
	for i, b := range browsers {
		form := forms[0]
		if i < len(forms) {
			form = forms[i]
		}
		wg.Go(func() {
			req, _ := http.NewRequest("POST", b.abs(path), strings.NewReader(form.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			<-start
			resp, err := b.Do(req)
			if err != nil {
				errs[i] = err
				return
			}
			_, _ = io.Copy(io.Discard, resp.Body)
			resp.Body.Close()
			statuses[i] = resp.StatusCode
		})
	}
	close(start)
	wg.Wait()
	for _, err := range errs {
		if err != nil {
			t.Fatal(err)
		}
	}
	return statuses
}
