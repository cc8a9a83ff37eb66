package e2e

import (
	"context"
	"database/sql"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/upstream"
)

// finishDownstream answers consent after a sign-in and redeems the code
// as Notes; it returns the token response.
func (b *browser) finishDownstream(p page, r authRequest) tokenResult {
	b.e.t.Helper()
	if !strings.HasPrefix(p.Location, "/consent") {
		b.e.t.Fatalf("after the upstream: %d %s %s", p.Status, p.Location, p.Body)
	}
	p = b.consent(p.Location, true, "openid", "email", "profile")
	u, err := url.Parse(p.Location)
	if err != nil || !strings.HasPrefix(p.Location, r.RedirectURI) || u.Query().Get("code") == "" {
		b.e.t.Fatalf("consent: %d %s", p.Status, p.Location)
	}
	tr := b.e.redeem(u.Query().Get("code"), r)
	if tr.Status != http.StatusOK {
		b.e.t.Fatalf("redeem: %d %s", tr.Status, tr.Description)
	}
	return tr
}

func linkOf(t *testing.T, e *env, upstreamID, subject string) *storage.UpstreamLink {
	t.Helper()
	l, err := e.Store.GetUpstreamLink(context.Background(), upstreamID, subject)
	if err != nil {
		return nil
	}
	return l
}

func countUsers(t *testing.T, e *env) int {
	t.Helper()
	users, err := e.Store.ListUsers(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	return len(users)
}

func auditCount(t *testing.T, e *env, typ, userID string) int {
	t.Helper()
	ev, err := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: typ, UserID: userID})
	if err != nil {
		t.Fatal(err)
	}
	return len(ev)
}

// TestUpstreamFirstLoginCreatesAccount signs in through a second bawwab
// (an OpenID Connect provider with its own store): the first sign-in
// creates a local account just in time, the second reuses it, and the
// downstream app gets bawwab's tokens: iss and sub are bawwab's, amr says
// fed, and the audit log names the upstream.
func TestUpstreamFirstLoginCreatesAccount(t *testing.T) {
	op := startBawwabOP(t)
	jane := upstreamUser{Username: "jane", Password: "tulip garden seventeen", Email: "jane@corp.example", EmailVerified: true}
	op.addUser(t, jane)
	e := startWithUpstream(t, op, "corp")
	before := countUsers(t, e)

	var firstUser string
	var b *browser
	for i := range 2 {
		b = e.browser()
		r := e.notesRequest("openid email profile")
		p, _ := b.upstreamLogin(op, r, "corp", jane)
		tr := b.finishDownstream(p, r)
		claims := claimsOf(t, tr.IDToken)
		amr, _ := claims["amr"].([]any)
		if claims["iss"] != e.URL || !slices.Contains(amr, any("fed")) || claims["email"] != jane.Email {
			t.Fatalf("sign-in %d: ID token claims %v", i, claims)
		}
		sub, _ := claims["sub"].(string)
		if i == 0 {
			firstUser = sub
		} else if sub != firstUser {
			t.Fatalf("second sign-in is user %s, want %s", sub, firstUser)
		}
	}
	if n := countUsers(t, e); n != before+1 {
		t.Fatalf("%d users after two sign-ins, want %d", n, before+1)
	}
	u, err := e.Store.GetUser(context.Background(), firstUser)
	if err != nil || u.Username != "jane" || !u.EmailVerified || u.PasswordHash != "" {
		t.Fatalf("just-in-time user: %+v %v", u, err)
	}
	if auditCount(t, e, "upstream_account", firstUser) != 1 {
		t.Error("the account's creation is not in the audit log")
	}
	logins, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: "login", UserID: firstUser})
	if len(logins) != 2 || logins[0].Detail != "method=upstream:corp" {
		t.Errorf("login events: %+v", logins)
	}
	// The account has no password: none opens it, not even an empty one.
	for _, pw := range []string{"", "x"} {
		nb := e.browser()
		lp := nb.get("/login")
		if p := nb.post("/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "username": {"jane"}, "password": {pw}}); p.Status != http.StatusUnauthorized {
			t.Fatalf("password %q for a just-in-time account: %d", pw, p.Status)
		}
	}
	// A pairwise client sees a subject of its own, neither bawwab's user
	// id nor the upstream's.
	const secret = "private-secret-0123456789abcdef0123"
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "private", Name: "Private", RedirectURIs: []string{"https://private.example/cb"},
		Scopes: []string{"openid"}, Pairwise: true, Secret: secret}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	pr := authRequest{ClientID: "private", RedirectURI: "https://private.example/cb", Scope: "openid", State: "s-" + token.NewID(), Nonce: "n",
		Verifier: token.NewOpaque() + token.NewOpaque()}
	q := b.authorize(pr, "openid")
	tr := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {pr.RedirectURI},
		"code_verifier": {pr.Verifier}}, "private", secret)
	upstreamSub := ""
	if l, _ := e.Store.ListUpstreamLinks(context.Background(), firstUser); len(l) == 1 {
		upstreamSub = l[0].Subject
	}
	if sub := claimsOf(t, tr.IDToken)["sub"]; tr.Status != http.StatusOK || sub == firstUser || sub == upstreamSub || sub == nil || upstreamSub == "" {
		t.Fatalf("pairwise sub %v (user %s, upstream subject %s): %d %s", sub, firstUser, upstreamSub, tr.Status, tr.Description)
	}
}

