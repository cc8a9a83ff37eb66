package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	cdppage "github.com/chromedp/cdproto/page"
	"github.com/chromedp/chromedp"
)

// TestBrowserPasskeyDisabled: in Chromium with a virtual authenticator, a
// person whose account an operator disabled cannot sign in with the
// passkey alone (the passwordless sign-in, outside the pipeline): the
// login page says the account is disabled and no session starts.
func TestBrowserPasskeyDisabled(t *testing.T) {
	exe := chromium(t)
	e := startLocalhost(t)
	b := openTab(t, exe, e.URL+"/login?lang=en", "")
	bctx, step, id := b.ctx, b.step, byID
	step("authenticator", virtualAuthenticator)
	// The button, not conditional mediation: the test chooses the moment.
	step("no conditional mediation", func(ctx context.Context, t *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, t, cdppage.AddScriptToEvaluateOnNewDocument, cdppage.AddScriptToEvaluateOnNewDocumentParams{
			Source: `PublicKeyCredential.isConditionalMediationAvailable = undefined;`})
		return chromedp.Void{}, err
	})
	step("password sign-in", chromedp.Navigate(e.URL+"/login?lang=en"), chromedp.WaitVisible(id("username")),
		chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("security-link")))
	step("add passkey", chromedp.Click(id("security-link")), chromedp.WaitVisible(id("passkey-add-submit")),
		chromedp.SendKeys(id("passkey-name"), "Laptop"), chromedp.Click(id("passkey-add-submit")), chromedp.WaitVisible(id("notice")))
	step("sign out", chromedp.Navigate(e.URL+"/account"), chromedp.WaitVisible(id("logout")), chromedp.Click(id("logout")),
		chromedp.WaitVisible(id("passkey-login")))
	if status, u := e.adminUser("POST", e.UserID, "/disable", nil); status != 200 || u["disabled"] != true {
		t.Fatalf("disable: %d %v", status, u)
	}
	step("passkey refused", chromedp.Click(id("passkey-login")), chromedp.WaitVisible(id("passkey-error")))
	msg, err := chromedp.Run(bctx, chromedp.Evaluate[string](`document.getElementById("passkey-error").textContent`))
	if err != nil || !strings.Contains(msg, "This account is disabled") {
		t.Fatalf("passkey sign-in of a disabled user shows %q (%v)", msg, err)
	}
	if sessions, _ := e.Store.ListUserSessions(t.Context(), e.UserID); len(sessions) != 0 {
		t.Fatalf("a disabled user got a session: %+v", sessions)
	}
	// Enabled again, the passkey signs in.
	if status, _ := e.adminUser("POST", e.UserID, "/enable", nil); status != 200 {
		t.Fatalf("enable: %d", status)
	}
	step("passkey after enabling", chromedp.Click(id("passkey-login")), chromedp.WaitVisible(id("security-link")))
}
