package e2e

import (
	"fmt"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/storage"
)

var (
	totpSecretRE   = regexp.MustCompile(`id="totp-secret" dir="ltr">([A-Z2-7]+)<`)
	recoveryCodeRE = regexp.MustCompile(`<code class="recovery-code">([A-Z2-7-]+)</code>`)
	sessionFieldRE = regexp.MustCompile(`name="session" value="([0-9a-f]+)"`)
)

// signIn signs a new browser in on the account pages.
func (e *env) signIn(pw string) *browser {
	e.t.Helper()
	b := e.browser()
	p := b.login("/login", userName, pw)
	if p.Status != http.StatusSeeOther {
		e.t.Fatalf("sign-in: %d %s", p.Status, p.Body)
	}
	return b
}

// securityForm posts a form of the Security page with its CSRF token.
func (b *browser) securityForm(path string, form url.Values) page {
	b.e.t.Helper()
	p := b.get("/account/security")
	if p.Status != http.StatusOK {
		b.e.t.Fatalf("security page: %d %s", p.Status, p.Body)
	}
	form.Set("csrf_token", csrfOf(b.e.t, p))
	return b.post(path, form)
}

// enrolTOTP sets up an authenticator app through the Security page and
// returns its secret and the recovery codes shown with it.
func (b *browser) enrolTOTP() (string, []string) {
	t := b.e.t
	t.Helper()
	p := b.securityForm("/account/security/totp", url.Values{"action": {"start"}})
	m := totpSecretRE.FindStringSubmatch(p.Body)
	if p.Status != http.StatusOK || m == nil || !strings.Contains(p.Body, `src="data:image/png;base64,`) {
		t.Fatalf("enrolment page: %d %s", p.Status, p.Body)
	}
	code, err := totp.GenerateCode(m[1], b.e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.post("/account/security/totp", url.Values{"csrf_token": {csrfOf(t, p)}, "action": {"confirm"}, "code": {code}})
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="totp-on"`) {
		t.Fatalf("confirm: %d %s", p.Status, p.Body)
	}
	var codes []string
	for _, c := range recoveryCodeRE.FindAllStringSubmatch(p.Body, -1) {
		codes = append(codes, c[1])
	}
	return m[1], codes
}

// TestSecurityPageTOTP: an authenticator app is set up with a QR code or
// the key and a first code, comes with ten recovery codes shown once, and
// is turned off only with the password.
func TestSecurityPageTOTP(t *testing.T) {
	e := start(t)
	b := e.signIn(userPassword)
	p := b.get("/account/security")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="totp-start"`) || !strings.Contains(p.Body, "Recovery codes") {
		t.Fatalf("security page: %d %s", p.Status, p.Body)
	}
	// A wrong first code does not turn it on.
	p = b.securityForm("/account/security/totp", url.Values{"action": {"start"}})
	p = b.post("/account/security/totp", url.Values{"csrf_token": {csrfOf(t, p)}, "action": {"confirm"}, "code": {"12345x"}})
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `id="error"`) {
		t.Fatalf("wrong first code: %d %s", p.Status, p.Body)
	}
	secret, codes := b.enrolTOTP()
	if len(codes) != 10 {
		t.Fatalf("recovery codes shown: %v", codes)
	}
	rec, err := e.Store.GetTOTP(t.Context(), e.UserID)
	if err != nil || rec.ConfirmedAt.IsZero() || strings.Contains(rec.SecretSealed, secret) {
		t.Fatalf("stored TOTP: %+v %v", rec, err)
	}
	// Shown once: the page no longer has them.
	p = b.get("/account/security")
	if recoveryCodeRE.MatchString(p.Body) || !strings.Contains(p.Body, "Unused codes: 10") || !strings.Contains(p.Body, "totp_enabled") {
		t.Fatalf("security page after enrolment: %s", p.Body)
	}
	// A second enrolment cannot replace the active one.
	p = b.securityForm("/account/security/totp", url.Values{"action": {"start"}})
	if p.Status != http.StatusConflict {
		t.Fatalf("enrol again: %d", p.Status)
	}
	// Turning it off needs the password (a stolen session alone is not
	// enough to remove the second factor).
	p = b.securityForm("/account/security/totp", url.Values{"action": {"disable"}, "current": {"wrong password"}})
	if p.Status != http.StatusUnauthorized {
		t.Fatalf("turn off with a wrong password: %d", p.Status)
	}
	if on, _ := e.Store.GetTOTP(t.Context(), e.UserID); on == nil {
		t.Fatal("TOTP turned off with a wrong password")
	}
	// Without the CSRF token nothing happens.
	p = b.post("/account/security/totp", url.Values{"action": {"disable"}, "current": {userPassword}})
	if p.Status != http.StatusForbidden {
		t.Fatalf("turn off without CSRF token: %d", p.Status)
	}
	p = b.securityForm("/account/security/totp", url.Values{"action": {"disable"}, "current": {userPassword}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("turn off: %d %s", p.Status, p.Body)
	}
	if _, err := e.Store.GetTOTP(t.Context(), e.UserID); err == nil {
		t.Fatal("TOTP still on")
	}
	// New recovery codes need the password too, and replace the old.
	p = b.securityForm("/account/security/recovery", url.Values{"current": {userPassword}})
	fresh := recoveryCodeRE.FindAllStringSubmatch(p.Body, -1)
	if p.Status != http.StatusOK || len(fresh) != 10 || fresh[0][1] == codes[0] {
		t.Fatalf("regenerate: %d %s", p.Status, p.Body)
	}
	if err := e.Store.UseRecoveryCode(t.Context(), e.UserID, storage.Hash(strings.ReplaceAll(codes[0], "-", "")), e.Clock.Now()); err == nil {
		t.Fatal("an old recovery code still works")
	}
}

