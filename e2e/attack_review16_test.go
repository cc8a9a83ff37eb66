package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

// Attacks on the accounts feature (sign-up, links, factors, step-up,
// account data) from outside, over HTTP.

// TestAccountFormsOddInput: the forms of the account and Security pages,
// sign-up, links and sign-in answer huge fields, NUL, invalid UTF-8 and
// repeated fields without a server error.
func TestAccountFormsOddInput(t *testing.T) {
	e := offStart(t)
	b := e.signIn(userPassword)
	odd := []string{strings.Repeat("A", 1<<16), "a\x00b", "\xff\xfe", "", " ", "%00"}
	paths := map[string][]string{
		"/account/security/totp":            {"action", "code", "current"},
		"/account/security/recovery":        {"current"},
		"/account/security/password":        {"current", "new", "password"},
		"/account/security/sessions/end":    {"session"},
		"/account/security/data":            {"x"},
		"/account/security/passkeys/begin":  {"name"},
		"/account/security/passkeys/finish": {"credential", "name"},
		"/account/security/passkeys/rename": {"id", "name"},
		"/account/security/passkeys/delete": {"id", "current"},
		"/account/security/upstream/unlink": {"upstream", "id"},
		"/login/passkey/begin":              {"req"},
		"/login/passkey/finish":             {"req", "credential"},
		"/signup":                           {"username", "email", "password", "name", "invite"},
		"/verify/resend":                    {"email", "login"},
		"/reset":                            {"login"},
		"/reset/confirm":                    {"token", "password"},
		"/login":                            {"req", "step", "code", "username", "password"},
		"/account/security/delete":          {"current"},
	}
	for path, fields := range paths {
		for _, v := range odd {
			if path == "/account/security/delete" && v == "" {
				continue // an account without a password would be deleted
			}
			form := url.Values{}
			for _, f := range fields {
				form[f] = []string{v, v}
			}
			actions := []string{""}
			if path == "/account/security/totp" {
				actions = []string{"start", "confirm", "disable", v}
			}
			for _, a := range actions {
				if a != "" {
					form.Set("action", a)
				}
				if p := b.securityForm(path, form); p.Status >= 500 {
					t.Errorf("%s action=%q %q: %d %s", path, a, short16(v), p.Status, p.Body)
				}
			}
		}
	}
	for _, path := range []string{"/verify?token=%00", "/verify?token=%ff", "/reset/confirm?token=%ff", "/verify?token=" + strings.Repeat("a", 5000),
		"/account/security/delete?x=1", "/signup?invite=%ff", "/signup?invite=" + strings.Repeat("z", 9000)} {
		if p := b.get(path); p.Status >= 500 {
			t.Errorf("GET %s: %d %s", short16(path), p.Status, p.Body)
		}
	}
}

func short16(s string) string {
	if len(s) > 40 {
		return s[:40] + "…"
	}
	return s
}

// TestRecoveryCodeRace: one recovery code sent at once from six browsers
// (each after the password) passes one step-up only.
func TestRecoveryCodeRace(t *testing.T) {
	e := offStart(t)
	b := e.signIn(userPassword)
	_, codes := b.enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	r := e.notesRequest("openid payment")
	var wg sync.WaitGroup
	var mu sync.Mutex
	passed := 0
	for range 6 {
		x := e.browser()
		p := x.login(x.get(r.url()).Location, userName, userPassword)
		if p.Status != http.StatusOK {
			p = x.get(p.Location)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			if res := x.answer(p, r, "recovery", codes[0]); res.Status == http.StatusSeeOther {
				mu.Lock()
				passed++
				mu.Unlock()
			}
		}()
	}
	wg.Wait()
	if passed != 1 {
		t.Fatalf("one recovery code passed %d times", passed)
	}
}

// TestMaxAgeSignInForRequest: a sign-in made for a request is the
// re-authentication its max_age asks for (OpenID Connect Core §3.1.2.1),
// however long the person then takes: under max_age=0 the sign-in
// finishes, and under max_age=0 or 1 a few seconds on the consent page do
// not send the person back to /login. A session from before the request
// is still too old.
func TestMaxAgeSignInForRequest(t *testing.T) {
	e := start(t)
	b := e.signIn(userPassword)
	e.Clock.Advance(time.Hour)
	for _, maxAge := range []string{"0", "1"} {
		r := e.notesRequest("openid email")
		r.Extra = url.Values{"max_age": {maxAge}}
		p := b.get(r.url())
		if !strings.HasPrefix(p.Location, "/login?") {
			t.Fatalf("max_age=%s with a session from before the request: %d %s", maxAge, p.Status, p.Location)
		}
		e.Clock.Advance(2 * time.Second) // typing the password
		p = b.login(p.Location, userName, userPassword)
		if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent?") {
			t.Fatalf("max_age=%s: sign-in not finished: %d %s", maxAge, p.Status, p.Location)
		}
		e.Clock.Advance(3 * time.Second) // reading the consent page
		p = b.consent(p.Location, true, "email")
		if !strings.HasPrefix(p.Location, r.RedirectURI) {
			t.Fatalf("max_age=%s: a sign-in for the request was sent back to /login after consent: %d %s", maxAge, p.Status, p.Location)
		}
		cb, _ := url.Parse(p.Location)
		tok := e.redeem(cb.Query().Get("code"), r)
		if at, ok := claimsOf(t, tok.IDToken)["auth_time"].(float64); !ok || int64(at) < e.Clock.Now().Unix()-10 {
			t.Fatalf("max_age=%s: auth_time %v", maxAge, at)
		}
		e.Clock.Advance(time.Hour)
	}
}

