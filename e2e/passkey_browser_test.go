package e2e

import (
	"context"
	"fmt"
	"net"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/cdproto/webauthn"
	"github.com/chromedp/chromedp"
	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/demo"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// startLocalhost serves bawwab with the issuer http://localhost:PORT:
// WebAuthn refuses an IP address as relying party id.
func startLocalhost(t *testing.T) *env {
	t.Helper()
	store := sqliteStore(t)
	l := listen(t)
	e := startNode(t, store, l, fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port), &clock{})
	e.URL = fmt.Sprintf("http://localhost:%d", l.Addr().(*net.TCPAddr).Port)
	return e
}

// virtualAuthenticator gives the tab a platform authenticator that holds
// passkeys and verifies its user (a PIN or fingerprint that always
// passes), through the DevTools WebAuthn domain.
func virtualAuthenticator(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
	if _, err := cdp.Call(ctx, t, webauthn.Enable, webauthn.EnableParams{}); err != nil {
		return chromedp.Void{}, err
	}
	_, err := cdp.Call(ctx, t, webauthn.AddVirtualAuthenticator, webauthn.AddVirtualAuthenticatorParams{Options: &webauthn.VirtualAuthenticatorOptions{
		Protocol: webauthn.AuthenticatorProtocolCtap2, Ctap2version: webauthn.Ctap2versionCtap21, Transport: webauthn.AuthenticatorTransportInternal,
		HasResidentKey: true, HasUserVerification: true, IsUserVerified: true, AutomaticPresenceSimulation: true}})
	return chromedp.Void{}, err
}

// TestBrowserPasskey: in Chromium with a virtual authenticator, in English
// and in Arabic, a person signed in with a password adds a passkey on the
// Security page, signs out, and signs in again with the passkey alone (a
// discoverable credential: no user name typed); the store moved the
// passkey's signature counter and the audit log names the method.
func TestBrowserPasskey(t *testing.T) {
	exe := chromium(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { passkeyStory(t, exe, lang) })
	}
}