// libraryApp is Notes as an app built on go-oidc and x/oauth2 sees bawwab:
// its provider, its configuration, a PKCE verifier, and the path of an
// authorization request (state lib-state, nonce lib-nonce).
func libraryApp(t *testing.T, e *env) (*oidc.Provider, *oauth2.Config, string, string) {
	t.Helper()
	provider, err := oidc.NewProvider(context.Background(), e.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "notes", ClientSecret: e.NotesSecret, Endpoint: provider.Endpoint(), RedirectURL: notesRedirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	verifier := oauth2.GenerateVerifier()
	u, _ := url.Parse(conf.AuthCodeURL("lib-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("lib-nonce")))
	return provider, conf, verifier, u.RequestURI()
}

// TestUpstreamDownstreamLibraries: a downstream app using x/oauth2 and
// go-oidc signs a person in through bawwab, who signed in at an upstream;
// no token of the upstream is in anything the app receives.
func TestUpstreamDownstreamLibraries(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	ctx := context.Background()
	provider, conf, verifier, authPath := libraryApp(t, e)
	b := e.browser()
	p := b.get(authPath)
	var bodies []string
	callback := op.SignIn(t, b, b.startUpstreamLogin(p.Location, "fake"), upstreamUser{Username: "lina", Email: "lina@fake.example", EmailVerified: true})
	p = b.get(callback)
	bodies = append(bodies, p.Body, p.Location)
	p = b.consent(p.Location, true, "openid", "email", "profile")
	cb, _ := url.Parse(p.Location)
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "notes"}).Verify(ctx, rawID)
	if err != nil || idt.Nonce != "lib-nonce" || idt.Subject == "sub-lina" {
		t.Fatalf("ID token: %v %+v", err, idt)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != "lina@fake.example" {
		t.Fatalf("userinfo: %v %+v", err, info)
	}
	_, infoRaw, _ := e.userinfo(tok.AccessToken)
	bodies = append(bodies, tok.AccessToken, tok.RefreshToken, rawID, fmt.Sprint(infoRaw))
	for _, up := range op.issuedTokens() {
		for _, body := range bodies {
			if strings.Contains(body, up) {
				t.Fatalf("an upstream token reached the downstream side: %q", up)
			}
		}
	}
	if len(op.issuedTokens()) == 0 {
		t.Fatal("the upstream issued nothing: the test proves nothing")
	}
}

// TestUpstreamLinkAfterLocalProof: an upstream identity whose verified
// address is a local account's is not linked silently; the person signs
// in to the local account (its password) in the same flow, confirms the
// link, and then the link exists and the next upstream sign-in is that
// account.
func TestUpstreamLinkAfterLocalProof(t *testing.T) {
	op := startBawwabOP(t)
	// The upstream bawwab's own amal: the same verified address as the local amal.
	amalThere := upstreamUser{Username: userName, Password: userPassword, Email: "amal@example.com", EmailVerified: true}
	e := startWithUpstream(t, op, "corp")
	b := e.browser()
	r := e.notesRequest("openid email")
	p, _ := b.upstreamLogin(op, r, "corp", amalThere)
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "amal@example.com") || !strings.Contains(p.Body, `href="/login?`) {
		t.Fatalf("link page: %d %s", p.Status, p.Body)
	}
	if s, _ := e.Store.ListUserSessions(context.Background(), e.UserID); len(s) != 0 {
		t.Fatal("a session started before the local proof")
	}
	subject := "" // the upstream bawwab's subject for its user: not linked yet
	if l, _ := e.Store.ListUpstreamLinks(context.Background(), e.UserID); len(l) != 0 {
		t.Fatalf("linked before the local proof: %+v", l)
	}
	// A wrong password links nothing; the right one links.
	loginURL := loginLinkOf(t, p)
	if p := b.login(loginURL, userName, "wrong password"); p.Status != http.StatusUnauthorized {
		t.Fatalf("wrong password: %d", p.Status)
	}
	if l, _ := e.Store.ListUpstreamLinks(context.Background(), e.UserID); len(l) != 0 {
		t.Fatal("a wrong password linked")
	}
	p = b.login(loginURL, userName, userPassword)
	if l, _ := e.Store.ListUpstreamLinks(context.Background(), e.UserID); len(l) != 0 {
		t.Fatal("linked before the confirmation")
	}
	b.finishDownstream(b.confirmLink(p, "link"), r)
	links, _ := e.Store.ListUpstreamLinks(context.Background(), e.UserID)
	if len(links) != 1 || links[0].Upstream != "corp" {
		t.Fatalf("links after the local proof: %+v", links)
	}
	subject = links[0].Subject
	if auditCount(t, e, "upstream_linked", e.UserID) != 1 {
		t.Error("the link is not in the audit log")
	}
	// Next time, the upstream alone signs in to amal's account, in a new browser.
	b2 := e.browser()
	r2 := e.notesRequest("openid")
	p, _ = b2.upstreamLogin(op, r2, "corp", amalThere)
	tr := b2.finishDownstream(p, r2)
	if sub := claimsOf(t, tr.IDToken)["sub"]; sub != e.UserID || subject == "" {
		t.Fatalf("linked sign-in is %v, want %s", sub, e.UserID)
	}
}

var loginLinkRE = regexp.MustCompile(`href="(/login\?[^"]+)"`)

// loginLinkOf returns the link back to the login page that a page of the
// upstream step shows.
func loginLinkOf(t *testing.T, p page) string {
	t.Helper()
	m := loginLinkRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no link to the login page: %s", p.Body)
	}
	return html.UnescapeString(m[1])
}

