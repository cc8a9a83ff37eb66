package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"
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
