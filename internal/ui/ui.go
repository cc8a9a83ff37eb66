// Package ui renders bawwab's HTML pages (login, consent, errors, connected
// apps) from html/template, in English or Arabic (right to left), and serves
// their stylesheet. Pages carry no inline script or style, so the Content
// Security Policy can forbid both.
package ui

import (
	"bytes"
	"context"
	"embed"
	"fmt"
	"html/template"
	"io/fs"
	"log/slog"
	"net/http"
	"strconv"
	"strings"

	"github.com/bawwab/bawwab/internal/oautherr"
)

//go:embed templates/*.html
var templateFS embed.FS

//go:embed static
var staticFS embed.FS

// Languages lists the supported UI languages; the first is the default.
var Languages = []string{"en", "ar"}

// LangCookie remembers the language a user picked with ?lang=.
const LangCookie = "bawwab_lang"

// UI renders pages.
type UI struct {
	pages map[string]*template.Template
	log   *slog.Logger
	// Product is the name shown in page titles.
	Product string
	// Signup makes the login page offer "Create an account".
	Signup bool
}

// New parses the embedded templates.
func New(log *slog.Logger, product string) (*UI, error) {
	pages, err := ParsePages(templateFS)
	if err != nil {
		return nil, fmt.Errorf("ui: %w", err)
	}
	u := &UI{pages: pages, log: log, Product: product}
	return u, nil
}

// Page is what every template receives.
type Page struct {
	Lang    string
	Dir     string // ltr or rtl
	Product string
	Title   string
	CSRF    string
	// Path is the current path with its query, for language links.
	Path string
	// User is the display name of the logged-in user, if any.
	User string
	Data any
	// Signup tells that anyone may create an account (UI.Signup).
	Signup bool
}

// LangURL returns the current page's URL in another language: the
// person's explicit choice, so ui_locales (the app's wish) is dropped.
func (p Page) LangURL(lang string) string {
	path, query, _ := strings.Cut(p.Path, "?")
	var kept []string
	for _, kv := range strings.Split(query, "&") {
		if kv != "" && !strings.HasPrefix(kv, "lang=") && !strings.HasPrefix(kv, LocalesParam+"=") {
			kept = append(kept, kv)
		}
	}
	kept = append(kept, "lang="+lang)
	return path + "?" + strings.Join(kept, "&")
}

// LocalesParam is the parameter by which a client names the languages it
// prefers for the pages a person sees (OpenID Connect Core §3.1.2.1
// ui_locales). bawwab's own pages pass it along from page to page (in
// links and hidden form fields), so the language holds through login and
// consent without a cookie shared with the client's port.
const LocalesParam = "ui_locales"

type langKey struct{}

// WithLang returns ctx carrying the language a request asked for in a
// place Lang cannot see (a request object, a pushed request).
func WithLang(ctx context.Context, lang string) context.Context {
	return context.WithValue(ctx, langKey{}, lang)
}

// FromLocales returns the first supported language of a space-separated
// list of BCP 47 tags ("ar-EG en"), or "".
func FromLocales(list string) string {
	for _, tag := range strings.Fields(list) {
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if supported(base) {
			return base
		}
	}
	return ""
}

// Lang picks the language of r: first what the authorization request
// asked for (carried in the context by WithLang), then a choice the
// person makes with this very request (?lang=, from the language links),
// then ui_locales passed along from page to page (in the query or an
// already parsed form), then the choice the person made before (the
// cookie), then Accept-Language, then English. A ?lang= choice is
// remembered in a cookie.
func Lang(w http.ResponseWriter, r *http.Request) string {
	return LangWithCookie(w, r, LangCookie)
}

// LangWithCookie is Lang with the choice remembered under cookie: an app
// on another port of the same host names its own, since cookies do not
// tell ports apart.
func LangWithCookie(w http.ResponseWriter, r *http.Request, cookie string) string {
	if l, ok := r.Context().Value(langKey{}).(string); ok && supported(l) {
		return l
	}
	if l := r.URL.Query().Get("lang"); supported(l) {
		if w != nil {
			http.SetCookie(w, &http.Cookie{Name: cookie, Value: l, Path: "/", MaxAge: 365 * 24 * 3600, SameSite: http.SameSiteLaxMode, HttpOnly: true})
		}
		return l
	}
	if l := FromLocales(r.URL.Query().Get(LocalesParam)); l != "" {
		return l
	}
	if l := FromLocales(r.PostForm.Get(LocalesParam)); l != "" {
		return l
	}
	if c, err := r.Cookie(cookie); err == nil && supported(c.Value) {
		return c.Value
	}
	for _, part := range strings.Split(r.Header.Get("Accept-Language"), ",") {
		tag, _, _ := strings.Cut(strings.TrimSpace(part), ";")
		base, _, _ := strings.Cut(strings.ToLower(tag), "-")
		if supported(base) {
			return base
		}
	}
	return Languages[0]
}

func supported(l string) bool {
	for _, s := range Languages {
		if l == s {
			return true
		}
	}
	return false
}

// Render writes page name with status. titleKey is a catalog key.
func (u *UI) Render(w http.ResponseWriter, r *http.Request, status int, name, titleKey string, p Page) {
	t, ok := u.pages[name]
	if !ok {
		http.Error(w, "unknown page", http.StatusInternalServerError)
		return
	}
	lang := Lang(w, r)
	p.Lang, p.Dir, p.Product, p.Path = lang, "ltr", u.Product, r.URL.RequestURI()
	p.Signup = u.Signup
	if lang == "ar" {
		p.Dir = "rtl"
	}
	p.Title = T(lang, titleKey)
	Execute(w, r, u.log, t, lang, status, p)
}

