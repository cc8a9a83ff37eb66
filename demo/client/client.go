// Package client is the demo's third-party app, "Notes": a confidential
// OAuth client that runs the authorization code flow with PKCE from its back
// end (golang.org/x/oauth2), keeps tokens on the server, calls the
// provider's API with them, refreshes them, and tells the user when access
// was denied or revoked. It records every HTTP exchange of the last flow for
// the flow-trace page, with secrets cut to a short prefix.
package client

import (
	"context"
	"crypto/rand"
	"embed"
	"encoding/json"
	"errors"
	"fmt"
	"html/template"
	"io"
	"log/slog"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"time"

	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/ui"
)

//go:embed templates/*.html
var templates embed.FS

// App is one demo client application.
type App struct {
	Name    string // shown in the page
	Cookie  string // session cookie name, distinct per app
	OAuth   *oauth2.Config
	APIBase string // the resource server
	Log     *slog.Logger

	mu       sync.Mutex
	sessions map[string]*visit
	tmpl     *template.Template
}

// visit is one browser's state in the app.
type visit struct {
	state, verifier string
	token           *oauth2.Token
	message         message // e.g. "you denied access"
	trace           []Step
	// stepUp is the last RFC 9470 challenge of the API: the acr_values
	// and max_age it wants of the sign-in behind the token.
	stepUp map[string]string
}

// message is a catalog key and its arguments, put into words when a page
// shows it, in the language of that page.
type message struct {
	Key  string
	Args []any
}

// Step is one recorded HTTP exchange of the flow.
type Step struct {
	N        int
	Title    string
	Explain  string
	Channel  string // "browser" (front channel) or "server" (back channel)
	Request  string
	Response string
	// Failed marks an error answer (an HTTP error status, an error sent
	// back to the redirect URI, a failed connection): the trace shows it
	// open.
	Failed bool
	At     time.Time
}

// New returns an app.
func New(name, cookie string, conf *oauth2.Config, apiBase string, log *slog.Logger) (*App, error) {
	t, err := template.New("").Funcs(template.FuncMap{"t": func(string, ...any) string { return "" }}).ParseFS(templates, "templates/*.html")
	if err != nil {
		return nil, err
	}
	return &App{Name: name, Cookie: cookie, OAuth: conf, APIBase: apiBase, Log: log, sessions: map[string]*visit{}, tmpl: t}, nil
}

// Register adds the app's routes to mux.
func (a *App) Register(mux *http.ServeMux) {
	mux.HandleFunc("GET /{$}", a.home)
	mux.HandleFunc("POST /signup", a.signup)
	mux.HandleFunc("POST /stepup", a.stepUpFlow)
	mux.HandleFunc("GET /callback", a.callback)
	mux.HandleFunc("POST /disconnect", a.disconnect)
	mux.HandleFunc("GET /trace", a.tracePage)
	mux.Handle("GET /static/", ui.Static())
	mux.HandleFunc("GET /favicon.ico", ui.Favicon)
}

func (a *App) visit(w http.ResponseWriter, r *http.Request) *visit {
	a.mu.Lock()
	defer a.mu.Unlock()
	if c, err := r.Cookie(a.Cookie); err == nil {
		if v, ok := a.sessions[c.Value]; ok {
			return v
		}
	}
	id := rand.Text()
	v := &visit{}
	a.sessions[id] = v
	http.SetCookie(w, &http.Cookie{Name: a.Cookie, Value: id, Path: "/", HttpOnly: true, SameSite: http.SameSiteLaxMode})
	return v
}

// failed tells whether an exchange is an error: a 4xx or 5xx status, no
// answer at all (the response is the connection's error), or an
// authorization error on the redirect URI (RFC 6749 §4.1.2.1).
func failed(req, resp string) bool {
	if resp != "" && (resp[0] == '4' || resp[0] == '5' || resp[0] < '0' || resp[0] > '9') {
		return true
	}
	return strings.Contains(req, "?error=") || strings.Contains(req, "&error=")
}

func (a *App) record(v *visit, title, explain, channel, req, resp string) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v.trace = append(v.trace, Step{N: len(v.trace) + 1, Title: title, Explain: explain, Channel: channel,
		Request: Redact(req), Response: Redact(resp), Failed: failed(req, resp), At: time.Now()})
}

// signup starts the flow: a fresh state and PKCE verifier, then a redirect
// to the authorization server.
func (a *App) signup(w http.ResponseWriter, r *http.Request) {
	a.start(w, r, a.visit(w, r), "trace.authorize")
}