// TestFactorsNeedSecondFactor: a session of the password alone cannot
// mint, replace or remove the second factor of a person who has one, nor
// delete the account —
// else whoever holds only the password (under second_factor off, through
// an app that asks for no second factor) makes new recovery codes and
// passes the step-up a payment request asks for. The account pages' own
// sign-in asks an enrolled factor under every setting, so the owner signs
// in again with it and manages their factors; the session that set up the
// first factor manages it too.
func TestFactorsNeedSecondFactor(t *testing.T) {
	e := offStart(t)
	owner, secret := passwordSession(e)
	// The owner's own session set the factor up: it manages it.
	if p := owner.securityForm("/account/security/recovery", url.Values{"current": {userPassword}}); p.Status != http.StatusOK || !recoveryCodeRE.MatchString(p.Body) {
		t.Fatalf("the session that set up the factor: %d", p.Status)
	}
	e.Clock.Advance(time.Minute)

	// The account sign-in asks the enrolled factor, even under off.
	if p := e.browser().login("/login", userName, userPassword); p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("account sign-in of an enrolled person under off: %d %s", p.Status, p.Location)
	}
	// A password session got through an app that asks no second factor.
	thief := e.browser()
	plain := e.notesRequest("openid email")
	thief.authorize(plain, "email")
	for path, form := range map[string]url.Values{
		"/account/security/recovery":        {"current": {userPassword}},
		"/account/security/totp":            {"action": {"disable"}, "current": {userPassword}},
		"/account/security/passkeys/delete": {"id": {"x"}},
		"/account/security/delete":          {"current": {userPassword}},
	} {
		p := thief.securityForm(path, form)
		if p.Status == http.StatusNotFound && strings.Contains(path, "passkeys") {
			continue // passkeys are off on an issuer that names an IP address
		}
		if p.Status != http.StatusForbidden || recoveryCodeRE.MatchString(p.Body) || !strings.Contains(p.Body, "sign out and sign in again") {
			t.Fatalf("%s with a password session: %d", path, p.Status)
		}
	}
	sec := thief.get("/account/security")
	p := thief.post("/account/security/passkeys/begin", url.Values{"csrf_token": {csrfOf(t, sec)}})
	if p.Status != http.StatusForbidden && p.Status != http.StatusNotFound { // 404: passkeys are off on an IP issuer
		t.Fatalf("passkey registration with a password session: %d %s", p.Status, p.Body)
	}
	if n, err := e.Store.CountRecoveryCodes(t.Context(), userID(t, e)); err != nil || n != 10 {
		t.Fatalf("recovery codes after the refusals: %d", n)
	}
	// The payment step-up still needs the owner's factor.
	r := e.notesRequest("openid payment")
	if p := thief.get(thief.get(r.url()).Location); !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("payment step-up: %d %s", p.Status, p.Body)
	}
	// Signed in again with the factor, the owner makes new codes.
	b := e.browser()
	p = b.login("/login", userName, userPassword)
	code, _ := totp.GenerateCode(secret, e.Clock.Now())
	if p = b.post("/login", url.Values{"csrf_token": {csrfOf(t, p)}, "step": {"totp"}, "code": {code}}); p.Status != http.StatusSeeOther {
		t.Fatalf("account sign-in with the code: %d %s", p.Status, p.Body)
	}
	if p := b.securityForm("/account/security/recovery", url.Values{"current": {userPassword}}); p.Status != http.StatusOK || !recoveryCodeRE.MatchString(p.Body) {
		t.Fatalf("new codes after signing in with the factor: %d", p.Status)
	}
}