// ErrorData is what the error page shows: a message, the error code, and
// the words of a retry link (set on the outage page only).
type ErrorData struct{ Message, Code, Retry string }

// Unavailable writes the page shown while the store is out of reach: 503
// with Retry-After (RFC 9110 §10.2.3), a message in the user's language
// that nothing was lost and that the page can be tried again in a moment,
// and a link that reloads it.
func (u *UI) Unavailable(w http.ResponseWriter, r *http.Request, retryAfter int) {
	w.Header().Set("Retry-After", strconv.Itoa(retryAfter))
	lang := Lang(nil, r)
	u.Render(w, r, http.StatusServiceUnavailable, "error", "unavailable.title", Page{Data: ErrorData{
		Message: T(lang, "unavailable.message"), Code: "temporarily_unavailable", Retry: T(lang, "unavailable.retry")}})
}

// Error shows err to the person, on a page, without redirecting: an outage
// of the store gets the Unavailable page; a server error is logged with its
// cause and shows only its description; an error RFC 6749 answers 401 is a
// 400 here, since a page carries no WWW-Authenticate challenge.
func (u *UI) Error(w http.ResponseWriter, r *http.Request, err error) {
	e := oautherr.From(err)
	switch e.Code {
	case oautherr.ServerError:
		u.log.ErrorContext(r.Context(), "page failed", "path", r.URL.Path, "err", err)
	case oautherr.TemporarilyUnavailable:
		u.log.WarnContext(r.Context(), "page failed: store unavailable", "path", r.URL.Path, "err", err)
		u.Unavailable(w, r, oautherr.RetryAfterUnavailable)
		return
	}
	status := e.HTTPStatus()
	if status == http.StatusUnauthorized {
		status = http.StatusBadRequest
	}
	u.Render(w, r, status, "error", "error.title", Page{Data: ErrorData{Message: e.Description, Code: e.Code}})
}

// Message shows the catalog message key, in the person's language, on the
// error page with status.
func (u *UI) Message(w http.ResponseWriter, r *http.Request, status int, key string) {
	u.Render(w, r, status, "error", "error.title", Page{Data: ErrorData{Message: T(Lang(nil, r), key)}})
}

// Static serves the stylesheet and images under /static/.
func Static() http.Handler {
	sub, _ := fs.Sub(staticFS, "static")
	fsrv := http.StripPrefix("/static/", http.FileServerFS(sub))
	return http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		w.Header().Set("Cache-Control", "public, max-age=3600")
		fsrv.ServeHTTP(w, r)
	})
}

// Favicon serves the icon at /favicon.ico, where browsers look for it
// whatever the page says, so that no page logs a 404.
func Favicon(w http.ResponseWriter, r *http.Request) {
	b, err := staticFS.ReadFile("static/favicon.svg")
	if err != nil {
		http.NotFound(w, r)
		return
	}
	w.Header().Set("Content-Type", "image/svg+xml")
	w.Header().Set("Cache-Control", "public, max-age=86400")
	_, _ = w.Write(b)
}

// T returns bawwab's message key in lang, formatted with args.
func T(lang, key string, args ...any) string { return catalog.T(lang, key, args...) }

// Catalog holds UI strings by language and key.
type Catalog map[string]map[string]string

// Has reports whether the catalog has key in English, the language every
// key has.
func (c Catalog) Has(key string) bool {
	_, ok := c["en"][key]
	return ok
}

// T returns the message key in lang, formatted with args; it falls back to
// English, then to the key itself.
func (c Catalog) T(lang, key string, args ...any) string {
	msg, ok := c[lang][key]
	if !ok {
		msg, ok = c["en"][key]
	}
	if !ok {
		return key
	}
	if len(args) > 0 {
		return fmt.Sprintf(msg, args...)
	}
	return msg
}

// ParsePages parses each templates/*.html of fsys but layout.html into a
// page of its own name, inside templates/layout.html. The translation
// function t is bound per request, by Execute.
func ParsePages(fsys fs.FS) (map[string]*template.Template, error) {
	pages := map[string]*template.Template{}
	names, err := fs.Glob(fsys, "templates/*.html")
	if err != nil {
		return nil, err
	}
	for _, n := range names {
		base := strings.TrimSuffix(strings.TrimPrefix(n, "templates/"), ".html")
		if base == "layout" {
			continue
		}
		t, err := template.New(base).Funcs(template.FuncMap{"t": func(string, ...any) string { return "" }}).
			ParseFS(fsys, "templates/layout.html", n)
		if err != nil {
			return nil, fmt.Errorf("%s: %w", n, err)
		}
		pages[base] = t
	}
	return pages, nil
}

// Execute renders page (one of ParsePages) in lang with data, and writes
// it with status, never cached. A page that fails to render is logged and
// answered with a plain 500: nothing half-written reaches the browser.
func Execute(w http.ResponseWriter, r *http.Request, log *slog.Logger, page *template.Template, lang string, status int, data any) {
	t, err := page.Clone()
	var buf bytes.Buffer
	if err == nil {
		t = t.Funcs(template.FuncMap{"t": func(key string, args ...any) string { return T(lang, key, args...) }})
		err = t.ExecuteTemplate(&buf, "layout", data)
	}
	if err != nil {
		log.ErrorContext(r.Context(), "render page", "path", r.URL.Path, "err", err)
		http.Error(w, "could not render the page", http.StatusInternalServerError)
		return
	}
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.WriteHeader(status)
	_, _ = w.Write(buf.Bytes())
}