// TestSecurityPagePasswordAndSessions: changing the password needs the
// current one and signs out every other session; one session can be
// signed out from another; another user's session cannot.
func TestSecurityPagePasswordAndSessions(t *testing.T) {
	e := start(t)
	b1, b2 := e.signIn(userPassword), e.signIn(userPassword)
	p := b1.get("/account/security")
	ids := sessionFieldRE.FindAllStringSubmatch(p.Body, -1)
	if len(ids) != 1 || !strings.Contains(p.Body, "(this browser)") {
		t.Fatalf("sessions listed: %s", p.Body)
	}
	// b1 signs b2 out.
	p = b1.securityForm("/account/security/sessions/end", url.Values{"session": {ids[0][1]}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("end session: %d %s", p.Status, p.Body)
	}
	if p := b2.get("/account/security"); p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("ended session still signed in: %d", p.Status)
	}
	// Another user cannot end amal's session by naming it.
	other := e.browser()
	if _, err := e.Store.GetUserByUsername(t.Context(), "badr"); err != nil {
		addUser(t, e, "badr", "another good passphrase")
	}
	if p := other.login("/login", "badr", "another good passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("badr sign-in: %d", p.Status)
	}
	b3 := e.signIn(userPassword)
	p = b1.get("/account/security")
	ids = sessionFieldRE.FindAllStringSubmatch(p.Body, -1)
	if len(ids) != 1 {
		t.Fatalf("sessions: %v", ids)
	}
	other.securityForm("/account/security/sessions/end", url.Values{"session": {ids[0][1]}})
	if p := b3.get("/account/security"); p.Status != http.StatusOK {
		t.Fatalf("another user ended amal's session: %d", p.Status)
	}

	// A wrong current password changes nothing.
	const next = "a new and better passphrase"
	p = b1.securityForm("/account/security/password", url.Values{"current": {"wrong"}, "new": {next}, "confirm": {next}})
	if p.Status != http.StatusUnauthorized {
		t.Fatalf("change with a wrong password: %d", p.Status)
	}
	p = b1.securityForm("/account/security/password", url.Values{"current": {userPassword}, "new": {"password"}, "confirm": {"password"}})
	if p.Status != http.StatusBadRequest {
		t.Fatalf("change to a common password: %d", p.Status)
	}
	p = b1.securityForm("/account/security/password", url.Values{"current": {userPassword}, "new": {next}, "confirm": {next}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("change: %d %s", p.Status, p.Body)
	}
	if p := b3.get("/account/security"); p.Status != http.StatusFound {
		t.Fatalf("another session survived the password change: %d", p.Status)
	}
	if p := b1.get("/account/security"); p.Status != http.StatusOK || !strings.Contains(p.Body, "password_changed") {
		t.Fatalf("the changing browser lost its session: %d", p.Status)
	}
	if p := e.browser().login("/login", userName, userPassword); p.Status != http.StatusUnauthorized {
		t.Fatalf("old password still signs in: %d", p.Status)
	}
	e.signIn(next)
	// The page speaks Arabic.
	p = b1.get("/account/security?lang=ar")
	if !strings.Contains(p.Body, `dir="rtl"`) || !strings.Contains(p.Body, "كلمة المرور الحالية") {
		t.Fatalf("Arabic page: %s", p.Body)
	}
}

// addUser adds another account to e's store.
func addUser(t *testing.T, e *env, name, pw string) string {
	t.Helper()
	id, err := admin.AddUser(t.Context(), e.Store, admin.UserSpec{Username: name, Password: pw, Name: name}, testPassword)
	if err != nil {
		t.Fatal(err)
	}
	return id
}

// secondStep signs a new browser in with the password for request r and
// returns it with the second-step page it was shown.
func (e *env) secondStep(r authRequest) (*browser, page) {
	e.t.Helper()
	b := e.browser()
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="recovery"`) {
		e.t.Fatalf("after the password: %d %s", p.Status, p.Body)
	}
	return b, p
}

// answer posts the second-step form step with code.
func (b *browser) answer(p page, r authRequest, step, code string) page {
	b.e.t.Helper()
	m := regexp.MustCompile(`name="req" value="([^"]*)"`).FindStringSubmatch(p.Body)
	if m == nil {
		b.e.t.Fatalf("no request in the second-step page: %s", p.Body)
	}
	return b.post("/login", url.Values{"csrf_token": {csrfOf(b.e.t, p)}, "req": {m[1]}, "step": {step}, "code": {code}})
}

