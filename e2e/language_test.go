package e2e

import (
	"context"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

var langRE = regexp.MustCompile(`<html lang="([a-z]+)" dir="([a-z]+)">`)

// langOf returns the lang and dir of a bawwab page.
func langOf(t *testing.T, p page) (string, string) {
	t.Helper()
	m := langRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no <html lang dir> in page (status %d): %.300s", p.Status, p.Body)
	}
	return m[1], m[2]
}

func wantLang(t *testing.T, p page, lang, what string) {
	t.Helper()
	got, dir := langOf(t, p)
	wantDir := "ltr"
	if lang == "ar" {
		wantDir = "rtl"
	}
	if got != lang || dir != wantDir {
		t.Fatalf("%s: lang=%s dir=%s, want %s %s", what, got, dir, lang, wantDir)
	}
}

// TestLanguageFollowsThePerson: ui_locales at /authorize (plain, or pushed
// to /par) sets the language of login, consent and error pages, ahead of
// a remembered choice and Accept-Language, and is carried from page to page
// in the URL and forms, so no cookie shared with the client's port is
// needed. Handing out a CSRF cookie keeps the language cookie.
func TestLanguageFollowsThePerson(t *testing.T) {
	e := start(t)

	t.Run("ui_locales through login and consent", func(t *testing.T) {
		b := e.browser()
		u, _ := url.Parse(e.URL)
		b.Jar.SetCookies(u, []*http.Cookie{{Name: "bawwab_lang", Value: "en"}})
		r := e.notesRequest("openid email")
		r.Extra = url.Values{"ui_locales": {"ar-EG en"}}
		p := b.get(r.url())
		if !strings.HasPrefix(p.Location, "/login?") || !strings.Contains(p.Location, "ui_locales=ar") {
			t.Fatalf("redirect to login does not carry the language: %d %s", p.Status, p.Location)
		}
		lp := b.get(p.Location)
		wantLang(t, lp, "ar", "login page")
		if !strings.Contains(lp.Body, `name="ui_locales" value="ar"`) {
			t.Fatal("login form does not carry the language")
		}
		req, _ := url.Parse(p.Location)
		p = b.post("/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "req": {req.Query().Get("req")}, "username": {userName},
			"password": {"wrong"}, "ui_locales": {"ar"}})
		wantLang(t, p, "ar", "failed login")
		p = b.post("/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "req": {req.Query().Get("req")}, "username": {userName},
			"password": {userPassword}, "ui_locales": {"ar"}})
		if !strings.HasPrefix(p.Location, "/consent?") || !strings.Contains(p.Location, "ui_locales=ar") {
			t.Fatalf("redirect to consent does not carry the language: %s", p.Location)
		}
		cp := b.get(p.Location)
		wantLang(t, cp, "ar", "consent page")
		// The person switches: the explicit choice replaces the app's wish.
		if !strings.Contains(cp.Body, "lang=en") || strings.Contains(cp.Body, `href="/consent?req=`+req.Query().Get("req")+`&amp;ui_locales`) {
			t.Fatalf("language link keeps ui_locales: %s", cp.Body)
		}
		wantLang(t, b.get("/consent?req="+url.QueryEscape(req.Query().Get("req"))+"&lang=en"), "en", "consent after switching")
	})

	t.Run("pushed request", func(t *testing.T) {
		r := e.notesRequest("openid email")
		q := r.query()
		q.Set("ui_locales", "ar")
		pushed := e.push(q, "notes", e.NotesSecret)
		b := e.browser()
		p := b.get("/authorize?" + url.Values{"client_id": {"notes"}, "request_uri": {pushed.RequestURI}}.Encode())
		if !strings.Contains(p.Location, "ui_locales=ar") {
			t.Fatalf("pushed ui_locales lost: %s", p.Location)
		}
		wantLang(t, b.get(p.Location), "ar", "login page of a pushed request")
	})

	t.Run("signed request object", func(t *testing.T) {
		key := newKeyPair(t, "k1")
		const redirect = "https://signed.example/cb"
		if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "signed", Name: "Signed App", RedirectURIs: []string{redirect},
			Scopes: []string{"openid", "email"}, AuthMethod: "private_key_jwt", JWKS: jwkSet(key)}, scope.Default()); err != nil {
			t.Fatal(err)
		}
		c := map[string]any{"iss": "signed", "aud": e.URL, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": token.NewOpaque(),
			"client_id": "signed", "response_type": "code", "redirect_uri": redirect, "scope": "openid email", "state": "st",
			"code_challenge": token.S256(strings.Repeat("w", 43)), "code_challenge_method": "S256", "ui_locales": "ar"}
		object := signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
			(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"), c)
		b := e.browser()
		// Only the signed parameters count (RFC 9101 §6.3): an unsigned
		// ui_locales beside the object is ignored.
		p := b.get("/authorize?" + url.Values{"client_id": {"signed"}, "request": {object}, "ui_locales": {"en"}}.Encode())
		if !strings.Contains(p.Location, "ui_locales=ar") {
			t.Fatalf("signed ui_locales lost: %s", p.Location)
		}
		wantLang(t, b.get(p.Location), "ar", "login page of a signed request")
	})

	t.Run("error page", func(t *testing.T) {
		p := e.browser().get("/authorize?client_id=nobody&ui_locales=ar")
		wantLang(t, p, "ar", "error page")
	})

	t.Run("language cookie survives the CSRF cookie", func(t *testing.T) {
		b := e.browser()
		u, _ := url.Parse(e.URL)
		b.Jar.SetCookies(u, []*http.Cookie{{Name: "bawwab_lang", Value: "ar"}})
		wantLang(t, b.get("/login"), "ar", "login page with only a language cookie")
		wantLang(t, b.get("/device"), "ar", "device page")
	})

	t.Run("Accept-Language last", func(t *testing.T) {
		req, _ := http.NewRequest("GET", e.URL+"/login", nil)
		req.Header.Set("Accept-Language", "ar;q=0.9, en;q=0.5")
		wantLang(t, e.browser().do(req), "ar", "login page by Accept-Language")
		req, _ = http.NewRequest("GET", e.URL+"/login?ui_locales=en", nil)
		req.Header.Set("Accept-Language", "ar")
		wantLang(t, e.browser().do(req), "en", "ui_locales before Accept-Language")
	})

	t.Run("logout page", func(t *testing.T) {
		wantLang(t, e.browser().get("/end_session?ui_locales=ar"), "ar", "logout page")
	})
}
