package e2e

import (
	"errors"
	"testing"

	"github.com/chromedp/chromedp"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// TestBrowserDeleteAccount: in Chromium, in English and in Arabic, a
// person signs in, opens the Security page, follows "Delete my account",
// is refused with a wrong password, and deletes the account with the
// right one; the account is gone.
func TestBrowserDeleteAccount(t *testing.T) {
	exe := chromium(t)
	for _, lang := range ui.Languages {
		t.Run(lang, func(t *testing.T) { deleteStory(t, exe, lang) })
	}
}

func deleteStory(t *testing.T, exe, lang string) {
	e := start(t)
	b := openTab(t, exe, e.URL+"/login?lang="+lang, lang)
	step, eval, id := b.step, b.eval, byID
	step("sign in", chromedp.WaitVisible(id("username")),
		chromedp.SendKeys(id("username"), userName), chromedp.SendKeys(id("password"), userPassword),
		chromedp.Click(id("login-submit")), chromedp.WaitVisible(id("security-link")))
	step("security page", chromedp.Click(id("security-link")), chromedp.WaitVisible(id("delete-link")))
	step("delete page", chromedp.Click(id("delete-link")), chromedp.WaitVisible(id("delete-current")))
	if got := eval(`document.querySelector("h1").textContent + "|" + document.documentElement.dir`); lang == "ar" && got != ui.T(lang, "security.delete.title")+"|rtl" ||
		lang == "en" && got != ui.T(lang, "security.delete.title")+"|ltr" {
		t.Fatalf("delete page: %q", got)
	}
	step("wrong password", chromedp.SendKeys(id("delete-current"), "not my password"), chromedp.Click(id("delete-confirm")),
		chromedp.WaitVisible(id("error")))
	if got := eval(`document.getElementById("error").textContent`); got != ui.T(lang, "security.password.wrong") {
		t.Fatalf("wrong password message: %q", got)
	}
	if _, err := e.Store.GetUser(t.Context(), e.UserID); err != nil {
		t.Fatalf("the account went with a wrong password: %v", err)
	}
	step("delete", chromedp.SendKeys(id("delete-current"), userPassword), chromedp.Click(id("delete-confirm")), chromedp.WaitVisible(id("notice")))
	if got := eval(`document.getElementById("notice").textContent`); got != ui.T(lang, "security.delete.done") {
		t.Fatalf("deletion notice: %q", got)
	}
	if _, err := e.Store.GetUser(t.Context(), e.UserID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the account is still there: %v", err)
	}
}