func passkeyStory(t *testing.T, exe, lang string) {
	e := startLocalhost(t)
	b := openTab(t, exe, e.URL+"/login?lang="+lang, lang)
	step, eval, id := b.step, b.eval, byID
	step("authenticator", virtualAuthenticator)
	step("password sign-in", chromedp.WaitVisible(id("username")),
		chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("security-link")))
	step("security page", chromedp.Click(id("security-link")), chromedp.WaitVisible(id("passkey-add-submit")))
	if got := eval(`document.documentElement.lang + " " + document.documentElement.dir`); lang == "ar" && got != "ar rtl" || lang == "en" && got != "en ltr" {
		t.Fatalf("security page speaks %q", got)
	}
	step("add passkey", chromedp.SendKeys(id("passkey-name"), "Laptop"), chromedp.Click(id("passkey-add-submit")),
		chromedp.WaitVisible(id("notice")))
	keys, err := e.Store.ListPasskeys(t.Context(), e.UserID)
	if err != nil || len(keys) != 1 || keys[0].Name != "Laptop" {
		t.Fatalf("passkeys after adding: %+v %v", keys, err)
	}
	if got := eval(`document.querySelector(".passkey-name").textContent`); got != "Laptop" {
		t.Fatalf("passkey listed as %q", got)
	}
	if got := eval(`document.getElementById("notice").textContent`); got != ui.T(lang, "security.passkey.added") {
		t.Fatalf("notice %q", got)
	}
	passkeyLogins := func() int {
		events, _ := e.Store.ListAuditEvents(t.Context(), storage.AuditFilter{UserID: e.UserID, Type: audit.Login})
		n := 0
		for _, ev := range events {
			if strings.Contains(ev.Detail, "method=passkey") {
				n++
			}
		}
		return n
	}
	// Signed out, the login page asks the browser for a passkey with
	// conditional mediation: the browser offers it in the user name field,
	// and the virtual authenticator, standing for the person choosing it
	// there, answers at once. No user name is typed.
	step("sign out, conditional UI signs in", chromedp.Navigate(e.URL+"/account"), chromedp.WaitVisible(id("logout")), chromedp.Click(id("logout")),
		chromedp.Sleep(200*time.Millisecond), chromedp.WaitVisible(id("security-link")))
	if loc := eval(`location.pathname`); loc != "/account" || passkeyLogins() != 1 {
		t.Fatalf("after conditional passkey sign-in at %s, %d passkey sign-ins", loc, passkeyLogins())
	}
	// The session records a passkey sign-in as possession of a key and
	// more than one factor (RFC 8176), for the ID tokens it leads to.
	if sessions, _ := e.Store.ListUserSessions(t.Context(), e.UserID); len(sessions) == 0 || !slices.Contains(sessions[0].AMR, "mfa") ||
		!slices.Contains(sessions[0].AMR, "hwk") && !slices.Contains(sessions[0].AMR, "swk") {
		t.Fatalf("passkey session amr: %+v", sessions)
	}
	before := keys[0]
	if keys, _ = e.Store.ListPasskeys(t.Context(), e.UserID); keys[0].LastUsedAt.IsZero() || keys[0].SignCount <= before.SignCount && before.SignCount != 0 {
		t.Fatalf("passkey after sign-in: %+v (before %+v)", keys[0], before)
	}
	// A browser without conditional mediation shows the button.
	step("no conditional mediation", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `PublicKeyCredential.isConditionalMediationAvailable = undefined;`})
		return chromedp.Void{}, err
	})
	step("sign out", chromedp.Navigate(e.URL+"/account"), chromedp.WaitVisible(id("logout")), chromedp.Click(id("logout")),
		chromedp.WaitVisible(id("passkey-login")))
	step("passkey button signs in", chromedp.Click(id("passkey-login")), chromedp.WaitVisible(id("security-link")))
	if loc := eval(`location.pathname`); loc != "/account" || passkeyLogins() != 2 {
		t.Fatalf("after passkey sign-in at %s, %d passkey sign-ins", loc, passkeyLogins())
	}
	// The passkey (user verified) counts as a second factor: an app asking
	// for acr urn:bawwab:acr:mfa is not sent to a step-up, and its tokens
	// say so.
	var sessionCookie string
	step("session cookie", func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		res, err := cdp.Call(ctx, tg, network.GetCookies, network.GetCookiesParams{URLs: []string{e.URL + "/"}})
		for _, c := range res.Cookies {
			if c.Name == session.CookieName {
				sessionCookie = c.Value
			}
		}
		return chromedp.Void{}, err
	})
	passkeyStepUp(t, e, sessionCookie)
	// With a password, the passkey is asked as the second step.
	step("sign out again", chromedp.Navigate(e.URL+"/account"), chromedp.WaitVisible(id("logout")), chromedp.Click(id("logout")),
		chromedp.WaitVisible(id("passkey-login")))
	step("password, then passkey", chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("factor-passkey-submit")),
		chromedp.Click(id("factor-passkey-submit")), chromedp.WaitVisible(id("security-link")))
	if sessions, _ := e.Store.ListUserSessions(t.Context(), e.UserID); len(sessions) == 0 || !slices.Contains(sessions[0].AMR, "pwd") ||
		!slices.Contains(sessions[0].AMR, "hwk") || !slices.Contains(sessions[0].AMR, "mfa") {
		t.Fatalf("password + passkey session amr: %+v", sessions)
	}
	// The passkey is removed on the Security page.
	step("remove passkey", chromedp.Navigate(e.URL+"/account/security"), chromedp.WaitVisible(chromedp.CSS(".passkey-delete")),
		chromedp.Click(chromedp.CSS(".passkey-delete")), chromedp.WaitVisible(id("notice")))
	if keys, _ := e.Store.ListPasskeys(t.Context(), e.UserID); len(keys) != 0 {
		t.Fatalf("passkeys after removing: %+v", keys)
	}
}

// TestBrowserTOTP: in Chromium, in English and in Arabic, a person sets up
// an authenticator app on the Security page from the key shown beside the
// QR code, confirms it with a code computed here, and is asked for a code
// after the password at the next sign-in.
func TestBrowserTOTP(t *testing.T) {
	exe := chromium(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { totpStory(t, exe, lang) })
	}
}

