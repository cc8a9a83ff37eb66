package ui

import (
	"context"
	"io/fs"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"testing"
)

// TestLang pins where a page's language comes from, first match wins: the
// context (a request's ui_locales), ui_locales in the query or form
// (OpenID Connect Core §3.1.2.1), ?lang= (remembered in a cookie), the
// cookie, Accept-Language, English.
func TestLang(t *testing.T) {
	tests := []struct {
		name       string
		req        func() *http.Request
		want       string
		wantCookie string
	}{
		{"nothing", func() *http.Request { return httptest.NewRequest("GET", "/", nil) }, "en", ""},
		{"Accept-Language", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept-Language", "fr-FR, ar-EG;q=0.8, en;q=0.5")
			return r
		}, "ar", ""},
		{"cookie beats Accept-Language", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.Header.Set("Accept-Language", "ar")
			r.AddCookie(&http.Cookie{Name: LangCookie, Value: "en"})
			return r
		}, "en", ""},
		{"unsupported cookie", func() *http.Request {
			r := httptest.NewRequest("GET", "/", nil)
			r.AddCookie(&http.Cookie{Name: LangCookie, Value: "xx"})
			return r
		}, "en", ""},
		{"?lang= beats the cookie and is remembered", func() *http.Request {
			r := httptest.NewRequest("GET", "/?lang=ar", nil)
			r.AddCookie(&http.Cookie{Name: LangCookie, Value: "en"})
			return r
		}, "ar", "ar"},
		{"unsupported ?lang=", func() *http.Request { return httptest.NewRequest("GET", "/?lang=de", nil) }, "en", ""},
		{"?lang= (a click on this page) beats carried ui_locales", func() *http.Request {
			return httptest.NewRequest("GET", "/?lang=en&ui_locales=de+ar-SA", nil)
		}, "en", "en"},
		{"carried ui_locales beats the cookie", func() *http.Request {
			r := httptest.NewRequest("GET", "/?ui_locales=de+ar-SA", nil)
			r.AddCookie(&http.Cookie{Name: LangCookie, Value: "en"})
			return r
		}, "ar", ""},
		{"ui_locales in a form", func() *http.Request {
			r := httptest.NewRequest("POST", "/", strings.NewReader(url.Values{LocalesParam: {"ar"}}.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			_ = r.ParseForm()
			return r
		}, "ar", ""},
		{"context beats everything", func() *http.Request {
			r := httptest.NewRequest("GET", "/?ui_locales=en&lang=en", nil)
			return r.WithContext(WithLang(context.Background(), "ar"))
		}, "ar", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			if got := Lang(rec, tt.req()); got != tt.want {
				t.Fatalf("Lang = %q, want %q", got, tt.want)
			}
			var cookie string
			for _, c := range rec.Result().Cookies() {
				if c.Name == LangCookie {
					cookie = c.Value
				}
			}
			if cookie != tt.wantCookie {
				t.Fatalf("language cookie %q, want %q", cookie, tt.wantCookie)
			}
		})
	}
}

func TestFromLocales(t *testing.T) {
	for in, want := range map[string]string{"": "", "de fr": "", "AR": "ar", "en-GB ar": "en", "de ar-EG en": "ar"} {
		if got := FromLocales(in); got != want {
			t.Errorf("FromLocales(%q) = %q, want %q", in, got, want)
		}
	}
}

// TestLangURL: the language links keep the page's query, without an
// earlier lang or ui_locales.
func TestLangURL(t *testing.T) {
	tests := []struct{ path, lang, want string }{
		{"/login", "ar", "/login?lang=ar"},
		{"/consent?req=abc", "en", "/consent?req=abc&lang=en"},
		{"/consent?lang=en&req=abc&ui_locales=en", "ar", "/consent?req=abc&lang=ar"},
	}
	for _, tt := range tests {
		if got := (Page{Path: tt.path}).LangURL(tt.lang); got != tt.want {
			t.Errorf("LangURL(%q, %s) = %q, want %q", tt.path, tt.lang, got, tt.want)
		}
	}
}

// TestCatalog: every key has every language, and the fallbacks are
// English, then the key.
func TestCatalog(t *testing.T) {
	for _, lang := range Languages {
		for key := range catalog["en"] {
			if _, ok := catalog[lang][key]; !ok {
				t.Errorf("%s has no %s", lang, key)
			}
		}
		for key := range catalog[lang] {
			if !catalog.Has(key) {
				t.Errorf("%s has %s, which English lacks", lang, key)
			}
		}
	}
	c := Catalog{"en": {"a": "A %d", "b": "B"}, "ar": {"b": "ب"}}
	tests := []struct {
		lang, key string
		args      []any
		want      string
	}{
		{"ar", "b", nil, "ب"},
		{"ar", "a", []any{1}, "A 1"},
		{"xx", "b", nil, "B"},
		{"en", "missing", nil, "missing"},
	}
	for _, tt := range tests {
		if got := c.T(tt.lang, tt.key, tt.args...); got != tt.want {
			t.Errorf("T(%s, %s) = %q, want %q", tt.lang, tt.key, got, tt.want)
		}
	}
}

