package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// TestUpstreamUnverifiedEmailJIT: an account made just in time from an
// upstream address the upstream did not verify gets no address at all, so
// it cannot share one with a local account, verified or not; the local
// account keeps its own, and the app sees no email claim.
func TestUpstreamUnverifiedEmailJIT(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	ctx := context.Background()
	local := storage.User{ID: "local-amira", Username: "amira", Email: "amira@example.com", CreatedAt: time.Now()}
	if err := e.Store.CreateUser(ctx, local); err != nil {
		t.Fatal(err)
	}
	for _, who := range []upstreamUser{
		{Username: "mallory", Email: "amira@example.com"}, // the local account's unverified address
		{Username: "nadia", Email: "nadia@example.com"},   // an address nobody has here
	} {
		t.Run(who.Username, func(t *testing.T) {
			b := e.browser()
			r := e.notesRequest("openid email")
			p, _ := b.upstreamLogin(op, r, "fake", who)
			tr := b.finishDownstream(p, r)
			if email := claimsOf(t, tr.IDToken)["email"]; email != nil && email != "" {
				t.Fatalf("the app got the unverified address %v", email)
			}
			l := linkOf(t, e, "fake", "sub-"+who.Username)
			if l == nil {
				t.Fatal("no account was made")
			}
			u, err := e.Store.GetUser(ctx, l.UserID)
			if err != nil || u.Email != "" || u.EmailVerified {
				t.Fatalf("just-in-time account: %+v %v", u, err)
			}
		})
	}
	if u, err := e.Store.GetUser(ctx, local.ID); err != nil || u.Email != local.Email {
		t.Fatalf("the local account: %+v %v", u, err)
	}
}

// TestUpstreamTwoTabs: two sign-ins through one upstream in one browser
// (two tabs) both finish, in either order; a browser keeps at most
// upstream.MaxStates of them, the oldest forgotten.
func TestUpstreamTwoTabs(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	who := upstreamUser{Username: "tabs", Email: "tabs@fake.example", EmailVerified: true}
	b := e.browser()
	r1, r2 := e.notesRequest("openid"), e.notesRequest("openid")
	a1 := b.startUpstreamLogin(b.get(r1.url()).Location, "fake")
	a2 := b.startUpstreamLogin(b.get(r2.url()).Location, "fake")
	cb2 := op.SignIn(t, b, a2, who)
	cb1 := op.SignIn(t, b, a1, who)
	for i, cb := range []string{cb1, cb2} {
		if p := b.get(cb); !strings.HasPrefix(p.Location, "/consent") {
			t.Fatalf("tab %d: %d %s %s", i+1, p.Status, p.Location, p.Body)
		}
	}
	// More sign-ins than a browser keeps: the first is forgotten.
	b = e.browser()
	var cbs []string
	for range upstream.MaxStates + 1 {
		cbs = append(cbs, op.SignIn(t, b, b.startUpstreamLogin(b.get(e.notesRequest("openid").url()).Location, "fake"), who))
	}
	u, _ := url.Parse(e.URL + "/upstream/fake/callback")
	n := 0
	for _, c := range b.Jar.Cookies(u) {
		if strings.HasPrefix(c.Name, upstream.StatePrefix) {
			n++
		}
	}
	if n != upstream.MaxStates {
		t.Fatalf("%d state cookies, want %d", n, upstream.MaxStates)
	}
	if p := b.get(cbs[0]); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "was not started in this browser") {
		t.Fatalf("the forgotten sign-in: %d %s", p.Status, p.Body)
	}
	for i, cb := range cbs[1:] {
		if p := b.get(cb); !strings.HasPrefix(p.Location, "/consent") {
			t.Fatalf("sign-in %d: %d %s %s", i+2, p.Status, p.Location, p.Body)
		}
	}
	// Sign-ins that finished no longer count: one left waiting outlives
	// more than MaxStates finished after it.
	b = e.browser()
	root, _ := url.Parse(e.URL + "/")
	waiting := b.startUpstreamLogin(b.get(e.notesRequest("openid").url()).Location, "fake")
	for range upstream.MaxStates + 1 {
		cb := op.SignIn(t, b, b.startUpstreamLogin(b.get(e.notesRequest("openid").url()).Location, "fake"), who)
		if p := b.get(cb); !strings.HasPrefix(p.Location, "/consent") {
			t.Fatalf("a finished sign-in: %d %s", p.Status, p.Body)
		}
		// Signed out, so that the next request shows the login page again.
		b.Jar.SetCookies(root, []*http.Cookie{{Name: session.CookieName, Value: "", Path: "/", MaxAge: -1}})
	}
	if p := b.get(op.SignIn(t, b, waiting, who)); !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("the waiting sign-in: %d %s %s", p.Status, p.Location, p.Body)
	}
}

// TestUpstreamStateExpired: a person who takes longer than ten minutes at
// the upstream is told to start again and audited as denied, not as an
// attack; the late callback signs nobody in.
func TestUpstreamStateExpired(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	who := upstreamUser{Username: "slow", Email: "slow@fake.example", EmailVerified: true}
	b := e.browser()
	cb := op.SignIn(t, b, b.startUpstreamLogin(b.get(e.notesRequest("openid").url()).Location, "fake"), who)
	e.Clock.Advance(11 * time.Minute)
	p := b.get(cb)
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "took too long") || strings.Contains(p.Location, "/consent") {
		t.Fatalf("late callback: %d %s %s", p.Status, p.Location, p.Body)
	}
	if linkOf(t, e, "fake", "sub-slow") != nil {
		t.Fatal("the late callback made an account")
	}
	if logs := e.Logs.String(); !strings.Contains(logs, `"event":"upstream_denied"`) || !strings.Contains(logs, "state: expired") {
		t.Fatalf("the slow sign-in is not audited as denied: %s", logs)
	}
	if n := auditCount(t, e, "upstream_refused", ""); n != 0 {
		t.Fatalf("%d refused events for a slow person", n)
	}
	// Its copy in another browser is still refused as not its own.
	if p := e.browser().get(cb); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "was not started in this browser") {
		t.Fatalf("late callback in another browser: %d %s", p.Status, p.Body)
	}
}