func totpStory(t *testing.T, exe, lang string) {
	e := start(t)
	b := openTab(t, exe, e.URL+"/login?lang="+lang, lang)
	step, eval, id := b.step, b.eval, byID
	step("password sign-in", chromedp.WaitVisible(id("username")),
		chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("security-link")))
	step("set up", chromedp.Click(id("security-link")), chromedp.WaitVisible(id("totp-start")),
		chromedp.Click(id("totp-start")), chromedp.WaitVisible(id("totp-qr")))
	secret := eval(`document.getElementById("totp-secret").textContent`)
	if ok := eval(`String(document.getElementById("totp-qr").naturalWidth > 0)`); ok != "true" {
		t.Fatal("the QR code does not show")
	}
	code, err := totp.GenerateCode(secret, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	step("confirm", chromedp.SendKeys(id("totp-code"), code), chromedp.Click(id("totp-confirm")), chromedp.WaitVisible(id("recovery-codes")))
	if got := eval(`String(document.querySelectorAll(".recovery-code").length)`); got != "10" {
		t.Fatalf("%s recovery codes shown", got)
	}
	if got := eval(`document.documentElement.dir`); lang == "ar" && got != "rtl" {
		t.Fatalf("Arabic page direction %q", got)
	}
	e.Clock.Advance(90 * time.Second)
	step("sign out", chromedp.Navigate(e.URL+"/account"), chromedp.WaitVisible(id("logout")), chromedp.Click(id("logout")),
		chromedp.WaitVisible(id("username")))
	step("password, then code page", chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("code")))
	if got := eval(`document.querySelector("h1").textContent`); got != ui.T(lang, "factor.title") {
		t.Fatalf("second-step page title %q", got)
	}
	code, _ = totp.GenerateCode(secret, e.Clock.Now())
	step("code", chromedp.SendKeys(id("code"), code), chromedp.Click(id("factor-submit")), chromedp.WaitVisible(id("security-link")))
	events, _ := e.Store.ListAuditEvents(t.Context(), storage.AuditFilter{UserID: e.UserID, Type: audit.Login})
	if len(events) == 0 || events[0].Detail != "method=password+totp" {
		t.Fatalf("login events: %+v", events)
	}
}

// TestBrowserDemoPasskey: on the demo as `bawwab demo` runs it (at
// localhost), Amal signs in with her password, adds a passkey on the
// Security page as the demo's start-up text says, signs out, and signs in
// again with the passkey alone.
func TestBrowserDemoPasskey(t *testing.T) {
	exe := chromium(t)
	d, _ := startDemo(t)
	b := openTab(t, exe, d.AuthURL+"/login", "")
	step, id := b.step, byID
	step("authenticator", virtualAuthenticator)
	step("password sign-in", chromedp.WaitVisible(id("username")),
		chromedp.SendKeys(id("username"), demo.Username), chromedp.SendKeys(id("password"), demo.Password),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("security-link")))
	step("add passkey", chromedp.Navigate(d.AuthURL+"/account/security"), chromedp.WaitVisible(id("passkey-add-submit")),
		chromedp.SendKeys(id("passkey-name"), "Laptop"), chromedp.Click(id("passkey-add-submit")), chromedp.WaitVisible(id("notice")))
	amal, err := d.Store.GetUserByUsername(t.Context(), demo.Username)
	if err != nil {
		t.Fatal(err)
	}
	if keys, err := d.Store.ListPasskeys(t.Context(), amal.ID); err != nil || len(keys) != 1 {
		t.Fatalf("passkeys after adding: %+v %v", keys, err)
	}
	// Signed out, the sign-in page offers the passkey; the virtual
	// authenticator answers for the person choosing it. No password.
	step("sign out, sign in with the passkey", chromedp.Navigate(d.AuthURL+"/account"), chromedp.WaitVisible(id("logout")),
		chromedp.Click(id("logout")), chromedp.Sleep(200*time.Millisecond), chromedp.WaitVisible(id("security-link")))
	sessions, _ := d.Store.ListUserSessions(t.Context(), amal.ID)
	if len(sessions) == 0 || slices.Contains(sessions[0].AMR, "pwd") || !slices.Contains(sessions[0].AMR, "mfa") {
		t.Fatalf("passwordless session: %+v", sessions)
	}
}

// passkeyStepUp checks, with the session of a passwordless passkey
// sign-in, that a request for acr urn:bawwab:acr:mfa is met without a
// step-up and that the ID token says amr hwk or swk with mfa.
func passkeyStepUp(t *testing.T, e *env, sessionCookie string) {
	t.Helper()
	if sessionCookie == "" {
		t.Fatal("no session cookie after the passkey sign-in")
	}
	b := e.browser()
	u, _ := url.Parse(e.URL)
	b.Jar.SetCookies(u, []*http.Cookie{{Name: session.CookieName, Value: sessionCookie, Path: "/"}})
	r := e.notesRequest("openid email")
	r.Extra = url.Values{"acr_values": {token.ACRMFA}}
	if p := b.get(r.url()); strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("a passkey session was sent to step up: %s", p.Location)
	}
	tok := e.redeem(b.authorize(r, "email").Get("code"), r)
	c := claimsOf(t, tok.IDToken)
	if amr := fmt.Sprint(c["amr"]); c["acr"] != token.ACRMFA || !strings.Contains(amr, "mfa") || !strings.Contains(amr, "wk") || strings.Contains(amr, "pwd") {
		t.Fatalf("passkey ID token: acr %v amr %v", c["acr"], c["amr"])
	}
}
