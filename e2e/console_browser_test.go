package e2e

import (
	"context"
	"strings"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// TestBrowserConsole: in Chromium, in English and in Arabic (right to
// left), an admin opens the console, signs in through bawwab's login and
// consent pages, lands on the dashboard, creates a client whose secret is
// shown once and listed after, deletes it after confirming, sees the
// users and the audit log, and signs out. Every page is captured.
func TestBrowserConsole(t *testing.T) {
	exe := chromium(t)
	dir := screenshotDir(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { playConsole(t, exe, dir, lang) })
	}
}

func playConsole(t *testing.T, exe, dir, lang string) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	addConsoleUser(t, e, "badr")
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 800))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	b := &tab{t: t, ctx: bctx, lang: lang, dir: dir}
	id := func(s string) chromedp.CSS { return chromedp.CSS("#" + s) }
	dirOf := map[string]string{"en": "ltr", "ar": "rtl"}[lang]
	speaks := func(what string) {
		t.Helper()
		if got := b.eval(`document.documentElement.lang + " " + document.documentElement.dir`); got != lang+" "+dirOf {
			t.Fatalf("%s: page is %q, want %q", what, got, lang+" "+dirOf)
		}
	}

	b.do("console-login", chromedp.Navigate(e.AdminURL+"/console/?lang="+lang), chromedp.WaitVisible(id("username")))
	speaks("bawwab's login page, asked by the console")
	b.do("console-consent", chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("consent-allow")))
	b.do("console-dashboard", chromedp.Click(id("consent-allow")), chromedp.WaitVisible(id("count-clients")))
	speaks("dashboard")
	if loc, _ := b.eval(`location.href`).(string); !strings.HasPrefix(loc, e.AdminURL+"/console/") {
		t.Fatalf("dashboard at %s", loc)
	}
	if n := b.text("#count-users"); n != "2" {
		t.Fatalf("dashboard counts %s users", n)
	}

	clientID := "shop-" + lang
	b.do("console-clients", chromedp.Click(id("nav-clients")), chromedp.WaitVisible(id("new-client")))
	b.do("console-client-created",
		chromedp.SendKeys(id("client_id"), clientID), chromedp.SendKeys(id("name"), map[string]string{"en": "Shop", "ar": "المتجر"}[lang]),
		chromedp.SendKeys(id("redirect_uris"), "https://shop.example/cb"),
		chromedp.Click(id("create-client")), chromedp.WaitVisible(id("secret")))
	secret := b.text("#secret")
	c, err := e.Store.GetClient(context.Background(), clientID)
	if err != nil || len(secret) < 20 || c.SecretHash != storage.Hash(secret) {
		t.Fatalf("created client: %v %+v, secret %q", err, c, secret)
	}
	b.do("console-clients-listed", chromedp.Click(id("nav-clients")), chromedp.WaitVisible(id("client-"+clientID)))
	if b.eval(`document.getElementById("secret") === null && !document.body.innerText.includes(`+jsString(secret)+`)`) != true {
		t.Fatal("the secret is shown a second time")
	}
	b.do("console-delete-confirm", chromedp.Click(id("delete-"+clientID)), chromedp.WaitVisible(id("delete-confirm")))
	b.do("console-client-deleted", chromedp.Click(id("delete-confirm")), chromedp.WaitVisible(id("notice")))
	if _, err := e.Store.GetClient(context.Background(), clientID); err == nil {
		t.Fatal("client not deleted")
	}

	b.do("console-users", chromedp.Click(id("nav-users")), chromedp.WaitVisible(id("user-badr")))
	b.do("console-user-disabled", chromedp.Click(id("disable-badr")), chromedp.WaitVisible(id("enable-badr")))
	speaks("users page")
	b.do("console-audit", chromedp.Click(id("nav-audit")), chromedp.WaitVisible(id("events")))
	if ev := b.text("#events"); !strings.Contains(ev, "console_signin") || !strings.Contains(ev, "user_disabled") {
		t.Fatalf("audit page: %s", ev)
	}
	b.do("console-signed-out", chromedp.Click(id("signout")), chromedp.WaitVisible(id("message")))
	if msg := b.text("#message"); msg != ui.T(lang, "console.signedout") {
		t.Fatalf("sign-out page says %q", msg)
	}
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}