// TestUpstreamUnverifiedEmail: an upstream address a local account has,
// but which the upstream does not say it verified, neither links nor makes
// a second account with that address.
func TestUpstreamUnverifiedEmail(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	before := countUsers(t, e)
	b := e.browser()
	p, _ := b.upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: "mallory", Email: "AMAL@example.com", EmailVerified: false})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "was not verified") {
		t.Fatalf("unverified address: %d %s", p.Status, p.Body)
	}
	if countUsers(t, e) != before || linkOf(t, e, "fake", "sub-mallory") != nil {
		t.Fatal("an unverified address made an account or a link")
	}
	if strings.Contains(p.Location, "/consent") {
		t.Fatal("signed in")
	}
}

// TestUpstreamCallbackRefused: a callback bawwab did not ask for is
// refused with a page, audited as an attack, and signs nobody in: a
// tampered state, a wrong nonce in the ID token, a wrong iss in the
// authorization response (RFC 9207) or in the ID token, a missing iss
// where the upstream promised one, a replayed callback, and a code
// injected from another browser's session.
func TestUpstreamCallbackRefused(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	who := upstreamUser{Username: "eve", Email: "eve@fake.example", EmailVerified: true}
	// refused checks the page and that the newest refusal in the audit
	// log is for the reason why.
	refused := func(t *testing.T, p page, what, why string) {
		t.Helper()
		if p.Status != http.StatusUnauthorized || strings.Contains(p.Location, "/consent") || !strings.Contains(p.Body, `id="notice-error"`) {
			t.Fatalf("%s: %d %s %s", what, p.Status, p.Location, p.Body)
		}
		ev, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: "upstream_refused"})
		if len(ev) == 0 || !strings.Contains(ev[0].Detail, why) {
			t.Fatalf("%s: refused events %+v, want the newest to say %q", what, ev, why)
		}
	}
	knobs := []struct {
		name, why string
		set       func()
	}{
		{"wrong nonce", "nonce", func() { op.IDNonce = "another-nonce" }},
		{"wrong iss in the response", "RFC 9207", func() { op.RespIss = "https://evil.example" }},
		{"no iss though promised", "RFC 9207", func() { op.RespIss = "-" }},
		{"ID token from another issuer", "ID token: invalid", func() { op.IDIssuer = "https://evil.example" }},
	}
	for _, k := range knobs {
		t.Run(k.name, func(t *testing.T) {
			op.mu.Lock()
			op.RespIss, op.IDNonce, op.IDIssuer = "", "", ""
			k.set()
			op.mu.Unlock()
			b := e.browser()
			p, _ := b.upstreamLogin(op, e.notesRequest("openid"), "fake", who)
			refused(t, p, k.name, k.why)
		})
	}
	op.mu.Lock()
	op.RespIss, op.IDNonce, op.IDIssuer = "", "", ""
	op.mu.Unlock()

	t.Run("tampered state", func(t *testing.T) {
		b := e.browser()
		p := b.get(e.notesRequest("openid").url())
		cb := op.SignIn(t, b, b.startUpstreamLogin(p.Location, "fake"), who)
		u, _ := url.Parse(cb)
		q := u.Query()
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		refused(t, b.get(u.String()), "tampered state", "not this browser's")
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := e.browser()
		r := e.notesRequest("openid")
		p := b.get(r.url())
		cb := op.SignIn(t, b, b.startUpstreamLogin(p.Location, "fake"), who)
		cbURL, _ := url.Parse(cb)
		saved := b.Jar.Cookies(cbURL) // the state cookie, as someone who copied it holds it
		first := b.get(cb)
		if !strings.HasPrefix(first.Location, "/consent") {
			t.Fatalf("first callback: %d %s", first.Status, first.Body)
		}
		replay := e.browser()
		replay.Jar.SetCookies(cbURL, saved)
		refused(t, replay.get(cb), "replayed callback with the cookie", "used before")
		refused(t, b.get(cb), "replayed callback in the same browser", "not this browser's")
	})
	t.Run("code injected into another session", func(t *testing.T) {
		victim, attacker := e.browser(), e.browser()
		p := attacker.get(e.notesRequest("openid").url())
		attackerCB := op.SignIn(t, attacker, attacker.startUpstreamLogin(p.Location, "fake"), who)
		p = victim.get(e.notesRequest("openid").url())
		victim.startUpstreamLogin(p.Location, "fake") // the victim has a flow of its own
		refused(t, victim.get(attackerCB), "the attacker's callback in the victim's browser", "not this browser's")
		// The attacker's code with the victim's own state: PKCE and the nonce refuse it.
		victimCB := op.SignIn(t, victim, victim.startUpstreamLogin(e.notesRequestLogin(t, victim), "fake"), who)
		vu, _ := url.Parse(victimCB)
		au, _ := url.Parse(attackerCB)
		q := vu.Query()
		q.Set("code", au.Query().Get("code"))
		vu.RawQuery = q.Encode()
		refused(t, victim.get(vu.String()), "the attacker's code with the victim's state", "token request: refused")
	})
	if n := auditCount(t, e, "upstream_refused", ""); n < 7 {
		t.Errorf("%d refused callbacks audited, want at least 7", n)
	}
}