// stepUpFlow answers the API's RFC 9470 challenge: the person goes
// through /authorize again with the acr_values (and max_age) the API
// named, so that the new token's sign-in meets them; the page then
// retries the call.
func (a *App) stepUpFlow(w http.ResponseWriter, r *http.Request) {
	v := a.visit(w, r)
	a.mu.Lock()
	ch := v.stepUp
	a.mu.Unlock()
	var extra []oauth2.AuthCodeOption
	for _, p := range []string{"acr_values", "max_age"} {
		if ch[p] != "" {
			extra = append(extra, oauth2.SetAuthURLParam(p, ch[p]))
		}
	}
	a.start(w, r, v, "trace.stepup", extra...)
}

// start sends the browser to the authorization server with a fresh state
// and PKCE verifier, and extra parameters.
func (a *App) start(w http.ResponseWriter, r *http.Request, v *visit, title string, extra ...oauth2.AuthCodeOption) {
	a.mu.Lock()
	v.state, v.verifier, v.message, v.trace = rand.Text(), oauth2.GenerateVerifier(), message{}, nil
	state, verifier := v.state, v.verifier
	a.mu.Unlock()
	opts := append([]oauth2.AuthCodeOption{oauth2.S256ChallengeOption(verifier)}, extra...)
	// The app names its language (OpenID Connect Core §3.1.2.1): bawwab's
	// pages speak it, whatever the browser keeps for bawwab's origin.
	opts = append(opts, oauth2.SetAuthURLParam(ui.LocalesParam, a.lang(nil, r)))
	target := a.OAuth.AuthCodeURL(state, opts...)
	a.record(v, title, title+".explain", "browser", "GET "+target, "302 Found → the user logs in and consents at bawwab")
	http.Redirect(w, r, target, http.StatusSeeOther)
}