func userID(t *testing.T, e *env) string {
	t.Helper()
	u, err := e.Store.GetUserByUsername(t.Context(), userName)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestAdminFactorRoutesOddInput: the admin routes of an account's
// factors and state answer odd ids and bodies with a 4xx, never a server
// error.
func TestAdminFactorRoutesOddInput(t *testing.T) {
	e := start(t)
	ids := []string{"nobody", "a\x00b", "\xff\xfe", strings.Repeat("x", 5000), e.UserID}
	for _, id := range ids {
		for _, call := range []struct{ method, rest string }{
			{"GET", "/factors"}, {"DELETE", "/factors"}, {"DELETE", "/factors/passkeys/%00"}, {"DELETE", "/factors/passkeys/" + strings.Repeat("p", 3000)},
			{"POST", "/disable"}, {"POST", "/enable"}, {"POST", "/verification"}, {"POST", "/unlock"},
		} {
			status, _ := e.adminUser(call.method, id, call.rest, nil)
			if status >= 500 {
				t.Errorf("%s %s of %q: %d", call.method, call.rest, short16(id), status)
			}
		}
		for _, body := range []any{map[string]any{"reason": "a\x00b"}, map[string]any{"reason": strings.Repeat("r", 1<<16)}, "\xff", []int{1}} {
			if status, _ := e.adminUser("POST", id, "/disable", body); status >= 500 {
				t.Errorf("disable %q with %T: %d", short16(id), body, status)
			}
		}
	}
}

// TestFactorGuessRace: thirty wrong codes sent at once, each from its own
// browser that passed the password, are all counted against the person:
// only a few are checked, the rest wait (429), and the right code then
// waits too.
func TestFactorGuessRace(t *testing.T) {
	e := offStart(t)
	_, secret := passwordSession(e)
	// The throttle's lock lasts seconds of this clock; a loaded machine
	// must not let it run out between the burst and the right code.
	e.Clock.Freeze()
	r := e.notesRequest("openid payment")
	const n = 30
	pages := make([]page, n)
	browsers := make([]*browser, n)
	for i := range n {
		browsers[i] = e.appSignIn()
		pages[i] = stepUpForm(browsers[i], r)
	}
	right, _ := totp.GenerateCode(secret, e.Clock.Now())
	wrong := "000000"
	if right == wrong {
		wrong = "111111"
	}
	var wg sync.WaitGroup
	statuses := make([]int, n)
	for i := range n {
		wg.Add(1)
		go func() { defer wg.Done(); statuses[i] = browsers[i].answer(pages[i], r, "totp", wrong).Status }()
	}
	wg.Wait()
	checked := 0
	for _, s := range statuses {
		switch s {
		case http.StatusUnauthorized:
			checked++
		case http.StatusTooManyRequests:
		default:
			t.Fatalf("a wrong code: %d", s)
		}
	}
	if checked > 10 {
		t.Fatalf("%d of %d parallel wrong codes were checked", checked, n)
	}
	if p := browsers[0].answer(stepUpForm(browsers[0], r), r, "totp", right); p.Status != http.StatusTooManyRequests {
		t.Fatalf("the right code after the burst: %d", p.Status)
	}
	t.Logf("%d of %d checked", checked, n)
}

// TestResetLinkOutlived: a reset link mailed before the person changed
// their password on the Security page, before the operator changed their
// address, or before the operator set their password, no longer sets a
// password: whoever read the mailbox keeps no way in.
func TestResetLinkOutlived(t *testing.T) {
	e, relay := startMailing(t)
	// Whoever reads amal's mailbox asks for a link; amal, warned, changes
	// the password on the Security page.
	askReset(e, userName)
	link := linkIn(t, relay.Wait(t, 10*time.Second, mailtest.To("amal@example.com")), "/reset/confirm")
	b := e.signIn(userPassword)
	const next = "a fresh and private passphrase"
	if p := b.securityForm("/account/security/password", url.Values{"current": {userPassword}, "new": {next}, "confirm": {next}}); p.Status != http.StatusSeeOther {
		t.Fatalf("password change: %d %s", p.Status, p.Body)
	}
	if p := resetWith(e, e.browser(), link, "the attacker's passphrase", nil); p.Status != http.StatusBadRequest {
		t.Fatalf("a reset link from before the password change: %d", p.Status)
	}

	// Another link; the operator moves the account to a new address.
	e.Clock.Advance(time.Hour) // past the mail budget
	askReset(e, userName)
	first, _ := url.Parse(link)
	second := linkIn(t, relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "/reset/confirm") && !strings.Contains(m.Body(), first.Query().Get("token"))
	}), "/reset/confirm")
	u, err := e.Store.GetUser(t.Context(), e.UserID)
	if err != nil {
		t.Fatal(err)
	}
	u.Email = "amal.new@example.com"
	if err := e.Store.UpdateUser(t.Context(), *u); err != nil {
		t.Fatal(err)
	}
	if p := resetWith(e, e.browser(), second, "the attacker's passphrase", nil); p.Status != http.StatusBadRequest {
		t.Fatalf("a reset link mailed to the old address: %d", p.Status)
	}
	if p := e.browser().login("/login", userName, next); p.Status != http.StatusSeeOther {
		t.Fatalf("the owner's password: %d", p.Status)
	}

	// A third link, to the new address once confirmed; the operator sets
	// the password through the admin API.
	u.EmailVerified = true
	if err := e.Store.UpdateUser(t.Context(), *u); err != nil {
		t.Fatal(err)
	}
	e.Clock.Advance(time.Hour)
	askReset(e, userName)
	third := linkIn(t, relay.Wait(t, 10*time.Second, mailtest.To("amal.new@example.com")), "/reset/confirm")
	if status, out := e.adminUser("PUT", e.UserID, "/password", map[string]string{"password": "the operator's new passphrase"}); status != http.StatusNoContent {
		t.Fatalf("admin password: %d %v", status, out)
	}
	if p := resetWith(e, e.browser(), third, "the attacker's passphrase", nil); p.Status != http.StatusBadRequest {
		t.Fatalf("a reset link from before the operator set the password: %d", p.Status)
	}
}

