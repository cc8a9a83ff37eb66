package e2e

import (
	"context"
	"net/http"
	"strings"
	"testing"

	"github.com/chromedp/cdproto/cdp"
	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// TestBrowserConsole: in Chromium, in English and in Arabic (right to
// left), an admin opens the console, signs in through bawwab's login and
// consent pages, lands on the dashboard, creates a client whose secret is
// shown once and listed after, deletes it after confirming, edits and
// searches clients, creates a user whose password is shown once and
// signs it out everywhere, sees a token issued on the dashboard's charts,
// adds, disables and edits an upstream, sees the audit log, and signs out.
// Every page is captured.
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
	addConsoleUser(t, e, "carim")
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
	if n := b.text("#count-users"); n != "3" {
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

	// A client's settings, edited: verified, with a second redirect URI.
	b.do("console-client-edit", chromedp.Click(id("nav-clients")), chromedp.WaitVisible(id("edit-notes")),
		chromedp.Click(id("edit-notes")), chromedp.WaitVisible(id("edit-client")))
	b.do("console-client-saved", chromedp.SetValue(id("redirect_uris"), notesRedirect+"\nhttps://notes.example/second"),
		chromedp.Click(id("verified")), chromedp.Click(id("save-client")), chromedp.WaitVisible(id("notice")))
	if cl, _ := e.Store.GetClient(context.Background(), "notes"); !cl.Verified || len(cl.RedirectURIs) != 2 {
		t.Fatalf("edited client: %+v", cl)
	}
	b.do("console-clients-search", chromedp.SendKeys(id("q"), "second"), chromedp.Click(id("search")), chromedp.WaitVisible(id("client-notes")))
	if b.eval(`document.getElementById("client-cli") === null`) != true {
		t.Fatal("the search kept a client it does not match")
	}

	b.do("console-users", chromedp.Click(id("nav-users")), chromedp.WaitVisible(id("user-badr")))
	b.do("console-user-disabled", chromedp.Click(id("disable-badr")), chromedp.WaitVisible(id("enable-badr")))
	speaks("users page")
	// A new user, its password made and shown once; then signed out
	// everywhere from its page.
	b.do("console-user-created", chromedp.SendKeys(id("username"), "dalia-"+lang), chromedp.SendKeys(id("email"), "dalia-"+lang+"@example.com"),
		chromedp.Click(id("create-user")), chromedp.WaitVisible(id("new-password")))
	if pw := b.text("#new-password"); len(pw) < 20 {
		t.Fatalf("new user's password %q", pw)
	}
	b.do("console-user-signed-out", chromedp.Click(id("do-signout")), chromedp.WaitVisible(id("notice")))
	if b.eval(`document.getElementById("new-password") === null`) != true {
		t.Fatal("the new user's password is shown a second time")
	}
	speaks("user page")
	b.do("console-audit", chromedp.Click(id("nav-audit")), chromedp.WaitVisible(id("events")))
	if ev := b.text("#events"); !strings.Contains(ev, "console_signin") || !strings.Contains(ev, "user_disabled") {
		t.Fatalf("audit page: %s", ev)
	}

	// Grants: the one Notes holds is revoked, and its token stops working.
	r := e.notesRequest("openid")
	tok := e.redeem(e.browser().authorize(r, "openid").Get("code"), r)
	if tok.AccessToken == "" {
		t.Fatalf("code flow for Notes: %+v", tok)
	}
	b.do("console-grants", chromedp.Click(id("nav-users")), chromedp.WaitVisible(id("grants-"+userName)),
		chromedp.Click(id("grants-"+userName)), chromedp.WaitVisible(id("grant-notes")))
	b.do("console-grant-revoked", chromedp.Click(id("revoke-notes")), chromedp.WaitVisible(id("notice")))
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("token of the revoked grant: %v", in)
	}

	// The token just issued is on the dashboard's charts.
	b.do("console-dashboard-charts", chromedp.Click(id("nav-dashboard")), chromedp.WaitVisible(id("chart-tokens-hour")))
	if n := b.text("#total-tokens-hour"); n == "0" || n == "" {
		t.Fatalf("the dashboard's token chart counts %q", n)
	}

	// An upstream identity provider, added and disabled.
	b.do("console-upstreams", chromedp.Click(id("nav-upstreams")), chromedp.WaitVisible(id("new-upstream")))
	b.do("console-upstream-added", chromedp.SendKeys(id("id"), "corp"), chromedp.SendKeys(id("name_en"), "Corp"),
		chromedp.SendKeys(id("name_ar"), "الشركة"), chromedp.SendKeys(id("issuer"), "https://login.corp.example"),
		chromedp.SendKeys(id("upstream_client_id"), "bawwab"), chromedp.SendKeys(id("client_secret"), "upstream-secret-0123456789"),
		chromedp.Click(id("create-upstream")), chromedp.WaitVisible(id("upstream-corp")))
	b.do("console-upstream-disabled", chromedp.Click(id("disable-upstream-corp")), chromedp.WaitVisible(id("enable-upstream-corp")))
	if row, err := e.Store.GetUpstream(context.Background(), "corp"); err != nil || row.Enabled || row.SecretSealed == "" {
		t.Fatalf("upstream after the console: %v %+v", err, row)
	}
	b.do("console-upstream-edit", chromedp.Click(id("edit-upstream-corp")), chromedp.WaitVisible(id("edit-upstream")))
	b.do("console-upstream-saved", chromedp.SetValue(id("upstream_client_id"), "bawwab-"+lang), chromedp.Click(id("save-upstream")),
		chromedp.WaitVisible(id("notice")))
	if row, err := e.Store.GetUpstream(context.Background(), "corp"); err != nil || row.Enabled || row.SecretSealed == "" ||
		!strings.Contains(row.Config, `"client_id":"bawwab-`+lang+`"`) {
		t.Fatalf("upstream after its edit: %v %+v", err, row)
	}

	// An initial access token, issued and shown once, registers a client;
	// revoked after its confirmation, it registers no more.
	b.do("console-registration", chromedp.Click(id("nav-registration")), chromedp.WaitVisible(id("new-token")))
	b.do("console-token-issued", chromedp.SendKeys(id("label"), "browser "+lang), chromedp.SendKeys(id("max_uses"), "5"),
		chromedp.Click(id("create-token")), chromedp.WaitVisible(id("token")))
	iat := b.text("#token")
	if r := e.register("POST", "/register", iat, appMeta); r.Status != http.StatusCreated {
		t.Fatalf("registration with the token the console showed: %+v", r)
	}
	speaks("registration page")
	b.do("console-token-revoked", chromedp.Click(chromedp.CSS(`#tokens a[id^="revoke-"]`)), chromedp.WaitVisible(id("revoke-confirm")),
		chromedp.Click(id("revoke-confirm")), chromedp.WaitVisible(id("notice")))
	refused(t, e, iat, "was revoked")

	// A scope's Arabic text, edited here, is what the consent page shows.
	text := "عنوان بريدك الإلكتروني (" + lang + ")"
	b.do("console-scopes", chromedp.Click(id("nav-scopes")), chromedp.WaitVisible(id("scope-email")))
	b.do("console-scope-edit", chromedp.Click(id("edit-email")), chromedp.WaitVisible(id("description_ar")))
	b.do("console-scope-saved", chromedp.SetValue(id("description_ar"), text), chromedp.Click(id("save-scope")), chromedp.WaitVisible(id("notice")))
	if got := b.text("#scope-email"); !strings.Contains(got, text) {
		t.Fatalf("scope list after saving: %q", got)
	}
	if consent := consentPage(e, e.notesRequest("openid email")); !strings.Contains(consent, text) {
		t.Fatalf("the consent page does not show the edited Arabic text:\n%s", consent)
	}

	// Key rotation, from the dashboard.
	before, _ := e.Store.ListSigningKeys(context.Background())
	b.do("console-keys-rotated", chromedp.Click(id("nav-dashboard")), chromedp.WaitVisible(id("rotate-keys")),
		chromedp.Click(id("rotate-keys")), chromedp.WaitVisible(id("notice")))
	if after, _ := e.Store.ListSigningKeys(context.Background()); len(after) <= len(before) {
		t.Fatalf("keys: %d before, %d after rotating", len(before), len(after))
	}

	b.do("console-signed-out", chromedp.Click(id("signout")), chromedp.WaitVisible(id("message")))
	if msg := b.text("#message"); msg != ui.T(lang, "console.signedout") {
		t.Fatalf("sign-out page says %q", msg)
	}

	// Someone without the admin role, in a browser of their own: refused.
	clear := func(ctx context.Context, tg *chromedp.Target) (chromedp.Void, error) {
		_, err := cdp.Call(ctx, tg, network.ClearBrowserCookies, cdp.Empty{})
		return chromedp.Void{}, err
	}
	b.do("console-other-login", clear, chromedp.Navigate(e.AdminURL+"/console/?lang="+lang), chromedp.WaitVisible(id("username")))
	b.do("console-other-consent", chromedp.SendKeys(id("username"), "carim"), chromedp.SendKeys(id("password"), "a long and unusual phrase"),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("consent-allow")))
	b.do("console-refused", chromedp.Click(id("consent-allow")), chromedp.WaitVisible(id("message")))
	speaks("refusal page")
	if msg := b.text("#message"); msg != ui.T(lang, "console.not_admin") {
		t.Fatalf("refusal page says %q", msg)
	}
}