// TestRender: every page renders in every language with its direction,
// no-store and the status asked; text from a request is escaped; an
// unknown page is a 500, not a panic.
func TestRender(t *testing.T) {
	u, err := New(slog.New(slog.DiscardHandler), "bawwab")
	if err != nil {
		t.Fatal(err)
	}
	pages := []string{"account", "consent", "delete", "device", "error", "factor", "linkconfirm", "login", "logout", "notice", "profile", "reset", "security", "signup", "stepup"}
	if len(u.pages) != len(pages) {
		t.Fatalf("%d pages parsed, want %d", len(u.pages), len(pages))
	}
	evil := `<script>alert(1)</script>`
	for _, name := range pages {
		for _, lang := range Languages {
			t.Run(name+"/"+lang, func(t *testing.T) {
				rec := httptest.NewRecorder()
				r := httptest.NewRequest("GET", "/x?lang="+lang, nil)
				u.Render(rec, r, http.StatusTeapot, name, "error.title",
					Page{User: evil, Data: map[string]any{"Message": evil, "Error": evil, "ClientName": evil, "UserCode": evil}})
				body := rec.Body.String()
				dir := "ltr"
				if lang == "ar" {
					dir = "rtl"
				}
				if rec.Code != http.StatusTeapot || rec.Header().Get("Cache-Control") != "no-store" ||
					!regexp.MustCompile(`<html lang="`+lang+`" dir="`+dir+`"`).MatchString(body) {
					t.Fatalf("got %d %v:\n%s", rec.Code, rec.Header(), body)
				}
				if strings.Contains(body, evil) {
					t.Fatal("request text rendered unescaped")
				}
				if (name == "error" || name == "login" || name == "device") && !strings.Contains(body, "&lt;script&gt;") {
					t.Fatal("the page does not show the request text (escaped): the escaping check proves nothing")
				}
			})
		}
	}
	rec := httptest.NewRecorder()
	u.Render(rec, httptest.NewRequest("GET", "/", nil), 200, "nope", "error.title", Page{})
	if rec.Code != http.StatusInternalServerError {
		t.Fatalf("unknown page: %d", rec.Code)
	}
	rec = httptest.NewRecorder()
	u.Unavailable(rec, httptest.NewRequest("GET", "/", nil), 2)
	if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") != "2" || !strings.Contains(rec.Body.String(), "temporarily_unavailable") {
		t.Fatalf("Unavailable: %d %v", rec.Code, rec.Header())
	}
}

func TestStatic(t *testing.T) {
	tests := []struct {
		name       string
		h          http.Handler
		path       string
		wantStatus int
		wantType   string
	}{
		{"stylesheet", Static(), "/static/style.css", 200, "text/css"},
		{"missing", Static(), "/static/nope.css", 404, ""},
		{"no escape from static", Static(), "/static/../ui.go", 404, ""},
		{"favicon", http.HandlerFunc(Favicon), "/favicon.ico", 200, "image/svg+xml"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			rec := httptest.NewRecorder()
			tt.h.ServeHTTP(rec, httptest.NewRequest("GET", tt.path, nil))
			if rec.Code != tt.wantStatus && !(tt.wantStatus == 404 && rec.Code >= 300 && rec.Code < 400) ||
				!strings.HasPrefix(rec.Header().Get("Content-Type"), tt.wantType) {
				t.Fatalf("got %d %q, want %d %q", rec.Code, rec.Header().Get("Content-Type"), tt.wantStatus, tt.wantType)
			}
			if tt.wantStatus == 200 && !strings.Contains(rec.Header().Get("Cache-Control"), "max-age") {
				t.Fatalf("Cache-Control %q", rec.Header().Get("Cache-Control"))
			}
		})
	}
}

// TestTemplateKeys: every message a page names is in the catalog, so no
// page shows a bare key such as "passkey.add" in place of its text.
func TestTemplateKeys(t *testing.T) {
	key := regexp.MustCompile(`\bt "([^"]+)"`)
	names, err := fs.Glob(templateFS, "templates/*.html")
	if err != nil || len(names) == 0 {
		t.Fatalf("templates: %v %v", names, err)
	}
	n := 0
	for _, name := range names {
		b, err := fs.ReadFile(templateFS, name)
		if err != nil {
			t.Fatal(err)
		}
		for _, m := range key.FindAllStringSubmatch(string(b), -1) {
			n++
			if !catalog.Has(m[1]) {
				t.Errorf("%s names %q, which the catalog lacks", name, m[1])
			}
		}
	}
	if n < 50 {
		t.Fatalf("found only %d message keys in the templates", n)
	}
}