// callback receives the code (or the error) and exchanges it from the back end.
func (a *App) callback(w http.ResponseWriter, r *http.Request) {
	v := a.visit(w, r)
	q := r.URL.Query()
	a.record(v, "trace.callback", "trace.callback.explain", "browser", "GET "+r.URL.RequestURI(), "")
	a.mu.Lock()
	state, verifier := v.state, v.verifier
	v.state = ""
	a.mu.Unlock()
	switch {
	case state == "" || q.Get("state") != state:
		a.setMessage(v, "msg.state")
	case q.Get("error") == "access_denied":
		a.setMessage(v, "msg.denied", a.Name)
	case q.Get("error") != "":
		a.setMessage(v, "msg.error", q.Get("error"), q.Get("error_description"))
	case q.Get("iss") != "" && q.Get("iss") != issuerOf(a.OAuth):
		a.setMessage(v, "msg.mixup")
	default:
		ctx := context.WithValue(r.Context(), oauth2.HTTPClient, a.tracingClient(v, "trace.token", "trace.token.explain"))
		tok, err := a.OAuth.Exchange(ctx, q.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			a.setMessage(v, "msg.error", "token", err.Error())
			break
		}
		a.mu.Lock()
		v.token, v.stepUp = tok, nil
		a.mu.Unlock()
	}
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

func issuerOf(c *oauth2.Config) string {
	u, err := url.Parse(c.Endpoint.AuthURL)
	if err != nil {
		return ""
	}
	return u.Scheme + "://" + u.Host
}

func (a *App) setMessage(v *visit, key string, args ...any) {
	a.mu.Lock()
	defer a.mu.Unlock()
	v.message = message{Key: key, Args: args}
}

func (a *App) disconnect(w http.ResponseWriter, r *http.Request) {
	v := a.visit(w, r)
	a.mu.Lock()
	v.token, v.message = nil, message{}
	a.mu.Unlock()
	http.Redirect(w, r, "/", http.StatusSeeOther)
}

// apiResult is what one API call gave.
type apiResult struct {
	Status int
	Data   map[string]any
	// Challenge holds the parameters of a 401's WWW-Authenticate
	// challenge (RFC 6750 §3, RFC 9470 §3).
	Challenge map[string]string
}

var authParamRE = regexp.MustCompile(`([A-Za-z_]+)=(?:"([^"]*)"|([^\s,"]+))`)

// challengeParams reads the auth-params of a WWW-Authenticate challenge.
func challengeParams(h string) map[string]string {
	out := map[string]string{}
	for _, m := range authParamRE.FindAllStringSubmatch(h, -1) {
		out[m[1]] = m[2] + m[3]
	}
	return out
}

// stepUpWanted reports whether res is an RFC 9470 challenge: the token is
// good, but the sign-in behind it is too weak or too old.
func (res *apiResult) stepUpWanted() bool {
	return res.Status == http.StatusUnauthorized && res.Challenge["error"] == "insufficient_user_authentication"
}

// call fetches one API path with the visit's token, refreshing it when it
// expired. It returns nil and marks access lost when the token is refused
// and cannot be refreshed.
func (a *App) call(ctx context.Context, v *visit, path string) (*apiResult, error) {
	a.mu.Lock()
	tok := v.token
	a.mu.Unlock()
	if tok == nil {
		return nil, errors.New("not connected")
	}
	hc := a.tracingClient(v, "trace.refresh", "trace.refresh.explain")
	src := a.OAuth.TokenSource(context.WithValue(ctx, oauth2.HTTPClient, hc), tok)
	fresh, err := src.Token()
	if err != nil {
		return nil, err
	}
	if fresh.AccessToken != tok.AccessToken {
		a.mu.Lock()
		v.token = fresh
		a.mu.Unlock()
	}
	req, _ := http.NewRequestWithContext(ctx, "GET", a.APIBase+path, nil)
	fresh.SetAuthHeader(req)
	resp, err := a.tracingClient(v, "trace.api", "trace.api.explain").Do(req)
	if err != nil {
		return nil, err
	}
	defer resp.Body.Close()
	res := &apiResult{Status: resp.StatusCode}
	if resp.StatusCode == http.StatusUnauthorized {
		res.Challenge = challengeParams(resp.Header.Get("WWW-Authenticate"))
	}
	_ = json.NewDecoder(io.LimitReader(resp.Body, 1<<20)).Decode(&res.Data)
	return res, nil
}

// page is what every page of the app shows in its head and bar.
type page struct {
	App, Lang, Dir, Path string
	Title                string // prefix of the document title, with its separator
}

func (a *App) page(lang, path, title string) page {
	return page{App: a.Name, Lang: lang, Dir: dir(lang), Path: path, Title: title}
}

type homeData struct {
	page
	Message                  string
	Connected, Revoked       bool
	Name, Email, Picture     string
	Files                    []string
	NameShared, PhotoShared  bool
	EmailShared, FilesShared bool
	// PaymentAsked: the app asks for payment data; Cards are the saved
	// cards, or StepUp says the API wants a stronger sign-in first.
	PaymentAsked, StepUp bool
	Cards                []string
}

func (a *App) home(w http.ResponseWriter, r *http.Request) {
	v := a.visit(w, r)
	lang := a.lang(w, r)
	d := homeData{page: a.page(lang, "/", "")}
	a.mu.Lock()
	msg := v.message
	d.Connected = v.token != nil
	a.mu.Unlock()
	if d.Connected {
		a.fill(r.Context(), v, &d)
		a.mu.Lock()
		msg = v.message
		a.mu.Unlock()
	}
	if msg.Key != "" {
		d.Message = a.text(lang, msg.Key, msg.Args...)
		d.Revoked = d.Revoked || msg.Key == "msg.revoked"
	}
	a.render(w, lang, "home", d)
}

// fill calls the API for what the page shows. A refused token means
// access is gone; an RFC 9470 challenge means the API wants a stronger
// sign-in, which the page offers.
func (a *App) fill(ctx context.Context, v *visit, d *homeData) {
	paths := []string{"/api/profile", "/api/email", "/api/files"}
	if d.PaymentAsked = slices.Contains(a.OAuth.Scopes, "payment"); d.PaymentAsked {
		paths = append(paths, "/api/payment")
	}
	for _, path := range paths {
		res, err := a.call(ctx, v, path)
		if err == nil && res.stepUpWanted() {
			a.mu.Lock()
			v.stepUp = res.Challenge
			a.mu.Unlock()
			d.StepUp = true
			continue
		}
		if err != nil || res.Status == http.StatusUnauthorized {
			// The token was refused, or could not be refreshed: access is gone.
			a.mu.Lock()
			v.token, v.message = nil, message{Key: "msg.revoked", Args: []any{a.Name}}
			a.mu.Unlock()
			d.Connected, d.Revoked = false, true
			return
		}
		if res.Status == http.StatusOK {
			d.show(path, res.Data)
		}
	}
}

// show puts one API answer on the page.
func (d *homeData) show(path string, data map[string]any) {
	switch path {
	case "/api/profile":
		d.Name, _ = data["name"].(string)
		d.Picture, _ = data["picture"].(string)
		d.NameShared, d.PhotoShared = d.Name != "", d.Picture != ""
	case "/api/email":
		d.Email, _ = data["email"].(string)
		d.EmailShared = d.Email != ""
	case "/api/files":
		for _, f := range anySlice(data["files"]) {
			d.Files = append(d.Files, fmt.Sprint(f))
		}
		d.FilesShared = true
	case "/api/payment":
		for _, c := range anySlice(data["cards"]) {
			d.Cards = append(d.Cards, fmt.Sprint(c))
		}
	}
}

// text is the message key in lang, in this app's own words where it has
// some (key.client_id), else the words every demo app shares.
func (a *App) text(lang, key string, args ...any) string {
	if own := key + "." + a.OAuth.ClientID; catalog.Has(own) {
		key = own
	}
	return T(lang, key, args...)
}

// lang is the app's language, remembered under a cookie of its own: the
// browser sends cookies to every port of a host alike, so sharing bawwab's
// would let one decide the other.
func (a *App) lang(w http.ResponseWriter, r *http.Request) string {
	return ui.LangWithCookie(w, r, a.Cookie+"_lang")
}

func anySlice(v any) []any {
	l, _ := v.([]any)
	return l
}

func dir(lang string) string {
	if lang == "ar" {
		return "rtl"
	}
	return "ltr"
}

type traceData struct {
	page
	Steps []Step
}

func (a *App) tracePage(w http.ResponseWriter, r *http.Request) {
	v := a.visit(w, r)
	lang := a.lang(w, r)
	a.mu.Lock()
	steps := append([]Step(nil), v.trace...)
	a.mu.Unlock()
	for i := range steps {
		steps[i].Title, steps[i].Explain = a.text(lang, steps[i].Title), a.text(lang, steps[i].Explain)
	}
	a.render(w, lang, "trace", traceData{page: a.page(lang, "/trace", a.text(lang, "trace.title")+" · "), Steps: steps})
}

func (a *App) render(w http.ResponseWriter, lang, name string, data any) {
	t, err := a.tmpl.Clone()
	if err != nil {
		http.Error(w, err.Error(), 500)
		return
	}
	t.Funcs(template.FuncMap{"t": func(key string, args ...any) string { return a.text(lang, key, args...) }})
	w.Header().Set("Content-Type", "text/html; charset=utf-8")
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Security-Policy", "default-src 'none'; style-src 'self'; img-src 'self' http: https: data:; frame-ancestors 'none'")
	if err := t.ExecuteTemplate(w, name+".html", data); err != nil {
		a.Log.Error("render", "page", name, "err", err)
	}
}

// tracingClient returns an HTTP client that records each exchange as a
// back-channel step of v.
func (a *App) tracingClient(v *visit, title, explain string) *http.Client {
	return &http.Client{Timeout: 10 * time.Second, Transport: roundTripFunc(func(req *http.Request) (*http.Response, error) {
		var reqBody string
		if req.Body != nil {
			b, _ := io.ReadAll(req.Body)
			req.Body.Close()
			reqBody = string(b)
			req.Body = io.NopCloser(strings.NewReader(reqBody))
		}
		resp, err := http.DefaultTransport.RoundTrip(req)
		reqText := req.Method + " " + req.URL.String()
		if h := req.Header.Get("Authorization"); h != "" {
			reqText += "\nAuthorization: " + h
		}
		if reqBody != "" {
			reqText += "\n\n" + reqBody
		}
		if err != nil {
			a.record(v, title, explain, "server", reqText, err.Error())
			return nil, err
		}
		body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
		resp.Body.Close()
		resp.Body = io.NopCloser(strings.NewReader(string(body)))
		respText := resp.Status
		if h := resp.Header.Get("WWW-Authenticate"); h != "" {
			respText += "\nWWW-Authenticate: " + h
		}
		a.record(v, title, explain, "server", reqText, respText+"\n\n"+string(body))
		return resp, nil
	})}
}

type roundTripFunc func(*http.Request) (*http.Response, error)

func (f roundTripFunc) RoundTrip(r *http.Request) (*http.Response, error) { return f(r) }

var secretRE = regexp.MustCompile(`((?:access_token|refresh_token|id_token|code|code_verifier|client_secret|state|code_challenge)["']?\s*[:=]\s*["']?)([A-Za-z0-9._~+/%-]{8,})|((?:Bearer|Basic) )([A-Za-z0-9._~+/=-]{8,})`)

// Redact cuts every token, code and secret in s to its first 6 characters.
func Redact(s string) string {
	return secretRE.ReplaceAllStringFunc(s, func(m string) string {
		sub := secretRE.FindStringSubmatch(m)
		prefix, val := sub[1], sub[2]
		if sub[3] != "" {
			prefix, val = sub[3], sub[4]
		}
		return prefix + val[:6] + "…[redacted]"
	})
}
