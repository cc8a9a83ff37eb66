package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/console"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// consoleFlow signs b in to the console as the test user from
// /console/login, answering the second-factor step with a code of secret
// when it is asked ("" answers nothing and returns the step's page). It
// returns the last answer (the callback's page, a refusal, or the step)
// and whether a code was asked.
func (b *browser) consoleFlow(secret string) (page, bool) {
	b.e.t.Helper()
	return b.consoleFlowFrom(b.get(b.e.AdminURL+"/console/login"), secret)
}

// consoleFlowFrom is consoleFlow from the answer p of its first step.
func (b *browser) consoleFlowFrom(p page, secret string) (page, bool) {
	t := b.e.t
	t.Helper()
	asked := false
	for range 12 {
		switch {
		case p.Status == http.StatusOK && strings.Contains(p.Body, `name="step" value="totp"`):
			asked = true
			if secret == "" {
				return p, asked
			}
			code, err := totp.GenerateCode(secret, b.e.Clock.Now())
			if err != nil {
				t.Fatal(err)
			}
			p = b.answer(p, authRequest{}, "totp", code)
		case p.Status == http.StatusOK && strings.Contains(p.Body, `name="password"`):
			req := regexp.MustCompile(`name="req" value="([^"]*)"`).FindStringSubmatch(p.Body)
			if req == nil {
				t.Fatalf("login page without a request: %s", p.Body)
			}
			p = b.post("/login", url.Values{"csrf_token": {csrfOf(t, p)}, "req": {req[1]}, "username": {userName}, "password": {userPassword}})
		case p.Status == http.StatusOK && strings.Contains(p.Body, `name="action" value="allow"`):
			req := regexp.MustCompile(`name="req" value="([^"]*)"`).FindStringSubmatch(p.Body)
			p = b.post("/consent", url.Values{"csrf_token": {csrfOf(t, p)}, "req": {req[1]}, "scope": {"openid"}, "action": {"allow"}})
		case p.Status != http.StatusFound && p.Status != http.StatusSeeOther:
			return p, asked
		default:
			p = b.get(p.Location)
		}
	}
	t.Fatal("console sign-in: too many steps")
	return p, asked
}

// consoleSession reports whether b holds a console session: the
// dashboard answers 200.
func (b *browser) consoleSession() bool {
	return b.get(b.e.AdminURL+"/console/").Status == http.StatusOK
}

// TestAttackConsoleCodeOtherProgram: the console's redirect URIs match any
// loopback port (RFC 8252 §7.3), so a program on the machine can start an
// authorization request in the console's name with a port and a PKCE
// verifier of its own; the admin signs in and the code reaches it. The
// console is a confidential client whose secret only the server knows:
// the code redeemed without it, with a guessed one or with the PKCE
// verifier alone is invalid_client, and the console still signs in.
func TestAttackConsoleCodeOtherProgram(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	adminBrowser := e.browser()
	if p, _ := adminBrowser.consoleFlow(""); p.Status != http.StatusOK || !adminBrowser.consoleSession() {
		t.Fatalf("console sign-in: %d %s", p.Status, p.Body)
	}
	c, err := e.Store.GetClient(context.Background(), console.ClientID)
	if err != nil || c.Public || c.SecretHash == "" || c.PKCEPolicy != storage.PKCERequired {
		t.Fatalf("the console's client: %v %+v", err, c)
	}

	// The program listens on a loopback port of its own.
	l := listen(t)
	defer l.Close()
	cb := "http://" + l.Addr().String() + "/console/callback"
	r := authRequest{ClientID: console.ClientID, RedirectURI: cb, Scope: "openid", State: "program-state", Nonce: "program-nonce",
		Verifier: strings.Repeat("v", 50)}
	p := adminBrowser.get(r.url())
	for range 6 {
		if strings.HasPrefix(p.Location, cb) {
			break
		}
		switch {
		case strings.HasPrefix(p.Location, "/consent"):
			p = adminBrowser.consent(p.Location, true, "openid")
		case p.Location != "":
			p = adminBrowser.get(p.Location)
		}
	}
	got, err := url.Parse(p.Location)
	if err != nil || !strings.HasPrefix(p.Location, cb) || got.Query().Get("code") == "" {
		t.Fatalf("the admin's sign-in brought no code to the program's port: %d %q", p.Status, p.Location)
	}
	code := got.Query().Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cb}, "code_verifier": {r.Verifier}}
	for name, try := range map[string]func() tokenResult{
		"client_id and verifier only": func() tokenResult {
			f := url.Values{"client_id": {console.ClientID}}
			for k, v := range form {
				f[k] = v
			}
			return e.token(f, "", "")
		},
		"a guessed secret (basic)": func() tokenResult { return e.token(form, console.ClientID, "guessed-secret-0123456789") },
		"an empty secret (post)": func() tokenResult {
			f := url.Values{"client_id": {console.ClientID}, "client_secret": {""}}
			for k, v := range form {
				f[k] = v
			}
			return e.token(f, "", "")
		},
	} {
		if res := try(); res.Status != http.StatusUnauthorized || res.Error != "invalid_client" || res.AccessToken != "" || res.IDToken != "" {
			t.Fatalf("%s: %d %s %s", name, res.Status, res.Error, res.Description)
		}
	}

	// The console itself still signs in.
	again := e.browser()
	if p, _ := again.consoleFlow(""); p.Status != http.StatusOK || !again.consoleSession() {
		t.Fatalf("console sign-in after the attack: %d %s", p.Status, p.Body)
	}
}

