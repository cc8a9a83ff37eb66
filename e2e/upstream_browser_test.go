package e2e

import (
	"context"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/internal/ui"
)

// TestBrowserUpstream signs in through an upstream in a real browser, in
// English and Arabic: the login page's "Continue with Example Corp"
// button, the upstream's own login and consent, and back at bawwab's
// consent for the app that asked, the request intact.
func TestBrowserUpstream(t *testing.T) {
	exe := chromium(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { upstreamStory(t, exe, lang) })
	}
}

func upstreamStory(t *testing.T, exe, lang string) {
	op := startBawwabOP(t)
	jane := upstreamUser{Username: "jane", Password: "tulip garden seventeen", Email: "jane@corp.example", EmailVerified: true}
	op.addUser(t, jane)
	e := startWithUpstream(t, op, "corp")
	r := e.notesRequest("openid email")
	b := openTab(t, exe, e.URL+r.url()+"&ui_locales="+lang, lang)
	step, eval := b.step, b.eval
	// at waits until the tab shows a page under prefix.
	at := func(what, prefix string) {
		t.Helper()
		for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
			if loc := eval(`location.href`); strings.HasPrefix(loc, prefix) && eval(`document.readyState`) == "complete" {
				return
			}
		}
		t.Fatalf("%s (%s): at %s, want %s…\n%s", what, lang, eval(`location.href`), prefix, eval(`document.body.innerText`))
	}
	button := chromedp.CSS(`button[id="upstream:corp"]`)
	step("login page", chromedp.WaitVisible(button))
	want := map[string]string{"en": "Continue with Example Corp", "ar": "المتابعة باستخدام إكزامبل كورب"}[lang]
	if got := eval(`document.querySelector('button[id="upstream:corp"]').textContent`); got != want {
		t.Fatalf("button %q, want %q", got, want)
	}
	step("continue with the upstream", chromedp.Click(button))
	at("the upstream's login", op.e.URL+"/login")
	step("upstream login", chromedp.WaitVisible(chromedp.CSS("#username")), chromedp.SendKeys(chromedp.CSS("#username"), jane.Username),
		chromedp.SendKeys(chromedp.CSS("#password"), jane.Password), chromedp.Click(chromedp.CSS("#login-submit")))
	at("the upstream's consent", op.e.URL+"/consent")
	step("upstream consent", chromedp.WaitVisible(chromedp.CSS("#consent-allow")), chromedp.Click(chromedp.CSS("#consent-allow")))
	// Back at bawwab: its consent page for Notes, the request kept.
	at("bawwab's consent", e.URL+"/consent?req=")
	if !strings.Contains(eval(`document.body.innerText`), "Notes") {
		t.Fatalf("consent page does not name Notes: %s", eval(`document.body.innerText`))
	}
	dir := map[string]string{"en": "en ltr", "ar": "ar rtl"}[lang]
	if got := eval(`document.documentElement.lang + " " + document.documentElement.dir`); got != dir {
		t.Fatalf("bawwab's consent after the upstream speaks %q, want %q", got, dir)
	}
	// The account made just in time has no password: the Security page
	// offers to set one, without asking for a current one.
	step("security page", chromedp.Navigate(e.URL+"/account/security?ui_locales="+lang), chromedp.WaitVisible(chromedp.CSS("#set-password")))
	if eval(`document.querySelector("#pw-current") === null ? "none" : "asked"`) != "none" {
		t.Fatal("setting a first password asks for a current one")
	}
	// The link is the only way in: no Unlink button, but a note saying
	// what to add first.
	if got := eval(`document.querySelector('[id="unlink-corp"]') === null ? "none" : "shown"`); got != "none" {
		t.Fatal("the Unlink button is shown on the only way in")
	}
	if got, want := eval(`document.querySelector('[id="link-last-corp"]').textContent`), ui.T(lang, "security.upstream.lastnote"); got != want {
		t.Fatalf("note on the only link %q, want %q", got, want)
	}
	const pw = "lantern orchard forty"
	step("set a password", chromedp.SendKeys(chromedp.CSS("#pw-new"), pw), chromedp.SendKeys(chromedp.CSS("#pw-confirm"), pw),
		chromedp.Click(chromedp.CSS("#set-password")))
	at("the Security page again", e.URL+"/account/security?done=security.password.set")
	if got, want := eval(`document.querySelector("#notice").textContent`), ui.T(lang, "security.password.set"); got != want {
		t.Fatalf("notice %q, want %q", got, want)
	}
	if u, err := e.Store.GetUserByUsername(context.Background(), jane.Username); err != nil || u.PasswordHash == "" {
		t.Fatalf("no password was set: %+v %v", u, err)
	}
	// With a password beside it, the link may go.
	if got := eval(`(document.querySelector('[id="unlink-corp"]') === null ? "no button" : "button") + ", " +
		(document.querySelector('[id="link-last-corp"]') === null ? "no note" : "note")`); got != "button, no note" {
		t.Fatalf("the link beside a password: %s", got)
	}
}