// TestSignInSecondFactor: once a person turned on an authenticator app,
// every sign-in asks for a code after the password (the pipeline's
// AskEnrolled policy); a wrong code, a code used before and a spent
// recovery code are refused; a code or an unused recovery code finishes
// the sign-in into the authorization.
func TestSignInSecondFactor(t *testing.T) {
	e := start(t)
	secret, codes := e.signIn(userPassword).enrolTOTP()
	e.Clock.Advance(90 * time.Second) // past the step the confirmation spent
	r := e.notesRequest("openid email")
	b, p := e.secondStep(r)
	if !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("no code form: %s", p.Body)
	}
	// The password alone started no session.
	if q := b.get("/account"); q.Status != http.StatusFound {
		t.Fatalf("signed in before the second step: %d", q.Status)
	}
	code, err := totp.GenerateCode(secret, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	wrong := "000000"
	if wrong == code {
		wrong = "111111"
	}
	p = b.answer(p, r, "totp", wrong)
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `id="factor-error"`) {
		t.Fatalf("wrong code: %d %s", p.Status, p.Body)
	}
	// A wrong code is in the person's audit log, which the Security page
	// shows: someone holds their password.
	if failed, _ := e.Store.ListAuditEvents(t.Context(), storage.AuditFilter{UserID: e.UserID, Type: audit.FactorFailed}); len(failed) != 1 ||
		failed[0].Detail != "step=totp" {
		t.Fatalf("factor_failed events: %+v", failed)
	}
	p = b.answer(p, r, "totp", code)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent?") {
		t.Fatalf("right code: %d %s", p.Status, p.Body)
	}
	q := b.authorize(r, "email")
	tok := e.redeem(q.Get("code"), r)
	if tok.Status != http.StatusOK {
		t.Fatalf("redeem after two factors: %d %s", tok.Status, tok.Description)
	}
	// The ID token says how (RFC 8176), and so do those of its refreshes.
	idc := claimsOf(t, tok.IDToken)
	if fmt.Sprint(idc["amr"]) != "[pwd otp mfa]" || idc["acr"] != "urn:bawwab:acr:mfa" {
		t.Fatalf("ID token amr %v acr %v", idc["amr"], idc["acr"])
	}
	// A password alone (another person, no second factor) stays pwd.
	other := addUser(t, e, "badr", "another good passphrase")
	bb := e.browser()
	p2 := bb.get(r.url())
	if p2 = bb.login(p2.Location, "badr", "another good passphrase"); p2.Status != http.StatusSeeOther {
		t.Fatalf("badr: %d", p2.Status)
	}
	if tok := e.redeem(bb.authorize(r, "email").Get("code"), r); fmt.Sprint(claimsOf(t, tok.IDToken)["amr"]) != "[pwd]" || other == "" {
		t.Fatalf("password-only amr %v", claimsOf(t, tok.IDToken)["amr"])
	}
	events, _ := e.Store.ListAuditEvents(t.Context(), storage.AuditFilter{UserID: e.UserID, Type: "login"})
	if len(events) == 0 || events[0].Detail != "method=password+totp" {
		t.Fatalf("login events: %+v", events)
	}

	// The same code again, in another browser with the password: refused.
	b2, p := e.secondStep(r)
	p = b2.answer(p, r, "totp", code)
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "used already") {
		t.Fatalf("replayed code: %d %s", p.Status, p.Body)
	}
	// A recovery code stands in for the app, once.
	p = b2.answer(p, r, "recovery", strings.ToLower(codes[0]))
	if p.Status != http.StatusSeeOther {
		t.Fatalf("recovery code: %d %s", p.Status, p.Body)
	}
	b3, p := e.secondStep(r)
	p = b3.answer(p, r, "recovery", codes[0])
	if p.Status != http.StatusUnauthorized {
		t.Fatalf("spent recovery code: %d", p.Status)
	}
	// Guessing is throttled: after the free failures even a right code waits.
	for range 6 {
		p = b3.answer(p, r, "totp", wrong)
	}
	code, _ = totp.GenerateCode(secret, e.Clock.Now().Add(30*time.Second)) // the next step's code, unspent
	p = b3.answer(p, r, "totp", code)
	if p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Fatalf("right code while throttled: %d", p.Status)
	}
}

// TestSecurityNotices: changes on the Security page are mailed to the
// account's verified address through the outbox and a real SMTP relay.
func TestSecurityNotices(t *testing.T) {
	e, relay := startMailing(t)
	b := e.signIn(userPassword)
	b.enrolTOTP()
	m := relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "an authenticator app was set up")
	})
	if !strings.Contains(m.Header("Subject"), "Security notice") {
		t.Fatalf("subject %q", m.Header("Subject"))
	}
	if p := b.securityForm("/account/security/totp", url.Values{"action": {"disable"}, "current": {userPassword}}); p.Status != http.StatusSeeOther {
		t.Fatalf("turn off: %d", p.Status)
	}
	relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "your authenticator app was turned off")
	})
}