// TestConsolePublicRegistrationUpgraded: a registration of the console
// as a public client (of an earlier version), or one an operator made
// DPoP-bound through the API, is made confidential and proof-free at the
// next sign-in, its secret the server's; what the operator changed (the
// name, a second factor required) stays; the admin then signs in with the
// code the policy asks.
func TestConsolePublicRegistrationUpgraded(t *testing.T) {
	e := offStart(t)
	ctx := context.Background()
	makeAdmin(t, e, e.UserID, true)
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: console.ClientID, Name: "Our console", Public: true,
		RedirectURIs: []string{"http://127.0.0.1/console/callback", "http://[::1]/console/callback"}, GrantTypes: []string{"authorization_code"},
		Scopes: []string{"openid"}, Verified: true, SecondFactor: true, DPoPBound: true}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	secret, _ := e.signIn(userPassword).enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	b := e.browser()
	p, asked := b.consoleFlow(secret)
	if p.Status != http.StatusOK || !asked || !b.consoleSession() {
		t.Fatalf("console sign-in: asked %v, %d %s", asked, p.Status, p.Body)
	}
	c, err := e.Store.GetClient(ctx, console.ClientID)
	if err != nil || c.Public || c.DPoPBound || c.SecretHash == "" || c.AuthMethod != "" || !c.SecondFactor || c.Name != "Our console" {
		t.Fatalf("the console's client after the upgrade: %v %+v", err, c)
	}
}

