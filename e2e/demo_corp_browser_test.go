package e2e

import (
	"context"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/demo"
	"github.com/bawwab/bawwab/internal/ui"
)

// TestBrowserDemoCorp clicks the demo's "Continue with Example Corp" path
// in a real browser, in English and in Arabic (chosen in Notes): Notes →
// bawwab's sign-in page, whose button names Example Corp in the chosen
// language → Example Corp's own sign-in and consent, on its own host name
// → bawwab's consent for Notes, in the chosen language and direction →
// Notes with Layla's name and address, read from her new account. One
// browser keeps both instances' sessions (two host names, so the cookies
// of one never overwrite the other's). Each page is captured.
func TestBrowserDemoCorp(t *testing.T) {
	exe := chromium(t)
	dir := screenshotDir(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { playCorp(t, exe, dir, lang) })
	}
}

func playCorp(t *testing.T, exe, dir, lang string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{Password: &testPassword})
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 800))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	shots := filepath.Join(dir, "corp") // apart from the story's, whose names are alike
	if err := os.MkdirAll(shots, 0o755); err != nil {
		t.Fatal(err)
	}
	b := &tab{t: t, ctx: bctx, d: d, lang: lang, dir: shots}
	if err := chromedp.Do(bctx, chromedp.Navigate(d.NotesURL)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	id := func(s string) chromedp.CSS { return chromedp.CSS("#" + s) }
	button := chromedp.CSS(`button[id="upstream:` + demo.CorpUpstream + `"]`)

	b.do("notes-home", chromedp.WaitVisible(id("signup")), chromedp.Click(chromedp.CSS(`nav.langs a[lang="`+lang+`"]`)), chromedp.WaitVisible(id("signup")))
	b.do("login", chromedp.Click(id("signup")), chromedp.WaitVisible(button))
	b.bawwab("login page")
	label := map[string]string{"en": demo.CorpNameEN, "ar": demo.CorpNameAR}[lang]
	if got, want := strings.TrimSpace(b.text(`button[id="upstream:`+demo.CorpUpstream+`"]`)), ui.T(lang, "upstream.continue", label); got != want {
		t.Fatalf("the button says %q, want %q", got, want)
	}
	b.run("continue with Example Corp", chromedp.Click(button))
	b.at("Example Corp's sign-in", d.Corp.Issuer+"/login")
	b.do("corp-login", chromedp.WaitVisible(id("username")))
	b.run("sign in at Example Corp", chromedp.SendKeys(id("username"), demo.CorpUsername),
		chromedp.SendKeys(id("password"), demo.CorpPassword), chromedp.Click(id("login-submit")))
	b.at("Example Corp's consent", d.Corp.Issuer+"/consent")
	b.do("corp-consent", chromedp.WaitVisible(id("consent-allow")))
	b.run("allow at Example Corp", chromedp.Click(id("consent-allow")))
	b.at("bawwab's consent for Notes", d.AuthURL+"/consent")
	b.do("consent", chromedp.WaitVisible(id("consent-allow")))
	b.bawwab("consent page after Example Corp")
	b.do("notes-connected", chromedp.Click(id("consent-allow")), chromedp.WaitVisible(id("connected")))
	if email, name := b.text("#email"), b.text("#name"); !strings.Contains(email, demo.CorpEmail) || !strings.Contains(name, "Layla") {
		t.Fatalf("Notes shows %q, %q", name, email)
	}
	if _, err := d.Store.GetUserByUsername(t.Context(), demo.CorpUsername); err != nil {
		t.Fatalf("no account for Layla after Example Corp: %v", err)
	}
}

// run runs the actions of one step within 20 seconds, without a capture
// (they leave the page).
func (b *tab) run(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	if err := chromedp.Do(ctx, actions...); err != nil {
		b.t.Fatalf("%s (%s): %v", step, b.lang, err)
	}
}

// at waits until the tab shows a page under prefix, fully loaded.
func (b *tab) at(what, prefix string) {
	b.t.Helper()
	for deadline := time.Now().Add(15 * time.Second); time.Now().Before(deadline); time.Sleep(50 * time.Millisecond) {
		if loc, _ := b.eval(`location.href`).(string); strings.HasPrefix(loc, prefix) && b.eval(`document.readyState`) == "complete" {
			return
		}
	}
	b.t.Fatalf("%s (%s): at %v, want %s…\n%v", what, b.lang, b.eval(`location.href`), prefix, b.eval(`document.body.innerText`))
}
