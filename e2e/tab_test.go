package e2e

import (
	"context"
	"testing"
	"time"

	"github.com/chromedp/chromedp"
)

// cdpTab is a Chromium cdpTab that a browser test drives, at 1280×800.
type cdpTab struct {
	t     *testing.T
	ctx   context.Context
	label string // said beside a failed step, such as the page language
}

// openTab starts Chromium (exe, from chromium) on url; the browser stops
// when the test ends.
func openTab(t *testing.T, exe, url, label string) *cdpTab {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	t.Cleanup(cancel)
	alloc, cancelAlloc := chromedp.NewExecAllocator(ctx, append(chromedp.DefaultExecAllocatorOptions[:],
		chromedp.ExecPath(exe), chromedp.NoSandbox, chromedp.DisableGPU, chromedp.Flag("disable-component-update", true),
		chromedp.Flag("lang", "en-US"), chromedp.WindowSize(1280, 800))...)
	t.Cleanup(cancelAlloc)
	bctx, cancelBrowser := chromedp.NewContext(alloc)
	t.Cleanup(cancelBrowser)
	if err := chromedp.Do(bctx, chromedp.Navigate(url)); err != nil {
		t.Fatalf("start browser: %v", err)
	}
	return &cdpTab{t: t, ctx: bctx, label: label}
}

// stepTimeout bounds one step: generous, for a loaded machine running the
// race detector.
const stepTimeout = 30 * time.Second

// step runs actions; if one fails, the test stops with the page's address
// and text.
func (b *cdpTab) step(what string, actions ...chromedp.Action[chromedp.Void]) {
	b.t.Helper()
	sctx, cancel := context.WithTimeout(b.ctx, stepTimeout)
	defer cancel()
	if err := chromedp.Do(sctx, actions...); err != nil {
		body, _ := chromedp.Run(b.ctx, chromedp.Evaluate[string](`location.href + "\n" + document.body.innerText`))
		if b.label != "" {
			what += " (" + b.label + ")"
		}
		b.t.Fatalf("%s: %v\n%s", what, err, body)
	}
}

// eval returns what script js evaluates to, as a string.
func (b *cdpTab) eval(js string) string {
	b.t.Helper()
	v, err := chromedp.Run(b.ctx, chromedp.Evaluate[string](js))
	if err != nil {
		b.t.Fatalf("evaluate %s: %v", js, err)
	}
	return v
}

// byID selects the element with id s.
func byID(s string) chromedp.CSS { return chromedp.CSS("#" + s) }
