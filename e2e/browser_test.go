package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/chromedp/cdproto/network"
	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/demo"
	"github.com/bawwab/bawwab/demo/client"
	"github.com/bawwab/bawwab/internal/testenv"
	"github.com/bawwab/bawwab/internal/ui"
)

// chromium finds the browser, or skips the test.
func chromium(t *testing.T) string {
	t.Helper()
	if p := os.Getenv("BAWWAB_CHROMIUM"); p != "" {
		return p
	}
	for _, name := range []string{"chromium", "chromium-browser", "google-chrome"} {
		if p, err := exec.LookPath(name); err == nil {
			return p
		}
	}
	testenv.Missing(t, "Chromium", "install it (Debian: apt-get install chromium) or set BAWWAB_CHROMIUM")
	return ""
}

// Screen sizes every page is captured at: a laptop and a phone.
type screen struct {
	name          string
	width, height int64
	mobile        bool
}

var screens = []screen{{"desktop", 1280, 800, false}, {"phone", 390, 844, true}}

// screenshotDir is where the story's screenshots go: BAWWAB_SCREENSHOTS
// if set (kept), else a temporary directory kept only when the test fails.
func screenshotDir(t *testing.T) string {
	if dir := os.Getenv("BAWWAB_SCREENSHOTS"); dir != "" {
		if err := os.MkdirAll(dir, 0o755); err != nil {
			t.Fatal(err)
		}
		return dir
	}
	dir, err := os.MkdirTemp("", "bawwab-browser-")
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots of each step are in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return dir
}

// tab drives one browser tab step by step, in one language.
type tab struct {
	t    *testing.T
	ctx  context.Context
	d    *demo.Demo
	lang string
	dir  string
	n    int

	mu       sync.Mutex
	notFound []string // URLs answered 404
}

// shotScreens are the sizes shot captures: every size when the
// screenshots are kept (BAWWAB_SCREENSHOTS), else the first alone, for a
// failed test's record; switching to the phone's emulation and back at
// every step made up much of the browser tests' time.
func shotScreens() []screen {
	if os.Getenv("BAWWAB_SCREENSHOTS") != "" {
		return screens
	}
	return screens[:1]
}

// shot captures the page at every screen size of shotScreens.
func (b *tab) shot(step string) {
	b.n++
	sizes := shotScreens()
	for _, s := range sizes {
		ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
		opts := []chromedp.EmulateViewportOption{}
		if s.mobile {
			opts = append(opts, chromedp.EmulateMobile)
		}
		err := chromedp.Do(ctx, chromedp.EmulateViewport(s.width, s.height, opts...))
		var buf []byte
		if err == nil {
			buf, err = chromedp.Run(ctx, chromedp.CaptureScreenshot())
		}
		cancel()
		if err != nil {
			b.t.Logf("screenshot %s at %s: %v", step, s.name, err)
			continue
		}
		_ = os.WriteFile(filepath.Join(b.dir, fmt.Sprintf("%s-%02d-%s-%s.png", b.lang, b.n, step, s.name)), buf, 0o644)
	}
	if len(sizes) == 1 {
		return // still at the first size
	}
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	_ = chromedp.Do(ctx, chromedp.EmulateViewport(screens[0].width, screens[0].height))
}

// do runs the actions of one step within 20 seconds, then captures it.
func (b *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.shot(step)
	if err != nil {
		b.t.Fatalf("%s (%s): %v", step, b.lang, err)
	}
}

func (b *tab) text(sel string) string {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 10*time.Second)
	defer cancel()
	v, err := chromedp.Run(ctx, chromedp.Text(chromedp.CSS(sel)))
	if err != nil {
		b.t.Fatalf("text of %s: %v", sel, err)
	}
	return v
}

