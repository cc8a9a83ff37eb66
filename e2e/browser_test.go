package e2e

import (
	"context"
	"fmt"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/demo"
	"github.com/bawwab/bawwab/internal/testenv"
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

// shooter saves a screenshot of every step; they are kept and listed only
// when the test fails.
type shooter struct {
	t   *testing.T
	dir string
	n   int
}

func newShooter(t *testing.T) *shooter {
	dir, err := os.MkdirTemp("", "bawwab-browser-")
	if err != nil {
		t.Fatal(err)
	}
	s := &shooter{t: t, dir: dir}
	t.Cleanup(func() {
		if t.Failed() {
			t.Logf("screenshots of each step are in %s", dir)
			return
		}
		os.RemoveAll(dir)
	})
	return s
}

func (s *shooter) shot(ctx context.Context, name string) {
	buf, err := chromedp.Run(ctx, chromedp.CaptureScreenshot())
	if err != nil {
		return
	}
	s.n++
	_ = os.WriteFile(filepath.Join(s.dir, fmt.Sprintf("%02d-%s.png", s.n, name)), buf, 0o644)
}

// tab drives one browser tab step by step.
type tab struct {
	t   *testing.T
	ctx context.Context
	s   *shooter
}

// do runs the actions of one step within 20 seconds, then takes a screenshot.
func (b *tab) do(step string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	ctx, cancel := context.WithTimeout(b.ctx, 20*time.Second)
	defer cancel()
	err := chromedp.Do(ctx, actions...)
	b.s.shot(b.ctx, step)
	if err != nil {
		b.t.Fatalf("%s: %v", step, err)
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

// TestBrowserStory plays the seed story in a real browser: sign up with
// bawwab from Notes, uncheck the photo, approve, see email but no photo;
// revoke on Connected apps and watch Notes lose access; then deny consent.
func TestBrowserStory(t *testing.T) {
	exe := chromium(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{Host: "127.0.0.1", Password: &testPassword})
	if err != nil {
		t.Fatal(err)
	}
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-component-update", true),
		chromedp.Flag("disable-quic", true), chromedp.WindowSize(1000, 900))...)
	defer cancelAlloc()
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	defer cancelBrowser()
	// The first run starts the browser; it must not carry a timeout.
	if err := chromedp.Do(bctx, chromedp.Navigate(d.NotesURL)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	b := &tab{t: t, ctx: bctx, s: newShooter(t)}
	id := func(s string) chromedp.CSS { return chromedp.CSS("#" + s) }

	b.do("notes-home", chromedp.WaitVisible(id("signup")))
	b.do("login-page", chromedp.Click(id("signup")), chromedp.WaitVisible(id("username")))
	b.do("consent-page",
		chromedp.SendKeys(id("username"), demo.Username),
		chromedp.SendKeys(id("password"), demo.Password),
		chromedp.Click(id("login-submit")),
		chromedp.WaitVisible(id("consent-allow")))
	b.do("photo-unchecked", chromedp.Click(id("scope-photo")))
	if b.eval(`document.getElementById("scope-photo").checked`) != false {
		t.Fatal("photo scope still checked after clicking it")
	}
	b.do("notes-connected", chromedp.Click(id("consent-allow")), chromedp.WaitVisible(id("connected")))
	if email := b.text("#email"); !strings.Contains(email, "amal@example.com") {
		t.Fatalf("Notes does not show the granted email: %q", email)
	}
	if photo := b.text("#photo"); !strings.Contains(photo, "not shared") {
		t.Fatalf("Notes shows the photo that was not granted: %q", photo)
	}
	if name := b.text("#name"); !strings.Contains(name, "Amal Haddad") {
		t.Fatalf("Notes does not show the granted name: %q", name)
	}

	b.do("flow-trace", chromedp.Navigate(d.NotesURL+"/trace"), chromedp.WaitVisible(chromedp.CSS(".trace")))
	trace := b.text(".trace")
	for _, want := range []string{"Redirect to bawwab", "Back with a code", "Code for tokens", "API call", "[redacted]"} {
		if !strings.Contains(trace, want) {
			t.Fatalf("flow trace lacks %q", want)
		}
	}

	b.do("connected-apps", chromedp.Navigate(d.AuthURL+"/account"), chromedp.WaitVisible(id("revoke-notes")))
	b.do("revoke-confirm", chromedp.Click(id("revoke-notes")), chromedp.WaitVisible(id("revoke-confirm-notes")))
	b.do("revoked", chromedp.Click(id("revoke-confirm-notes")), chromedp.WaitVisible(id("notice")))
	if notice := b.text("#notice"); !strings.Contains(notice, "Notes") {
		t.Fatalf("revocation notice: %q", notice)
	}

	b.do("notes-lost-access", chromedp.Navigate(d.NotesURL), chromedp.WaitVisible(id("message")))
	if msg := b.text("#message"); !strings.Contains(msg, "lost access") {
		t.Fatalf("Notes after revocation says %q", msg)
	}

	// Second run: the user denies consent.
	b.do("consent-again", chromedp.Click(id("signup")), chromedp.WaitVisible(id("consent-deny")))
	b.do("denied", chromedp.Click(id("consent-deny")), chromedp.WaitVisible(id("message")))
	if msg := b.text("#message"); !strings.Contains(msg, "denied") {
		t.Fatalf("Notes after denial says %q", msg)
	}

	// Greedy Games asks for payment data: flagged, unchecked; in Arabic, right to left.
	b.do("greedy-consent-ar", chromedp.Navigate(d.GreedyURL+"/?lang=ar"), chromedp.WaitVisible(id("signup")),
		chromedp.Click(id("signup")), chromedp.WaitVisible(id("scope-payment")))
	if b.eval(`document.getElementById("scope-payment").checked`) != false {
		t.Fatal("sensitive payment scope is checked by default")
	}
	if b.eval(`document.documentElement.dir`) != "rtl" || !strings.Contains(b.text(".scope.sensitive"), "حسّاس") {
		t.Fatal("Arabic consent page is not right-to-left or lacks the sensitive warning")
	}
}