// consentPage signs in through a new browser and returns the consent
// page's body for the request r, in Arabic.
func consentPage(e *env, r authRequest) string {
	e.t.Helper()
	hb := e.browser()
	p := hb.get(r.url())
	for range 6 {
		switch {
		case p.Status == http.StatusOK:
			return p.Body
		case strings.HasPrefix(p.Location, "/login"):
			p = hb.login(p.Location, userName, userPassword)
		case strings.HasPrefix(p.Location, "/consent"):
			p = hb.get(p.Location + "&lang=ar")
		default:
			p = hb.get(p.Location)
		}
	}
	e.t.Fatalf("no consent page: %d %s", p.Status, p.Location)
	return ""
}

// jsString quotes s for JavaScript.
func jsString(s string) string {
	return "'" + strings.NewReplacer(`\`, `\\`, `'`, `\'`).Replace(s) + "'"
}

// TestBrowserConsoleCrossSite: with the issuer on another site than the
// console (localhost and 127.0.0.1, as a public issuer and a loopback
// admin listener are), the sign-in still ends on the dashboard: the
// login cookie (Lax) comes back with the redirect from the issuer, and
// the SameSite=Strict session cookie is sent from the console's own page
// on.
func TestBrowserConsoleCrossSite(t *testing.T) {
	exe := chromium(t)
	e := startLocalhost(t)
	makeAdmin(t, e, e.UserID, true)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 800))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	if err := chromedp.Do(bctx, chromedp.Navigate("about:blank")); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	b := &tab{t: t, ctx: bctx, lang: "en", dir: screenshotDir(t)}
	id := func(s string) chromedp.CSS { return chromedp.CSS("#" + s) }
	b.do("console-cross-site-login", chromedp.Navigate(e.AdminURL+"/console/"), chromedp.WaitVisible(id("username")))
	if loc, _ := b.eval(`location.href`).(string); !strings.HasPrefix(loc, e.URL+"/login") {
		t.Fatalf("sign-in page at %s, want the issuer %s", loc, e.URL)
	}
	b.do("console-cross-site-dashboard", chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("consent-allow")), chromedp.Click(id("consent-allow")),
		chromedp.WaitVisible(id("count-clients")))
	b.do("console-cross-site-users", chromedp.Click(id("nav-users")), chromedp.WaitVisible(id("user-"+userName)))
}