// notesRequestLogin starts a new Notes request in b and returns its login URL.
func (e *env) notesRequestLogin(t *testing.T, b *browser) string {
	t.Helper()
	p := b.get(e.notesRequest("openid").url())
	if !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("authorize: %d %s", p.Status, p.Location)
	}
	return p.Location
}

// TestUpstreamAccessDenied: the person cancels at the upstream; bawwab
// shows a clear page, in the person's language, and logs it.
func TestUpstreamAccessDenied(t *testing.T) {
	op := startFakeOP(t)
	op.AuthError = "access_denied"
	e := startWithUpstream(t, op, "fake")
	b := e.browser()
	p, _ := b.upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: "x"})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "You cancelled signing in with Fake OP") || !strings.Contains(p.Body, `id="notice-link"`) {
		t.Fatalf("denied: %d %s", p.Status, p.Body)
	}
	if !strings.Contains(e.Logs.String(), `"event":"upstream_denied"`) {
		t.Error("the cancel is not in the audit log")
	}
}

// TestUpstreamGitHubShaped signs in through a plain OAuth 2.0 upstream
// with GitHub's shapes: a number id, a login, and the verified address
// from /user/emails (not the public one of /user).
func TestUpstreamGitHubShaped(t *testing.T) {
	op := startGitHubOP(t)
	e := startWithUpstream(t, op, "github")
	b := e.browser()
	r := e.notesRequest("openid email")
	p, _ := b.upstreamLogin(op, r, "github", upstreamUser{Username: "octocat", Email: "octo@github.example", EmailVerified: true})
	tr := b.finishDownstream(p, r)
	claims := claimsOf(t, tr.IDToken)
	if claims["email"] != "octo@github.example" || claims["email_verified"] != true {
		t.Fatalf("claims %v", claims)
	}
	l := linkOf(t, e, "github", "4200007")
	if l == nil {
		t.Fatal("no link for GitHub id 4200007")
	}
	u, _ := e.Store.GetUser(context.Background(), l.UserID)
	if u.Username != "octocat" || u.Name != "OCTOCAT" {
		t.Fatalf("user %+v", u)
	}
	// An unverified primary address signs in but is kept unverified.
	b = e.browser()
	r = e.notesRequest("openid email")
	p, _ = b.upstreamLogin(op, r, "github", upstreamUser{Username: "hubot", Email: "hubot@github.example"})
	b.finishDownstream(p, r)
	l = linkOf(t, e, "github", "4200005")
	if u, _ := e.Store.GetUser(context.Background(), l.UserID); u == nil || u.EmailVerified {
		t.Fatalf("unverified GitHub address: %+v", u)
	}
}