// TestConsoleSecondFactor: under second_factor off, an admin without a
// second factor signs in to the console with the password; once they set
// one up, the console asks for it (a new browser, and a browser with a
// password session of an app) and admits them only after it; the ID
// token says mfa.
func TestConsoleSecondFactor(t *testing.T) {
	e := offStart(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	if p, asked := b.consoleFlow(""); p.Status != http.StatusOK || asked || !b.consoleSession() {
		t.Fatalf("admin without a factor: asked %v, %d %s", asked, p.Status, p.Body)
	}
	secret, _ := e.signIn(userPassword).enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	// The password-only console session ends once a factor is set up.
	if b.consoleSession() {
		t.Fatal("a console session without a second factor outlived the admin's enrolment")
	}

	fresh := e.browser()
	p, asked := fresh.consoleFlow("")
	if !asked || fresh.consoleSession() {
		t.Fatalf("admin with a factor was not asked for it: %d %s", p.Status, p.Body)
	}
	p, asked = fresh.consoleFlow(secret)
	if p.Status != http.StatusOK || !asked || !fresh.consoleSession() {
		t.Fatalf("admin with a factor, after the code: asked %v, %d %s", asked, p.Status, p.Body)
	}

	// A password session of an app (which asks no second factor under
	// off) is stepped up for the console.
	e.Clock.Advance(60 * time.Second)
	app := e.appSignIn()
	p, asked = app.consoleFlow(secret)
	if p.Status != http.StatusOK || !asked || !app.consoleSession() {
		t.Fatalf("app session at the console: asked %v, %d %s", asked, p.Status, p.Body)
	}
	if evs := auditOf(t, e, audit.ConsoleSignIn); len(evs) != 3 {
		t.Fatalf("console sign-ins audited: %+v", evs)
	}
}

// TestConsoleSecondFactorRequired: under console_second_factor required,
// an admin without a second factor is refused with the page that sends
// them to the Security page, and gets no console session; with one set
// up, they are admitted after the code.
func TestConsoleSecondFactorRequired(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.SecondFactor, c.ConsoleSecondFactor = "off", "required" })
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	p, _ := b.consoleFlow("")
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, `href="/account/security`) || b.consoleSession() {
		t.Fatalf("admin without a factor under required: %d %s", p.Status, p.Body)
	}
	if !strings.Contains(p.Body, "bawwab admin console") {
		t.Fatalf("the refusal does not name the console: %s", p.Body)
	}
	if evs := auditOf(t, e, audit.ConsoleSignIn); len(evs) != 0 {
		t.Fatalf("console sign-in audited: %+v", evs)
	}
	// The way back to the console says it was refused.
	if m := regexp.MustCompile(`href="([^"]+)" id="stepup-back"`).FindStringSubmatch(p.Body); m != nil {
		back := b.get(strings.ReplaceAll(m[1], "&amp;", "&"))
		if back.Status == http.StatusOK || b.consoleSession() {
			t.Fatalf("the way back from the refusal: %d %s", back.Status, back.Body)
		}
	}

	secret, _ := b.enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	fresh := e.browser()
	p, asked := fresh.consoleFlow(secret)
	if p.Status != http.StatusOK || !asked || !fresh.consoleSession() {
		t.Fatalf("admin with a factor under required: asked %v, %d %s", asked, p.Status, p.Body)
	}
	if !strings.Contains(ui.T("en", "console.second_factor", "x"), "Security page") {
		t.Fatal("the console's own refusal does not name the Security page")
	}
}

// TestAttackConsoleRegisterConcurrent: the first sign-ins on two nodes of
// one store, all at once, register the console's client once; every one
// starts, the client is confidential under the secret both nodes derive
// from the shared key, and an admin signs in through either node.
func TestAttackConsoleRegisterConcurrent(t *testing.T) {
	store := sqliteStore(t)
	l := listen(t)
	issuer := "http://" + l.Addr().String()
	c := &clock{}
	nodes := []*env{startNode(t, store, l, issuer, c), startNode(t, store, listen(t), issuer, c)}
	makeAdmin(t, nodes[0], nodes[0].UserID, true)
	var wg sync.WaitGroup
	statuses := make(chan int, 8)
	for i := range 8 {
		wg.Go(func() {
			req, _ := http.NewRequest("GET", nodes[i%2].AdminURL+"/console/login", nil)
			resp, err := nodes[i%2].browser().Do(req)
			if err != nil {
				statuses <- 0
				return
			}
			resp.Body.Close()
			statuses <- resp.StatusCode
		})
	}
	wg.Wait()
	close(statuses)
	for s := range statuses {
		if s != http.StatusSeeOther {
			t.Fatalf("a concurrent first console sign-in: %d", s)
		}
	}
	cl, err := store.GetClient(context.Background(), console.ClientID)
	if err != nil || cl.Public || cl.SecretHash == "" {
		t.Fatalf("the console's client: %v %+v", err, cl)
	}
	for i, n := range nodes {
		b := n.browser()
		if p, _ := b.consoleFlow(""); p.Status != http.StatusOK || !b.consoleSession() {
			t.Fatalf("console sign-in on node %d: %d %s", i, p.Status, p.Body)
		}
	}
}