// TestExchangeAfterAccountEnds: an access token of a person whose account
// was disabled, or deleted, trades for nothing at the token exchange
// (RFC 8693), nor is it active at introspection.
func TestExchangeAfterAccountEnds(t *testing.T) {
	for _, how := range []string{"disable", "delete"} {
		t.Run(how, func(t *testing.T) {
			e := start(t)
			if _, err := admin.AddClient(t.Context(), e.Store, admin.ClientSpec{ID: "gateway", GrantTypes: []string{token.TokenExchangeGrantType},
				Secret: "gateway-secret-for-tests-0123456789"}, scope.Default()); err != nil {
				t.Fatal(err)
			}
			b := e.browser()
			r := e.notesRequest("openid email files.read")
			user := e.redeem(b.authorize(r, "email", "files.read").Get("code"), r)
			wantStatus(t, user.Status, 200, "user token", user.Description)
			switch how {
			case "disable":
				if status, _ := e.adminUser("POST", e.UserID, "/disable", nil); status != http.StatusOK {
					t.Fatalf("disable: %d", status)
				}
			case "delete":
				p := b.get("/account/security/delete")
				if p = b.post("/account/security/delete", url.Values{"csrf_token": {csrfOf(t, p)}, "current": {userPassword}}); p.Status != http.StatusOK {
					t.Fatalf("delete: %d %s", p.Status, p.Body)
				}
			}
			x := e.token(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {user.AccessToken},
				"subject_token_type": {token.AccessTokenType}, "scope": {"files.read"}}, "gateway", "gateway-secret-for-tests-0123456789")
			if x.Status != http.StatusBadRequest || x.Error != "invalid_grant" {
				t.Fatalf("exchange after %s: %d %s %s", how, x.Status, x.Error, x.Description)
			}
			if in := e.introspect(user.AccessToken, "api", "api-secret-for-tests-0123456789"); in["active"] != false {
				t.Fatalf("introspection after %s: %v", how, in)
			}
		})
	}
}

// TestDeletedAccountNotInherited: someone who signs up with a deleted
// account's username and address, and confirms it, inherits nothing: no
// consent (the app asks again), another subject, no factor.
func TestDeletedAccountNotInherited(t *testing.T) {
	e, relay := startMailing(t)
	b := e.browser()
	r := e.notesRequest("openid email")
	old := e.redeem(b.authorize(r, "email").Get("code"), r)
	wantStatus(t, old.Status, 200, "token", old.Description)
	b.enrolTOTP()
	p := b.get("/account/security/delete")
	if p = b.post("/account/security/delete", url.Values{"csrf_token": {csrfOf(t, p)}, "current": {userPassword}}); p.Status != http.StatusOK {
		t.Fatalf("delete: %d", p.Status)
	}
	n := e.browser()
	if p := n.signup("/signup", url.Values{"name": {"Someone Else"}, "email": {"amal@example.com"}, "username": {userName},
		"password": {"the newcomer's passphrase"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-up with the deleted account's names: %d %s", p.Status, p.Body)
	}
	verify := linkIn(t, relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "/verify")
	}), "/verify")
	if p := n.get(strings.TrimPrefix(verify, e.URL)); p.Status != http.StatusOK {
		t.Fatalf("verify: %d", p.Status)
	}
	r2 := e.notesRequest("openid email")
	p = n.get(r2.url())
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/consent?") {
		t.Fatalf("the newcomer skipped consent or was asked more: %d %s", p.Status, p.Location)
	}
	tok := e.redeem(n.authorize(r2, "email").Get("code"), r2)
	if claimsOf(t, tok.IDToken)["sub"] == claimsOf(t, old.IDToken)["sub"] {
		t.Fatal("the newcomer got the deleted account's subject")
	}
}