// TestUpstreamDomainAndJIT: an allow-list of domains keeps other
// addresses out, and an upstream without just-in-time accounts creates
// none.
func TestUpstreamDomainAndJIT(t *testing.T) {
	op := startFakeOP(t)
	no := false
	e := startWithUpstream(t, op, "fake", func(c *upstream.Config) { c.AllowedDomains = []string{"corp.example"} })
	before := countUsers(t, e)
	p, _ := e.browser().upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: "out", Email: "out@other.example", EmailVerified: true})
	if p.Status != http.StatusUnauthorized || countUsers(t, e) != before {
		t.Fatalf("other domain: %d, %d users", p.Status, countUsers(t, e))
	}
	p, _ = e.browser().upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: "fake-in", Email: "in@corp.example"})
	if p.Status != http.StatusUnauthorized {
		t.Fatalf("unverified address in the domain: %d", p.Status)
	}
	e2 := startWithUpstream(t, op, "fake", func(c *upstream.Config) { c.JIT = &no })
	p, _ = e2.browser().upstreamLogin(op, e2.notesRequest("openid"), "fake", upstreamUser{Username: "new", Email: "new@corp.example", EmailVerified: true})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "No account here is linked") {
		t.Fatalf("no JIT: %d %s", p.Status, p.Body)
	}
}

// TestUpstreamLoginPageAndUnlink: the login page offers the upstream in
// English and Arabic; the Security page lists the link and unlinks it
// only while another way to sign in remains.
func TestUpstreamLoginPageAndUnlink(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	b := e.browser()
	p := b.get(e.notesRequest("openid").url())
	if en := b.get(p.Location); !strings.Contains(en.Body, "Continue with Fake OP") {
		t.Fatalf("English login page: %s", en.Body)
	}
	if ar := b.get(p.Location + "&lang=ar"); !strings.Contains(ar.Body, "المتابعة باستخدام مزوّد تجريبي") {
		t.Fatalf("Arabic login page: %s", ar.Body)
	}
	// A just-in-time account has no password: its only link stays.
	b = e.browser()
	r := e.notesRequest("openid")
	p, _ = b.upstreamLogin(op, r, "fake", upstreamUser{Username: "nopass", Email: "nopass@fake.example", EmailVerified: true})
	b.finishDownstream(p, r)
	sec := b.get("/account/security")
	if !strings.Contains(sec.Body, `id="link-fake"`) || !strings.Contains(sec.Body, "nopass@fake.example") {
		t.Fatalf("security page: %s", sec.Body)
	}
	p = b.post("/account/security/upstream/unlink", url.Values{"csrf_token": {csrfOf(t, sec)}, "upstream": {"fake"}})
	if p.Status != http.StatusConflict || linkOf(t, e, "fake", "sub-nopass") == nil {
		t.Fatalf("unlinking the only way in: %d", p.Status)
	}
	// An account with a password may unlink.
	l := linkOf(t, e, "fake", "sub-nopass")
	if err := e.Store.CreateUpstreamLink(context.Background(), storage.UpstreamLink{Upstream: "fake", Subject: "sub-amal", UserID: e.UserID}); err != nil {
		t.Fatal(err)
	}
	a := e.browser()
	a.authorize(e.notesRequest("openid"))
	sec = a.get("/account/security")
	p = a.post("/account/security/upstream/unlink", url.Values{"csrf_token": {csrfOf(t, sec)}, "upstream": {"fake"}})
	if p.Status != http.StatusSeeOther || linkOf(t, e, "fake", "sub-amal") != nil || linkOf(t, e, "fake", "sub-nopass") == nil || l == nil {
		t.Fatalf("unlink: %d", p.Status)
	}
}