func (b *tab) eval(js string) any {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[any](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

func (b *tab) checked(id string) bool {
	b.t.Helper()
	return b.eval(`document.getElementById(`+fmt.Sprintf("%q", id)+`).checked`) == true
}

// bawwab asserts that the tab shows one of bawwab's pages, in the story's
// language and direction.
func (b *tab) bawwab(what string) {
	b.t.Helper()
	loc, _ := b.eval(`location.href`).(string)
	if !strings.HasPrefix(loc, b.d.AuthURL) {
		b.t.Fatalf("%s: expected a bawwab page, at %s", what, loc)
	}
	dir := "ltr"
	if b.lang == "ar" {
		dir = "rtl"
	}
	if got := b.eval(`document.documentElement.lang + " " + document.documentElement.dir`); got != b.lang+" "+dir {
		b.t.Fatalf("%s (%s): bawwab page is %q, want %q", what, loc, got, b.lang+" "+dir)
	}
}

// noNotes asserts that the page does not name Notes, in either language.
func (b *tab) noNotes(what string) {
	b.t.Helper()
	body, _ := b.eval(`document.documentElement.innerText + document.title`).(string)
	if strings.Contains(body, "Notes") || strings.Contains(body, "الملاحظات") {
		b.t.Fatalf("%s: Greedy Games names Notes:\n%s", what, body)
	}
}

// TestBrowserStory plays the story in a real browser, once in English and
// once in Arabic, the language chosen in the app: sign up with bawwab from
// Notes, decline the photo, approve; come back and find the photo still
// declined; revoke on Connected apps and watch Notes lose access; deny;
// then Greedy Games, which asks for payment data and never speaks as
// Notes. Every bawwab page on the way speaks the chosen language in its
// direction. Each page is captured at laptop and phone size.
func TestBrowserStory(t *testing.T) {
	exe := chromium(t)
	dir := screenshotDir(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { playStory(t, exe, dir, lang) })
	}
}

func playStory(t *testing.T, exe, dir, lang string) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{Host: "127.0.0.1", Password: &testPassword})
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true), chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 800))...)
	defer cancelAlloc()
	b := &tab{t: t, d: d, lang: lang, dir: dir}
	bctx, cancelBrowser := chromedp.NewContext(alloc, chromedp.WithListener(func(ev any) {
		if r, ok := ev.(*network.EventResponseReceived); ok && r.Response.Status == 404 {
			b.mu.Lock()
			b.notFound = append(b.notFound, r.Response.URL)
			b.mu.Unlock()
		}
	}))
	defer cancelBrowser()
	b.ctx = bctx
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate(d.NotesURL)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	id := func(s string) chromedp.CSS { return chromedp.CSS("#" + s) }
	langLink := chromedp.CSS(`nav.langs a[lang="` + lang + `"]`)
	T := func(key string, args ...any) string { return client.T(lang, key, args...) }

	// The person picks the language in the app; bawwab follows it.
	b.do("notes-home", chromedp.WaitVisible(id("signup")), chromedp.Click(langLink), chromedp.WaitVisible(id("signup")))
	if got := b.eval(`document.documentElement.lang`); got != lang {
		t.Fatalf("Notes speaks %v after choosing %s", got, lang)
	}
	b.do("login", chromedp.Click(id("signup")), chromedp.WaitVisible(id("username")))
	b.bawwab("login page")
	if got := b.eval(`document.activeElement.id`); got != "username" {
		t.Errorf("login page focuses %v, not the username", got)
	}
	b.do("consent",
		chromedp.SendKeys(id("username"), demo.Username),
		chromedp.SendKeys(id("password"), demo.Password),
		chromedp.Click(id("login-submit")),
		chromedp.WaitVisible(id("consent-allow")))
	b.bawwab("consent page")
	for name, want := range map[string]bool{"scope-openid": true, "scope-photo": true, "scope-email": true, "scope-files.read": false, "scope-offline_access": false} {
		if b.checked(name) != want {
			t.Errorf("first consent: %s checked=%v, want %v", name, !want, want)
		}
	}
	// The whole row is the label: a click on its explanation unchecks it.
	b.do("consent-photo-declined", chromedp.Click(chromedp.CSS(`label[for="scope-photo"] .explain`)))
	if b.checked("scope-photo") {
		t.Fatal("photo scope still checked after clicking its row")
	}
	b.do("notes-connected", chromedp.Click(id("consent-allow")), chromedp.WaitVisible(id("connected")))
	if email := b.text("#email"); !strings.Contains(email, "amal@example.com") {
		t.Fatalf("Notes does not show the granted email: %q", email)
	}
	if photo := b.text("#photo"); !strings.Contains(photo, T("not_shared")) {
		t.Fatalf("Notes shows the photo that was not granted: %q", photo)
	}

	// Next time, what was declined stays declined.
	b.do("notes-disconnected", chromedp.Click(id("disconnect")), chromedp.WaitVisible(id("signup")))
	b.do("consent-again", chromedp.Click(id("signup")), chromedp.WaitVisible(id("consent-allow")))
	b.bawwab("second consent page")
	if b.checked("scope-photo") || !b.checked("scope-email") {
		t.Fatalf("second consent: photo checked=%v (declined last time), email checked=%v (granted)", b.checked("scope-photo"), b.checked("scope-email"))
	}
	b.do("notes-connected-again", chromedp.Click(id("consent-allow")), chromedp.WaitVisible(id("connected")))

	b.do("flow-trace", chromedp.Click(id("trace-link")), chromedp.WaitVisible(chromedp.CSS(".trace")))
	trace := b.text(".trace")
	for _, want := range []string{T("trace.authorize"), T("trace.callback"), T("trace.token"), T("trace.api"), "[redacted]"} {
		if !strings.Contains(trace, want) {
			t.Fatalf("flow trace lacks %q", want)
		}
	}

	// Connected apps: the person chooses bawwab's language once there.
	b.do("connected-apps", chromedp.Navigate(d.AuthURL+"/account?lang="+lang), chromedp.WaitVisible(id("revoke-notes")))
	b.bawwab("Connected apps")
	b.do("revoke-confirm", chromedp.Click(id("revoke-notes")), chromedp.WaitVisible(id("revoke-confirm-notes")))
	b.do("revoked", chromedp.Click(id("revoke-confirm-notes")), chromedp.WaitVisible(id("notice")))
	b.bawwab("Connected apps after revoking")
	if notice := b.text("#notice"); !strings.Contains(notice, ui.T(lang, "account.revoked", "Notes")) {
		t.Fatalf("revocation notice: %q", notice)
	}
	b.do("notes-lost-access", chromedp.Navigate(d.NotesURL), chromedp.WaitVisible(id("message")))
	if msg := b.text("#message"); !strings.Contains(msg, T("msg.revoked", "Notes")) {
		t.Fatalf("Notes after revocation says %q", msg)
	}

	// The person denies.
	b.do("consent-after-revoke", chromedp.Click(id("signup")), chromedp.WaitVisible(id("consent-deny")))
	b.bawwab("consent page after revoking")
	b.do("notes-denied", chromedp.Click(id("consent-deny")), chromedp.WaitVisible(id("message")))
	if msg := b.text("#message"); !strings.Contains(msg, T("msg.denied", "Notes")) {
		t.Fatalf("Notes after denial says %q", msg)
	}
	b.do("trace-denied", chromedp.Click(id("trace-link")), chromedp.WaitVisible(chromedp.CSS(".step.failed")))

	// Greedy Games asks for payment data: flagged, unchecked, unverified;
	// it never speaks as Notes.
	b.do("greedy-home", chromedp.Navigate(d.GreedyURL), chromedp.WaitVisible(id("signup")), chromedp.Click(langLink), chromedp.WaitVisible(id("signup")))
	b.noNotes("Greedy Games home")
	b.do("greedy-consent", chromedp.Click(id("signup")), chromedp.WaitVisible(id("scope-payment")))
	b.bawwab("Greedy Games consent page")
	b.noNotes("Greedy Games consent page")
	if b.checked("scope-payment") {
		t.Fatal("sensitive payment scope is checked by default")
	}
	if !strings.Contains(b.text(".scope.sensitive"), ui.T(lang, "consent.sensitive")) || !strings.Contains(b.text("#client-unverified"), ui.T(lang, "consent.unverified")) {
		t.Fatal("Greedy Games' consent page lacks the sensitive or the unverified warning")
	}
	b.do("greedy-denied", chromedp.Click(id("consent-deny")), chromedp.WaitVisible(id("message")))
	b.noNotes("Greedy Games after denial")
	if msg := b.text("#message"); !strings.Contains(msg, T("msg.denied", "Greedy Games")) {
		t.Fatalf("Greedy Games after denial says %q", msg)
	}

	// bawwab's other pages, in the language chosen on Connected apps.
	b.do("error", chromedp.Navigate(d.AuthURL+"/authorize?client_id=nobody"), chromedp.WaitVisible(id("error-message")))
	b.bawwab("error page")
	b.do("device", chromedp.Navigate(d.AuthURL+"/device"), chromedp.WaitVisible(id("user_code")))
	b.bawwab("device page")
	b.do("logout", chromedp.Navigate(d.AuthURL+"/end_session"), chromedp.WaitVisible(id("logout-confirm")))
	b.bawwab("logout page")
	b.do("logged-out", chromedp.Click(id("logout-confirm")), chromedp.WaitVisible(id("logout-done")))
	b.bawwab("signed-out page")
	b.do("login-plain", chromedp.Navigate(d.AuthURL+"/login"), chromedp.WaitVisible(id("username")))
	b.bawwab("login page without a request")

	b.mu.Lock()
	defer b.mu.Unlock()
	if len(b.notFound) > 0 {
		t.Errorf("the story met 404s: %v", b.notFound)
	}
}