// TestUpstreamSecondFactor: the upstream is a first factor only; a person
// who turned on an authenticator app is asked for its code after the
// upstream, and the ID token's amr then says fed, otp and mfa.
func TestUpstreamSecondFactor(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	a := e.browser()
	a.authorize(e.notesRequest("openid"))
	secret, _ := a.enrolTOTP()
	if err := e.Store.CreateUpstreamLink(context.Background(), storage.UpstreamLink{Upstream: "fake", Subject: "sub-amal", UserID: e.UserID}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: "amal", Email: "amal@example.com", EmailVerified: true})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="code"`) {
		t.Fatalf("after the upstream: %d %s %s", p.Status, p.Location, p.Body)
	}
	if s, _ := e.Store.ListUserSessions(context.Background(), e.UserID); len(s) != 1 { // the enrolling browser's only
		t.Fatalf("%d sessions before the second factor", len(s))
	}
	e.Clock.Advance(30 * time.Second) // a code of the next time step: the enrolment's is spent
	code, err := totp.GenerateCode(secret, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	tr := b.finishDownstream(b.answer(p, r, "totp", code), r)
	amr, _ := claimsOf(t, tr.IDToken)["amr"].([]any)
	if !slices.Contains(amr, any("fed")) || !slices.Contains(amr, any("otp")) || !slices.Contains(amr, any("mfa")) {
		t.Fatalf("amr %v", amr)
	}
}

// TestUpstreamCallbackRace: one callback sent many times at once, each
// with a copy of the browser's state cookie, signs in once.
func TestUpstreamCallbackRace(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	b := e.browser()
	p := b.get(e.notesRequest("openid").url())
	cb := op.SignIn(t, b, b.startUpstreamLogin(p.Location, "fake"), upstreamUser{Username: "racer", Email: "racer@fake.example", EmailVerified: true})
	cbURL, _ := url.Parse(cb)
	cookies := b.Jar.Cookies(cbURL)
	const n = 8
	results := make(chan page, n)
	var wg sync.WaitGroup
	for range n {
		c := e.browser()
		c.Jar.SetCookies(cbURL, cookies)
		wg.Add(1)
		go func() {
			defer wg.Done()
			req, _ := http.NewRequest("GET", cb, nil)
			resp, err := c.Do(req)
			if err != nil {
				results <- page{}
				return
			}
			resp.Body.Close()
			results <- page{Status: resp.StatusCode, Location: resp.Header.Get("Location")}
		}()
	}
	wg.Wait()
	close(results)
	won := 0
	for p := range results {
		switch {
		case p.Status == http.StatusSeeOther && strings.HasPrefix(p.Location, "/consent"):
			won++
		case p.Status != http.StatusUnauthorized:
			t.Errorf("a concurrent callback answered %d %s", p.Status, p.Location)
		}
	}
	if won != 1 {
		t.Fatalf("%d of %d concurrent callbacks signed in, want 1", won, n)
	}
}

// TestUpstreamUnreachable: an upstream whose metadata names another
// issuer (OpenID Connect Discovery §4.3), or whose address is internal
// while the operator allows no internal calls (package outbound), is not
// used: the person gets a clear page, and no authorization leaves.
func TestUpstreamUnreachable(t *testing.T) {
	tests := []struct {
		name      string
		misbehave func(*fakeOP)
		configure func(*config.Config)
	}{
		{"metadata of another issuer", func(op *fakeOP) { op.DiscoveryIssuer = "https://login.evil.example" }, nil},
		{"internal address not allowed", func(*fakeOP) {}, func(c *config.Config) { c.InsecureOutboundAllow = nil }},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			op := startFakeOP(t)
			tt.misbehave(op)
			e := startWith(t, func(c *config.Config) {
				c.Upstreams = []upstream.Config{op.Config("fake")}
				if tt.configure != nil {
					tt.configure(c)
				}
			})
			b := e.browser()
			p := b.get(e.notesRequest("openid").url())
			lp := b.get(p.Location)
			u, _ := url.Parse(p.Location)
			p = b.post("/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "req": {u.Query().Get("req")}, "step": {"upstream:fake"}})
			if p.Status != http.StatusBadGateway || !strings.Contains(p.Body, "cannot be reached") || p.Location != "" {
				t.Fatalf("%d %s %s", p.Status, p.Location, p.Body)
			}
		})
	}
}

// TestUpstreamDisabled: a disabled upstream has no button and no callback.
func TestUpstreamDisabled(t *testing.T) {
	op := startFakeOP(t)
	off := false
	e := startWithUpstream(t, op, "fake", func(c *upstream.Config) { c.Enabled = &off })
	b := e.browser()
	p := b.get(e.notesRequest("openid").url())
	if lp := b.get(p.Location); strings.Contains(lp.Body, "upstream:fake") || strings.Contains(lp.Body, "Continue with") {
		t.Fatalf("a disabled upstream is offered: %s", lp.Body)
	}
	if p := b.get("/upstream/fake/callback?code=c&state=s"); p.Status != http.StatusNotFound {
		t.Fatalf("callback of a disabled upstream: %d", p.Status)
	}
}

// TestUpstreamGitHubEmailCleaned: the address a GitHub-shaped upstream's
// /user/emails lists is held to the same rules as a userinfo address
// (no control characters, at most 254 bytes, an '@'): one that breaks
// them is kept nowhere, not stored on the account made just in time.
func TestUpstreamGitHubEmailCleaned(t *testing.T) {
	op := startGitHubOP(t)
	e := startWithUpstream(t, op, "github")
	for i, tc := range []struct{ name, email string }{
		{"CR LF", "octo\r\nBcc: all@github.example\r\n@github.example"},
		{"NUL", "octo\x00@github.example"},
		{"huge", strings.Repeat("a", 4000) + "@github.example"},
		{"no @", "octo.github.example"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			b := e.browser()
			r := e.notesRequest("openid email")
			who := upstreamUser{Username: strings.Repeat("u", i+1) + "cat", Email: tc.email, EmailVerified: true}
			p, _ := b.upstreamLogin(op, r, "github", who)
			if p.Status >= 500 {
				t.Fatalf("callback: %d %s", p.Status, p.Body)
			}
			l := linkOf(t, e, "github", strconv.Itoa(4200000+len(who.Username)))
			if l == nil {
				return // refused: nothing stored
			}
			u, _ := e.Store.GetUser(context.Background(), l.UserID)
			for _, s := range []string{u.Email, l.Email} {
				if len(s) > 254 || strings.ContainsFunc(s, func(r rune) bool { return r < 0x20 || r == 0x7f }) || s != "" && !strings.Contains(s, "@") {
					t.Fatalf("stored address %.80q (%d bytes)", s, len(s))
				}
			}
			if u.Email != "" && u.EmailVerified != true {
				t.Fatalf("user %+v", u)
			}
		})
	}
}

// TestUpstreamErrorNotForgingAudit: the error an authorization response
// carries is the browser's to choose (anyone can start a sign-in and
// write its callback); it is audited only as an error code, so it cannot
// plant an event under another upstream's id ("; upstream=corp;"), a
// line break or markup in the audit log, and it is not shown on the page.
func TestUpstreamErrorNotForgingAudit(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	for _, forged := range []string{"x; upstream=corp; y", "x\nupstream=corp;", "<b>upstream:corp</b>"} {
		b := e.browser()
		p := b.get(e.notesRequest("openid").url())
		auth, _ := url.Parse(b.startUpstreamLogin(p.Location, "fake"))
		q := url.Values{"state": {auth.Query().Get("state")}, "error": {forged}, "error_description": {"<script>alert(1)</script>"}}
		p = b.get("/upstream/fake/callback?" + q.Encode())
		if p.Status >= 500 || strings.Contains(p.Body, "<script>alert") || strings.Contains(p.Body, "upstream=corp") {
			t.Fatalf("%q: %d %s", forged, p.Status, p.Body)
		}
	}
	// upstream_denied names no user: it is in the log, not the store.
	logs := e.Logs.String()
	if n := strings.Count(logs, `"event":"upstream_denied"`); n != 3 {
		t.Fatalf("%d denied events logged", n)
	}
	for _, line := range strings.Split(logs, "\n") {
		if strings.Contains(line, `"event":"upstream_denied"`) && (strings.Contains(line, "corp") || strings.Contains(line, `\n`)) {
			t.Errorf("audit line %s", line)
		}
	}
}

// TestUpstreamIDTokenAzp: an ID token for several audiences is bawwab's
// only when its azp is bawwab's client id (OpenID Connect Core
// §3.1.3.7, steps 4 and 5): one the upstream made for another client,
// naming bawwab among its audiences, signs no one in.
func TestUpstreamIDTokenAzp(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	for i, tc := range []struct {
		name string
		aud  any
		azp  string
		ok   bool
	}{
		{"another client's, naming bawwab too", []string{"other-client", "bawwab"}, "other-client", false},
		{"several audiences, no azp", []string{"other-client", "bawwab"}, "", false},
		{"one audience, another azp", "bawwab", "other-client", false},
		{"several audiences, bawwab's azp", []string{"bawwab", "other-client"}, "bawwab", true},
		{"one audience, bawwab's azp", "bawwab", "bawwab", true},
	} {
		t.Run(tc.name, func(t *testing.T) {
			op.IDAud, op.IDAzp = tc.aud, tc.azp
			defer func() { op.IDAud, op.IDAzp = nil, "" }()
			b := e.browser()
			r := e.notesRequest("openid")
			p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: fmt.Sprintf("azp%d", i), Email: fmt.Sprintf("azp%d@fake.example", i), EmailVerified: true})
			if got := strings.Contains(p.Location, "/consent") || p.Status == http.StatusSeeOther && !strings.Contains(p.Body, "notice-error"); got != tc.ok {
				t.Fatalf("signed in %v, want %v: %d %s %s", got, tc.ok, p.Status, p.Location, p.Body)
			}
		})
	}
}

// TestUpstreamDisabledUser: a user an operator disabled does not sign in
// through a linked upstream, nor become enabled again by it; a linked
// identity of a deleted user makes no session for anyone, and signs in
// afresh as a new account.
func TestUpstreamDisabledUser(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	ctx := context.Background()
	who := upstreamUser{Username: "dina", Email: "dina@fake.example", EmailVerified: true}
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "fake", who)
	b.finishDownstream(p, r)
	l := linkOf(t, e, "fake", "sub-dina")
	if l == nil {
		t.Fatal("no link")
	}
	if err := e.Store.SetUserDisabled(ctx, l.UserID, true); err != nil {
		t.Fatal(err)
	}
	b = e.browser()
	p, _ = b.upstreamLogin(op, e.notesRequest("openid"), "fake", who)
	if p.Status != http.StatusForbidden || strings.Contains(p.Location, "/consent") {
		t.Fatalf("disabled user through the upstream: %d %s", p.Status, p.Location)
	}
	if u, _ := e.Store.GetUser(ctx, l.UserID); u == nil || !u.Disabled {
		t.Fatal("the upstream sign-in enabled the user again")
	}
	if s, _ := e.Store.ListUserSessions(ctx, l.UserID); len(s) != 1 { // the first browser's only
		t.Fatalf("%d sessions", len(s))
	}
	if err := e.Store.DeleteUser(ctx, l.UserID, time.Now()); err != nil {
		t.Fatal(err)
	}
	if linkOf(t, e, "fake", "sub-dina") != nil {
		t.Fatal("the link outlived its user")
	}
	b = e.browser()
	r = e.notesRequest("openid")
	p, _ = b.upstreamLogin(op, r, "fake", who)
	tr := b.finishDownstream(p, r)
	if sub := claimsOf(t, tr.IDToken)["sub"]; sub == l.UserID {
		t.Fatal("the deleted user's id signed in again")
	}
}

// TestUpstreamOrphanLink: a link whose account is gone (a deletion that
// raced the link's making leaves one, since the link is written apart
// from the user) signs nobody in and answers no 500: the link is dropped
// and the identity signs in as a new one.
func TestUpstreamOrphanLink(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	ctx := context.Background()
	if err := e.Store.CreateUser(ctx, storage.User{ID: "gone-user", Username: "gone", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if err := e.Store.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: "fake", Subject: "sub-omar", UserID: "gone-user",
		Email: "omar@fake.example", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	// The user row goes as a racing deletion leaves it: without the link.
	db, ok := e.Store.(interface{ DB() *sql.DB })
	if !ok {
		t.Fatalf("the test store %T has no DB", e.Store)
	}
	if _, err := db.DB().ExecContext(ctx, `DELETE FROM users WHERE id = 'gone-user'`); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: "omar", Email: "omar@fake.example", EmailVerified: true})
	if p.Status >= 500 {
		t.Fatalf("an orphan link answered %d: %s", p.Status, p.Body)
	}
	tr := b.finishDownstream(p, r)
	l := linkOf(t, e, "fake", "sub-omar")
	if l == nil || l.UserID == "gone-user" {
		t.Fatalf("link after the sign-in: %+v", l)
	}
	if sub := claimsOf(t, tr.IDToken)["sub"]; sub != l.UserID {
		t.Fatalf("signed in as %v, the new link names %s", sub, l.UserID)
	}
}

// TestUpstreamEmailVariants: an upstream address that is a local
// account's in another spelling of the same mailbox (case, the root
// domain's trailing dot) is that account's: it waits for the local proof
// and makes no second account with it.
func TestUpstreamEmailVariants(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	for i, email := range []string{"AMAL@Example.COM", "amal@example.com.", " amal@EXAMPLE.com. "} {
		users := countUsers(t, e)
		b := e.browser()
		p, _ := b.upstreamLogin(op, e.notesRequest("openid"), "fake", upstreamUser{Username: fmt.Sprintf("variant%d", i), Email: email, EmailVerified: true})
		if p.Status != http.StatusUnauthorized || strings.Contains(p.Location, "/consent") {
			t.Fatalf("%q: %d %s %s", email, p.Status, p.Location, p.Body)
		}
		if countUsers(t, e) != users || linkOf(t, e, "fake", fmt.Sprintf("sub-variant%d", i)) != nil {
			t.Fatalf("%q made an account or a link", email)
		}
	}
}
