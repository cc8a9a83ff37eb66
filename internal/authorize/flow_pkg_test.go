package authorize

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"html"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/token"
	"github.com/bawwab/bawwab/internal/ui"
)

// The tests of this file drive the authorization endpoint and its pages
// through the Handler's own mux on a real SQLite store, as a browser and
// a client would: each row a request and the answer the RFCs ask for.

const (
	zIssuer    = "https://issuer.example"
	zRedirect  = "https://app.example/cb"
	zAPI       = "https://api.example"
	zChallenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // RFC 7636 appendix B
	zPassword  = "correct horse battery staple"
)

var cheap = password.Params{Memory: 1024, Time: 1, Threads: 1}

type authzEnv struct {
	t         *testing.T
	h         *Handler
	mux       *http.ServeMux
	store     storage.Storage
	now       time.Time
	key       *ecdsa.PrivateKey // of the JAR client "signer"
	webSecret string
}

func newAuthzEnv(t *testing.T) *authzEnv {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &authzEnv{t: t, store: s, now: time.Now().Truncate(time.Second)}
	clock := func() time.Time { return e.now }
	sessions, err := session.New(ctx, s, false, time.Hour, clock)
	if err != nil {
		t.Fatal(err)
	}
	pages, err := ui.New(slog.New(slog.DiscardHandler), "bawwab")
	if err != nil {
		t.Fatal(err)
	}
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	// A network's budget is larger than an account's, as in production:
	// the tables below fail a few codes and logins from one address.
	backoff := func(free int) *ratelimit.Backoff {
		return &ratelimit.Backoff{Counter: s, Free: free, Base: time.Minute, Max: time.Hour, Now: clock}
	}
	e.key, _ = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	set, _ := json.Marshal(jose.JSONWebKeySet{Keys: []jose.JSONWebKey{{Key: e.key.Public(), KeyID: "k1", Algorithm: "ES256", Use: "sig"}}})
	e.h = &Handler{Store: s, Sessions: sessions, UI: pages, Scopes: scope.Default(), Issuer: zIssuer, Log: slog.New(slog.DiscardHandler),
		Now: clock, CodeTTL: time.Minute, RequestTTL: 10 * time.Minute, UserFailures: backoff(3), IPFailures: backoff(10),
		Auth:      &clientauth.Authenticator{Store: s, Now: clock, Audiences: []string{zIssuer, zIssuer + "/par"}},
		IDTokens:  &token.Issuer{URL: zIssuer, Keys: keys, Store: s, Scopes: scope.Default(), Now: clock, IDTokenTTL: time.Minute},
		Audiences: []string{zAPI}, Password: cheap}
	var webHash string
	e.webSecret, webHash = clientauth.NewSecret()
	code := []string{"authorization_code"}
	for _, c := range []storage.Client{
		{ID: "web", Name: "Notes", SecretHash: webHash, GrantTypes: code, RedirectURIs: []string{zRedirect, "https://app.example/bye"},
			Scopes: []string{"openid", "profile", "email", "payment"}},
		{ID: "spa", Name: "Single page", Public: true, GrantTypes: code, RedirectURIs: []string{zRedirect}, Scopes: []string{"openid"}},
		{ID: "ccOnly", Name: "Service", SecretHash: webHash, GrantTypes: []string{"client_credentials"}, RedirectURIs: []string{zRedirect}, Scopes: []string{"openid"}},
		{ID: "parOnly", Name: "Strict", SecretHash: webHash, GrantTypes: code, RedirectURIs: []string{zRedirect}, Scopes: []string{"openid", "profile"}, RequirePAR: true},
		{ID: "signer", Name: "Signer", AuthMethod: clientauth.MethodPrivateKeyJWT, JWKS: string(set), GrantTypes: code,
			RedirectURIs: []string{zRedirect}, Scopes: []string{"openid"}},
		{ID: "tv", Name: "Television", Public: true, GrantTypes: []string{token.DeviceCodeGrantType}, Scopes: []string{"openid", "profile"}},
	} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	hash, err := password.Hash(zPassword, cheap)
	if err != nil {
		t.Fatal(err)
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", Name: "Amal", PasswordHash: hash, CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	e.mux = http.NewServeMux()
	e.h.Register(e.mux)
	return e
}

// browser keeps one person's cookies across requests.
type browser struct {
	e       *authzEnv
	cookies map[string]*http.Cookie
}

func (e *authzEnv) browser() *browser { return &browser{e: e, cookies: map[string]*http.Cookie{}} }

func (b *browser) do(r *http.Request) *httptest.ResponseRecorder {
	for _, c := range b.cookies {
		r.AddCookie(c)
	}
	rec := httptest.NewRecorder()
	b.e.mux.ServeHTTP(rec, r)
	for _, c := range rec.Result().Cookies() {
		b.cookies[c.Name] = c
	}
	return rec
}

func (b *browser) get(path string) *httptest.ResponseRecorder {
	return b.do(httptest.NewRequest("GET", path, nil))
}

// post sends form with the CSRF token of b's cookie, unless noCSRF.
func (b *browser) post(path string, form url.Values, noCSRF bool) *httptest.ResponseRecorder {
	if !noCSRF {
		if b.cookies[session.CookieName] == nil {
			b.get("/login")
		}
		probe := httptest.NewRequest("GET", "/", nil)
		probe.AddCookie(b.cookies[session.CookieName])
		form.Set(session.FormField, b.e.h.Sessions.CSRFToken(httptest.NewRecorder(), probe))
	}
	r := httptest.NewRequest("POST", path, strings.NewReader(form.Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	return b.do(r)
}

func (b *browser) login(t *testing.T) {
	t.Helper()
	rec := b.post("/login", url.Values{"username": {"amal"}, "password": {zPassword}}, false)
	if rec.Code != http.StatusSeeOther {
		t.Fatalf("login: %d %s", rec.Code, rec.Body)
	}
}

// authzQuery is a valid authorization request of web, changed by kv
// pairs (an empty value deletes).
func authzQuery(kv ...string) url.Values {
	q := url.Values{"client_id": {"web"}, "redirect_uri": {zRedirect}, "response_type": {"code"}, "scope": {"openid profile"},
		"state": {"xyz"}, "code_challenge": {zChallenge}, "code_challenge_method": {"S256"}, "nonce": {"n1"}}
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i+1] == "" {
			q.Del(kv[i])
		} else {
			q.Set(kv[i], kv[i+1])
		}
	}
	return q
}

// outcome is how a request was answered: an error page (shown, never
// redirected), an error redirected to the client, or a redirect to a
// page of bawwab or to the client with a code.
type outcome struct {
	status   int
	location *url.URL   // of a redirect
	query    url.Values // of location
	body     string
}

func outcomeOf(t *testing.T, rec *httptest.ResponseRecorder) outcome {
	t.Helper()
	o := outcome{status: rec.Code, body: html.UnescapeString(rec.Body.String())}
	if loc := rec.Header().Get("Location"); loc != "" {
		u, err := url.Parse(loc)
		if err != nil {
			t.Fatalf("Location %q: %v", loc, err)
		}
		o.location, o.query = u, u.Query()
	}
	return o
}

// wantRedirectError checks an error sent back to the client's redirect
// URI with state and iss (RFC 6749 §4.1.2.1, RFC 9207).
func (o outcome) wantRedirectError(t *testing.T, code, desc string) {
	t.Helper()
	if o.status != http.StatusFound && o.status != http.StatusSeeOther || o.location == nil {
		t.Fatalf("got %d %s, want a redirect with error %s", o.status, o.body, code)
	}
	if got := o.location.Scheme + "://" + o.location.Host + o.location.Path; got != zRedirect {
		t.Fatalf("redirected to %s, want %s", o.location, zRedirect)
	}
	if o.query.Get("error") != code || !strings.Contains(o.query.Get("error_description"), desc) || o.query.Get("iss") != zIssuer {
		t.Fatalf("redirect query %v, want error=%s mentioning %q and iss", o.query, code, desc)
	}
}

// wantPage checks an error shown on a page, not redirected.
func (o outcome) wantPage(t *testing.T, status int, code, desc string) {
	t.Helper()
	if o.location != nil || o.status != status || !strings.Contains(o.body, desc) || code != "" && !strings.Contains(o.body, "<code>"+code+"</code>") {
		t.Fatalf("got %d (Location %v) %q, want an error page %d with %s mentioning %q", o.status, o.location, o.body, status, code, desc)
	}
}

// TestAuthorizeValidation pins every refusal of an authorization request
// (RFC 6749 §4.1.2.1, RFC 7636 §4.4.1, OpenID Connect Core §3.1.2.6): an
// untrusted client or redirect URI gets an error page, anything after
// that goes back to the client.
func TestAuthorizeValidation(t *testing.T) {
	e := newAuthzEnv(t)
	tests := []struct {
		name     string
		query    url.Values
		page     bool // shown, not redirected
		wantCode string
		wantDesc string
	}{
		{"missing client_id", authzQuery("client_id", ""), true, oautherr.InvalidRequest, "client_id is missing"},
		{"unknown client", authzQuery("client_id", "nobody"), true, oautherr.InvalidClient, "no client is registered"},
		{"missing redirect_uri", authzQuery("redirect_uri", ""), true, oautherr.InvalidRequest, "redirect_uri is missing"},
		{"unregistered redirect_uri", authzQuery("redirect_uri", "https://evil.example/cb"), true, oautherr.InvalidRequest, "does not exactly match"},
		{"redirect_uri with a suffix", authzQuery("redirect_uri", zRedirect+"/x"), true, oautherr.InvalidRequest, "does not exactly match"},
		{"client without the code flow", authzQuery("client_id", "ccOnly"), false, oautherr.UnauthorizedClient, "not allowed the authorization code flow"},
		{"PAR required", authzQuery("client_id", "parOnly"), false, oautherr.InvalidRequest, "must push its authorization requests"},
		{"missing response_type", authzQuery("response_type", ""), false, oautherr.InvalidRequest, "response_type is missing"},
		{"implicit", authzQuery("response_type", "token"), false, oautherr.UnsupportedResponseType, "only response_type=code"},
		{"hybrid", authzQuery("response_type", "code id_token"), false, oautherr.UnsupportedResponseType, "only response_type=code"},
		{"fragment response mode", authzQuery("response_mode", "fragment"), false, oautherr.InvalidRequest, "response_mode=query"},
		{"request_uri not from PAR", authzQuery("request_uri", "https://app.example/req.jwt"), true, oautherr.InvalidRequest, "request_uri must be one this server issued"},
		{"missing state", authzQuery("state", ""), false, oautherr.InvalidRequest, "state is required"},
		{"missing code_challenge", authzQuery("code_challenge", "", "code_challenge_method", ""), false, oautherr.InvalidRequest, "code_challenge is required"},
		{"code_challenge_method without code_challenge", authzQuery("code_challenge", ""), false, oautherr.InvalidRequest, "code_challenge_method was sent without code_challenge"},
		{"plain PKCE", authzQuery("code_challenge_method", "plain"), false, oautherr.InvalidRequest, "plain is not allowed"},
		{"no PKCE method", authzQuery("code_challenge_method", ""), false, oautherr.InvalidRequest, "must be S256"},
		{"malformed challenge", authzQuery("code_challenge", "short"), false, oautherr.InvalidRequest, "base64url SHA-256"},
		{"malformed scope", authzQuery("scope", `openid "x"`), false, oautherr.InvalidScope, "not allowed by RFC 6749"},
		{"missing scope", authzQuery("scope", ""), false, oautherr.InvalidScope, "scope is required"},
		{"unknown scope", authzQuery("scope", "openid admin"), false, oautherr.InvalidScope, "unknown scope admin"},
		{"scope not allowed to the client", authzQuery("scope", "openid files.read"), false, oautherr.InvalidScope, "may not ask for scope files.read"},
		{"unknown prompt", authzQuery("prompt", "create"), false, oautherr.InvalidRequest, "prompt may only contain"},
		{"prompt none with another", authzQuery("prompt", "none login"), false, oautherr.InvalidRequest, "cannot be combined"},
		{"claims not JSON", authzQuery("claims", "{"), false, oautherr.InvalidRequest, "claims must be a JSON object"},
		{"claims of another target", authzQuery("claims", `{"access_token":{}}`), false, oautherr.InvalidRequest, "userinfo and id_token"},
		{"essential acr that cannot be met", authzQuery("claims", `{"id_token":{"acr":{"essential":true,"value":"urn:mfa"}}}`), false,
			oautherr.AccessDenied, "essential acr"},
		{"malformed dpop_jkt", authzQuery("dpop_jkt", "abc"), false, oautherr.InvalidRequest, "dpop_jkt must be"},
		{"dpop_jkt with a bad character", authzQuery("dpop_jkt", strings.Repeat("a", 42)+"+"), false, oautherr.InvalidRequest, "dpop_jkt must be"},
		{"unknown resource", authzQuery("resource", "https://evil.example"), false, oautherr.InvalidTarget, "unknown resource"},
		{"negative max_age", authzQuery("max_age", "-1"), false, oautherr.InvalidRequest, "max_age must be"},
		{"max_age not a number", authzQuery("max_age", "1h"), false, oautherr.InvalidRequest, "max_age must be"},
		{"prompt none without a session", authzQuery("prompt", "none"), false, oautherr.LoginRequired, "not logged in"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outcomeOf(t, e.browser().get("/authorize?"+tt.query.Encode()))
			if tt.page {
				o.wantPage(t, http.StatusBadRequest, tt.wantCode, tt.wantDesc)
				return
			}
			o.wantRedirectError(t, tt.wantCode, tt.wantDesc)
			if o.query.Get("state") != tt.query.Get("state") {
				t.Fatalf("state %q, want %q", o.query.Get("state"), tt.query.Get("state"))
			}
		})
	}
}

// TestAuthorizeParams: repeated and oversized parameters are refused on
// a page (RFC 6749 §3.1), for GET and POST alike.
func TestAuthorizeParams(t *testing.T) {
	e := newAuthzEnv(t)
	post := func(q string) *http.Request {
		r := httptest.NewRequest("POST", "/authorize", strings.NewReader(q))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		return r
	}
	tests := []struct {
		name     string
		req      *http.Request
		wantDesc string
	}{
		{"repeated state", httptest.NewRequest("GET", "/authorize?"+authzQuery().Encode()+"&state=again", nil), "state appears more than once"},
		{"too long", httptest.NewRequest("GET", "/authorize?"+authzQuery("nonce", strings.Repeat("n", 3000)).Encode(), nil), "nonce is too long"},
		{"malformed query", httptest.NewRequest("GET", "/authorize?client_id=%zz", nil), "query string is malformed"},
		{"POST, repeated", post(authzQuery().Encode() + "&scope=openid"), "scope appears more than once"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			outcomeOf(t, e.browser().do(tt.req)).wantPage(t, http.StatusBadRequest, oautherr.InvalidRequest, tt.wantDesc)
		})
	}
	// resource may repeat (RFC 8707 §2), and a POST is as good as a GET.
	q := authzQuery("resource", zAPI)
	q.Add("resource", zAPI)
	for _, r := range []*http.Request{httptest.NewRequest("GET", "/authorize?"+q.Encode(), nil), post(q.Encode())} {
		o := outcomeOf(t, e.browser().do(r))
		if o.location == nil || o.location.Path != "/login" || o.query.Get("req") == "" {
			t.Fatalf("%s with a repeated resource: %d %v, want the login page", r.Method, o.status, o.location)
		}
	}
}

// codeFlow runs the browser through login and consent for q and returns
// where it ends.
func (b *browser) authorize(t *testing.T, q url.Values) outcome {
	t.Helper()
	return outcomeOf(t, b.get("/authorize?"+q.Encode()))
}

// TestCodeFlow: login, consent and the code redirect with state and iss
// (RFC 6749 §4.1.2, RFC 9207 §2); a remembered consent skips the page,
// and prompt, max_age decide when to ask again (OpenID Connect Core
// §3.1.2.1).
func TestCodeFlow(t *testing.T) {
	e := newAuthzEnv(t)
	b := e.browser()
	o := b.authorize(t, authzQuery())
	if o.status != http.StatusFound || o.location.Path != "/login" {
		t.Fatalf("without a session: %d %v, want /login", o.status, o.location)
	}
	req := o.query.Get("req")
	if page := outcomeOf(t, b.get(o.location.String())); page.status != 200 || !strings.Contains(page.body, "Notes") {
		t.Fatalf("login page: %d, want 200 naming the client", page.status)
	}
	o = outcomeOf(t, b.post("/login", url.Values{"req": {req}, "username": {"amal"}, "password": {zPassword}}, false))
	if o.status != http.StatusSeeOther || o.location.Path != "/consent" || o.query.Get("req") != req {
		t.Fatalf("after login: %d %v, want /consent?req=%s", o.status, o.location, req)
	}
	page := outcomeOf(t, b.get(o.location.String()))
	if page.status != 200 || !strings.Contains(page.body, "Notes") || !strings.Contains(page.body, "app.example") {
		t.Fatalf("consent page: %d, want 200 naming the client and where it sends you", page.status)
	}
	o = outcomeOf(t, b.post("/consent", url.Values{"req": {req}, "action": {"allow"}, "scope": {"openid", "profile"}}, false))
	if o.status != http.StatusSeeOther || o.query.Get("code") == "" || o.query.Get("state") != "xyz" || o.query.Get("iss") != zIssuer {
		t.Fatalf("after consent: %d %v, want the redirect URI with code, state and iss", o.status, o.location)
	}
	code, _, err := e.store.ConsumeAuthCode(context.Background(), storage.Hash(o.query.Get("code")), e.now)
	if err != nil || code.ClientID != "web" || code.UserID != "u1" || code.CodeChallenge != zChallenge || code.Nonce != "n1" ||
		strings.Join(code.Scopes, " ") != "openid profile" {
		t.Fatalf("stored code %+v, %v", code, err)
	}
	// The request is spent.
	outcomeOf(t, b.get("/consent?req="+req)).wantPage(t, http.StatusBadRequest, "", "")

	tests := []struct {
		name     string
		query    url.Values
		advance  time.Duration
		wantPath string // /login, /consent or the client's (code)
		wantErr  string
	}{
		{"consent remembered", authzQuery(), 0, "/cb", ""},
		{"prompt none, consent remembered", authzQuery("prompt", "none"), 0, "/cb", ""},
		{"narrower scope", authzQuery("scope", "openid"), 0, "/cb", ""},
		{"more scope", authzQuery("scope", "openid email"), 0, "/consent", ""},
		{"more scope, prompt none", authzQuery("scope", "openid email", "prompt", "none"), 0, "", oautherr.ConsentRequired},
		{"prompt consent", authzQuery("prompt", "consent"), 0, "/consent", ""},
		{"prompt login", authzQuery("prompt", "login"), time.Second, "/login", ""},
		{"max_age passed", authzQuery("max_age", "60"), 2 * time.Minute, "/login", ""},
		{"max_age passed, prompt none", authzQuery("max_age", "60", "prompt", "none"), 0, "", oautherr.LoginRequired},
		{"max_age not passed", authzQuery("max_age", "3600"), 0, "/cb", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.now = e.now.Add(tt.advance)
			o := b.authorize(t, tt.query)
			if tt.wantErr != "" {
				o.wantRedirectError(t, tt.wantErr, "")
				return
			}
			if o.location == nil || o.location.Path != tt.wantPath {
				t.Fatalf("got %d %v, want %s", o.status, o.location, tt.wantPath)
			}
			if tt.wantPath == "/cb" && o.query.Get("code") == "" {
				t.Fatalf("redirect %v without a code", o.location)
			}
		})
	}
}

// pendingRequest sends a new browser's request to /authorize and returns
// the browser, logged in, and the request id.
func (e *authzEnv) pendingRequest(t *testing.T, q url.Values) (*browser, string) {
	t.Helper()
	b := e.browser()
	b.login(t)
	o := b.authorize(t, q)
	if o.location == nil || o.location.Path != "/consent" {
		t.Fatalf("authorize: %d %v, want /consent", o.status, o.location)
	}
	return b, o.query.Get("req")
}

// TestConsentPage pins the answers of the login and consent pages: a
// form without its CSRF token, a request that does not exist, a refusal,
// and scopes left unticked.
func TestConsentPage(t *testing.T) {
	e := newAuthzEnv(t)
	tests := []struct {
		name string
		do   func(t *testing.T) outcome
		// either a page status and text, or a redirect error code
		wantStatus int
		wantText   string
		wantErr    string
	}{
		{"login page of an unknown request", func(t *testing.T) outcome {
			return outcomeOf(t, e.browser().get("/login?req=nope"))
		}, http.StatusBadRequest, "", ""},
		{"consent page of an unknown request", func(t *testing.T) outcome {
			b := e.browser()
			b.login(t)
			return outcomeOf(t, b.get("/consent?req=nope"))
		}, http.StatusBadRequest, "", ""},
		{"consent page of an expired request", func(t *testing.T) outcome {
			b, req := e.pendingRequest(t, authzQuery())
			e.now = e.now.Add(11 * time.Minute)
			defer func() { e.now = e.now.Add(-11 * time.Minute) }()
			return outcomeOf(t, b.get("/consent?req="+req))
		}, http.StatusBadRequest, "", ""},
		{"consent without CSRF token", func(t *testing.T) outcome {
			b, req := e.pendingRequest(t, authzQuery())
			return outcomeOf(t, b.post("/consent", url.Values{"req": {req}, "action": {"allow"}}, true))
		}, http.StatusForbidden, "", ""},
		{"consent with another session's CSRF token", func(t *testing.T) outcome {
			b, req := e.pendingRequest(t, authzQuery())
			other := e.browser()
			other.get("/login")
			probe := httptest.NewRequest("GET", "/", nil)
			probe.AddCookie(other.cookies[session.CookieName])
			f := url.Values{"req": {req}, "action": {"allow"}, session.FormField: {e.h.Sessions.CSRFToken(httptest.NewRecorder(), probe)}}
			r := httptest.NewRequest("POST", "/consent", strings.NewReader(f.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			return outcomeOf(t, b.do(r))
		}, http.StatusForbidden, "", ""},
		{"consent while logged out", func(t *testing.T) outcome {
			_, req := e.pendingRequest(t, authzQuery())
			return outcomeOf(t, e.browser().post("/consent", url.Values{"req": {req}, "action": {"allow"}}, false))
		}, http.StatusSeeOther, "", ""},
		{"denied", func(t *testing.T) outcome {
			b, req := e.pendingRequest(t, authzQuery())
			return outcomeOf(t, b.post("/consent", url.Values{"req": {req}, "action": {"deny"}}, false))
		}, 0, "", oautherr.AccessDenied},
		{"nothing granted", func(t *testing.T) outcome {
			b, req := e.pendingRequest(t, authzQuery("scope", "profile email"))
			return outcomeOf(t, b.post("/consent", url.Values{"req": {req}, "action": {"allow"}}, false))
		}, 0, "", oautherr.AccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := tt.do(t)
			if tt.wantErr != "" {
				o.wantRedirectError(t, tt.wantErr, "")
				return
			}
			if o.status != tt.wantStatus || !strings.Contains(o.body, tt.wantText) {
				t.Fatalf("got %d %v, want %d", o.status, o.location, tt.wantStatus)
			}
			if tt.wantStatus == http.StatusSeeOther && (o.location == nil || o.location.Path != "/login") {
				t.Fatalf("redirected to %v, want /login", o.location)
			}
		})
	}

	// A required scope (openid) is granted even unticked; only the ticked
	// others are.
	b, req := e.pendingRequest(t, authzQuery("scope", "openid profile email"))
	o := outcomeOf(t, b.post("/consent", url.Values{"req": {req}, "action": {"allow"}, "scope": {"email", "payment"}}, false))
	code, _, err := e.store.ConsumeAuthCode(context.Background(), storage.Hash(o.query.Get("code")), e.now)
	if err != nil || strings.Join(code.Scopes, " ") != "openid email" {
		t.Fatalf("granted %v (%v), want openid email", code, err)
	}
}

// TestLogin pins the login form: wrong passwords, unknown users and
// throttling (RFC 9700 §4.15 on brute force) all get the same failure,
// and the form is never re-posted after success (303).
func TestLogin(t *testing.T) {
	e := newAuthzEnv(t)
	tests := []struct {
		name       string
		form       url.Values
		noCSRF     bool
		wantStatus int
		wantPath   string
	}{
		{"no CSRF token", url.Values{"username": {"amal"}, "password": {zPassword}}, true, http.StatusForbidden, ""},
		{"wrong password", url.Values{"username": {"amal"}, "password": {"wrong"}}, false, http.StatusUnauthorized, ""},
		{"unknown user", url.Values{"username": {"nobody"}, "password": {zPassword}}, false, http.StatusUnauthorized, ""},
		{"request gone", url.Values{"req": {"nope"}, "username": {"amal"}, "password": {zPassword}}, false, http.StatusBadRequest, ""},
		{"right password", url.Values{"username": {"amal"}, "password": {zPassword}}, false, http.StatusSeeOther, "/account"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outcomeOf(t, e.browser().post("/login", tt.form, tt.noCSRF))
			if o.status != tt.wantStatus || tt.wantPath != "" && (o.location == nil || o.location.Path != tt.wantPath) {
				t.Fatalf("got %d %v, want %d %s", o.status, o.location, tt.wantStatus, tt.wantPath)
			}
		})
	}

	// Throttling: after the free failures even the right password waits.
	b := e.browser()
	for i := 0; i < 4; i++ {
		b.post("/login", url.Values{"username": {"amal"}, "password": {"wrong"}}, false)
	}
	rec := b.post("/login", url.Values{"username": {"amal"}, "password": {zPassword}}, false)
	if rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("right password while throttled: %d Retry-After %q, want 429 with Retry-After", rec.Code, rec.Header().Get("Retry-After"))
	}
	e.now = e.now.Add(2 * time.Hour)
	if rec := b.post("/login", url.Values{"username": {"amal"}, "password": {zPassword}}, false); rec.Code != http.StatusSeeOther {
		t.Fatalf("after the wait: %d", rec.Code)
	}
	// Logged in, /login sends to the account page.
	if o := outcomeOf(t, b.get("/login")); o.location == nil || o.location.Path != "/account" {
		t.Fatalf("/login while logged in: %d %v", o.status, o.location)
	}
}

// TestPAR pins pushed authorization requests (RFC 9126): the client
// authenticates, every error is JSON (never a redirect), and a
// request_uri works once, for its client, before it expires.
func TestPAR(t *testing.T) {
	e := newAuthzEnv(t)
	push := func(form url.Values, user, pass string) (int, map[string]any) {
		r := httptest.NewRequest("POST", "/par", strings.NewReader(form.Encode()))
		r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		if user != "" {
			r.SetBasicAuth(user, pass)
		}
		rec := httptest.NewRecorder()
		e.mux.ServeHTTP(rec, r)
		var body map[string]any
		if err := json.Unmarshal(rec.Body.Bytes(), &body); err != nil {
			t.Fatalf("/par answered %d with %q", rec.Code, rec.Body)
		}
		return rec.Code, body
	}
	pushed := authzQuery("client_id", "")
	tests := []struct {
		name       string
		form       url.Values
		user, pass string
		wantStatus int
		wantErr    string
		wantDesc   string
	}{
		{"no client authentication", pushed, "", "", 401, oautherr.InvalidClient, "client authentication is missing"},
		{"wrong secret", pushed, "web", "wrong", 401, oautherr.InvalidClient, "wrong credentials"},
		{"request_uri pushed", authzQuery("client_id", "", "request_uri", "urn:x"), "web", e.webSecret, 400, oautherr.InvalidRequest, "request_uri may not be pushed"},
		{"unregistered redirect_uri", authzQuery("client_id", "", "redirect_uri", "https://evil.example/"), "web", e.webSecret, 400,
			oautherr.InvalidRequest, "does not exactly match"},
		{"missing PKCE", authzQuery("client_id", "", "code_challenge", "", "code_challenge_method", ""), "web", e.webSecret, 400, oautherr.InvalidRequest, "code_challenge is required"},
		{"client_id of another client in the body", authzQuery("client_id", "spa"), "web", e.webSecret, 400, oautherr.InvalidRequest, "differs"},
		{"valid", pushed, "web", e.webSecret, 201, "", ""},
		{"valid, PAR-only client", pushed, "parOnly", e.webSecret, 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := push(tt.form, tt.user, tt.pass)
			if status != tt.wantStatus || (body["error"] != nil) != (tt.wantErr != "") ||
				tt.wantErr != "" && (body["error"] != tt.wantErr || !strings.Contains(body["error_description"].(string), tt.wantDesc)) {
				t.Fatalf("got %d %v, want %d %s mentioning %q", status, body, tt.wantStatus, tt.wantErr, tt.wantDesc)
			}
			if tt.wantErr == "" && (!strings.HasPrefix(body["request_uri"].(string), requestURIPrefix) || body["expires_in"].(float64) != 60) {
				t.Fatalf("PAR response %v", body)
			}
		})
	}

	newURI := func(client string) string {
		status, body := push(pushed, client, e.webSecret)
		if status != 201 {
			t.Fatalf("push: %d %v", status, body)
		}
		return body["request_uri"].(string)
	}
	use := func(client, uri string) outcome {
		return outcomeOf(t, e.browser().get("/authorize?"+url.Values{"client_id": {client}, "request_uri": {uri}}.Encode()))
	}
	uses := []struct {
		name     string
		run      func() outcome
		wantDesc string // "" when it proceeds to login
	}{
		{"valid", func() outcome { return use("web", newURI("web")) }, ""},
		{"PAR-only client", func() outcome { return use("parOnly", newURI("parOnly")) }, ""},
		{"second use", func() outcome { u := newURI("web"); use("web", u); return use("web", u) }, "unknown, used or expired"},
		{"another client", func() outcome { return use("spa", newURI("web")) }, "pushed by another client"},
		{"not ours", func() outcome { return use("web", "urn:ietf:params:oauth:request_uri:abc") }, "one this server issued"},
		{"unknown", func() outcome { return use("web", requestURIPrefix+"par-nope") }, "unknown, used or expired"},
		{"expired", func() outcome {
			u := newURI("web")
			e.now = e.now.Add(61 * time.Second)
			return use("web", u)
		}, "has expired"},
	}
	for _, tt := range uses {
		t.Run("use "+tt.name, func(t *testing.T) {
			o := tt.run()
			if tt.wantDesc != "" {
				o.wantPage(t, http.StatusBadRequest, oautherr.InvalidRequest, tt.wantDesc)
				return
			}
			if o.location == nil || o.location.Path != "/login" {
				t.Fatalf("got %d %v, want /login", o.status, o.location)
			}
		})
	}
}

// requestObject signs claims as the "signer" client's request object.
func (e *authzEnv) requestObject(t *testing.T, claims map[string]any, typ string) string {
	t.Helper()
	c := map[string]any{"iss": "signer", "aud": zIssuer, "exp": e.now.Add(time.Minute).Unix(), "client_id": "signer",
		"redirect_uri": zRedirect, "response_type": "code", "scope": "openid", "state": "s1", "code_challenge": zChallenge,
		"code_challenge_method": "S256"}
	for k, v := range claims {
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
	}
	opts := (&jose.SignerOptions{}).WithHeader("kid", "k1")
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: e.key}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(c).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// TestJAR pins request objects (RFC 9101): each row a request object and
// the invalid_request_object (or other) error shown for it.
func TestJAR(t *testing.T) {
	e := newAuthzEnv(t)
	const typ = clientauth.TypRequestObject
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	otherSig, _ := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other}, (&jose.SignerOptions{}).WithType(typ))
	forged, _ := jwt.Signed(otherSig).Claims(map[string]any{"iss": "signer", "aud": zIssuer, "exp": e.now.Add(time.Minute).Unix()}).Serialize()
	replayed := e.requestObject(t, map[string]any{"jti": "once"}, typ)
	tests := []struct {
		name     string
		client   string
		request  string
		wantCode string
		wantDesc string
	}{
		{"no client_id", "", e.requestObject(t, nil, typ), oautherr.InvalidRequest, "client_id is required beside a request object"},
		{"unknown client", "nobody", e.requestObject(t, nil, typ), oautherr.InvalidClient, "no client is registered"},
		{"client without keys", "web", e.requestObject(t, nil, typ), InvalidRequestObject, "no registered keys"},
		{"not a JWT", "signer", "garbage", InvalidRequestObject, "asymmetric algorithm"},
		{"signed by another key", "signer", forged, InvalidRequestObject, "not signed by a key of this client"},
		{"untyped", "signer", e.requestObject(t, nil, ""), InvalidRequestObject, "typ header must be"},
		{"typed as a client assertion", "signer", e.requestObject(t, nil, clientauth.TypAssertion), InvalidRequestObject, "typ header must be"},
		{"another issuer", "signer", e.requestObject(t, map[string]any{"iss": "web"}, typ), InvalidRequestObject, "iss must be the client_id"},
		{"another audience", "signer", e.requestObject(t, map[string]any{"aud": "https://elsewhere.example"}, typ), InvalidRequestObject, "aud must be"},
		{"no exp", "signer", e.requestObject(t, map[string]any{"exp": nil}, typ), InvalidRequestObject, "needs an exp"},
		{"exp in a day", "signer", e.requestObject(t, map[string]any{"exp": e.now.Add(24 * time.Hour).Unix()}, typ), InvalidRequestObject, "needs an exp"},
		{"expired", "signer", e.requestObject(t, map[string]any{"exp": e.now.Add(-time.Minute).Unix()}, typ), InvalidRequestObject, "expired"},
		{"nested request", "signer", e.requestObject(t, map[string]any{"request": "x"}, typ), InvalidRequestObject, "may not nest request"},
		{"non-string parameter", "signer", e.requestObject(t, map[string]any{"scope": []string{"openid"}}, typ), InvalidRequestObject, "must be a string"},
		{"client_id differs inside", "signer", e.requestObject(t, map[string]any{"client_id": "web"}, typ), InvalidRequestObject, "differs"},
		{"replayed jti", "signer", replayed, InvalidRequestObject, "jti was used before"},
	}
	// The first use of the jti is fine.
	if o := outcomeOf(t, e.browser().get("/authorize?"+url.Values{"client_id": {"signer"}, "request": {replayed}}.Encode())); o.location == nil || o.location.Path != "/login" {
		t.Fatalf("first use of a request object: %d %v %s", o.status, o.location, o.body)
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			q := url.Values{"request": {tt.request}}
			if tt.client != "" {
				q.Set("client_id", tt.client)
			}
			outcomeOf(t, e.browser().get("/authorize?"+q.Encode())).wantPage(t, http.StatusBadRequest, tt.wantCode, tt.wantDesc)
		})
	}
	// Only the signed parameters count (RFC 9101 §6.3): a state outside is
	// ignored, and max_age as a number is read.
	ro := e.requestObject(t, map[string]any{"max_age": 60, "state": "inside"}, typ)
	o := outcomeOf(t, e.browser().get("/authorize?"+url.Values{"client_id": {"signer"}, "request": {ro}, "state": {"outside"}}.Encode()))
	if o.location == nil || o.location.Path != "/login" {
		t.Fatalf("valid request object: %d %v %s", o.status, o.location, o.body)
	}
	stored, err := e.store.GetAuthRequest(context.Background(), o.query.Get("req"))
	if err != nil || stored.State != "inside" || stored.MaxAge != 60 {
		t.Fatalf("stored request %+v, %v; want state inside and max_age 60", stored, err)
	}
	// A request object's errors after validation go to the client.
	ro = e.requestObject(t, map[string]any{"scope": "openid admin"}, typ)
	outcomeOf(t, e.browser().get("/authorize?"+url.Values{"client_id": {"signer"}, "request": {ro}}.Encode())).
		wantRedirectError(t, oautherr.InvalidScope, "unknown scope admin")
}

// TestEndSession pins RP-Initiated Logout (OpenID Connect RP-Initiated
// Logout §2, §3): post_logout_redirect_uri only when registered for the
// client the request or its id_token_hint names.
func TestEndSession(t *testing.T) {
	e := newAuthzEnv(t)
	sign := func(aud ...string) string {
		raw, err := e.h.IDTokens.Keys.Sign(jwks.TypeJWT, token.IDClaims{Claims: jwt.Claims{Issuer: zIssuer, Subject: "u1", Audience: aud,
			Expiry: jwt.NewNumericDate(e.now.Add(-time.Hour))}})
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	tests := []struct {
		name     string
		query    url.Values
		wantDesc string // "" when the page is shown
	}{
		{"bare", url.Values{}, ""},
		{"hint alone", url.Values{"id_token_hint": {sign("web")}}, ""},
		{"hint and its redirect", url.Values{"id_token_hint": {sign("web")}, "post_logout_redirect_uri": {"https://app.example/bye"}}, ""},
		{"client_id and its redirect", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://app.example/bye"}}, ""},
		{"hint not an ID token", url.Values{"id_token_hint": {"a.b.c"}}, "not an ID token of this server"},
		{"hint of another client", url.Values{"id_token_hint": {sign("spa")}, "client_id": {"web"}}, "issued to another client"},
		{"unknown client", url.Values{"client_id": {"nobody"}}, "no client is registered"},
		{"unregistered redirect", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://evil.example/"}}, "not a redirect URI registered"},
		{"redirect with a fragment", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://app.example/bye#x"}}, "not a redirect URI registered"},
		{"redirect without a client", url.Values{"post_logout_redirect_uri": {"https://app.example/bye"}}, "needs client_id or id_token_hint"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outcomeOf(t, e.browser().get("/end_session?"+tt.query.Encode()))
			if tt.wantDesc != "" {
				o.wantPage(t, http.StatusBadRequest, oautherr.InvalidRequest, tt.wantDesc)
				return
			}
			if o.status != 200 || o.location != nil {
				t.Fatalf("got %d %v %s, want the logout page", o.status, o.location, o.body)
			}
		})
	}

	// Confirming ends the session and goes back with state; cancelling
	// keeps it.
	b := e.browser()
	b.login(t)
	o := outcomeOf(t, b.post("/end_session", url.Values{"client_id": {"web"}, "post_logout_redirect_uri": {"https://app.example/bye"},
		"state": {"s9"}}, false))
	if o.location == nil || o.location.String() != "https://app.example/bye?state=s9" {
		t.Fatalf("cancel: %d %v", o.status, o.location)
	}
	if o := outcomeOf(t, b.get("/account")); o.status != 200 {
		t.Fatalf("after cancelling the logout the session is gone: %d %v", o.status, o.location)
	}
	o = outcomeOf(t, b.post("/end_session", url.Values{"action": {"logout"}}, false))
	if o.status != 200 {
		t.Fatalf("logout: %d %v", o.status, o.location)
	}
	if o := outcomeOf(t, b.get("/account")); o.location == nil || o.location.Path != "/login" {
		t.Fatalf("after the logout: %d %v, want /login", o.status, o.location)
	}
	if o := outcomeOf(t, b.post("/end_session", url.Values{"client_id": {"nobody"}}, false)); o.status != 400 {
		t.Fatalf("POST with an unknown client: %d", o.status)
	}
	if o := outcomeOf(t, e.browser().post("/end_session", url.Values{"action": {"logout"}}, true)); o.status != http.StatusForbidden {
		t.Fatalf("POST without CSRF: %d", o.status)
	}
}

// TestAccountPages: the account page and its forms need a session and a
// CSRF token; revoking an app removes its consent; logging out
// everywhere ends every session of the user.
func TestAccountPages(t *testing.T) {
	e := newAuthzEnv(t)
	ctx := context.Background()
	if o := outcomeOf(t, e.browser().get("/account")); o.status != http.StatusFound || o.location.Path != "/login" {
		t.Fatalf("account without a session: %d %v", o.status, o.location)
	}
	if o := outcomeOf(t, e.browser().get("/")); o.location == nil || o.location.Path != "/account" {
		t.Fatalf("/: %d %v", o.status, o.location)
	}
	if err := e.store.SaveConsent(ctx, storage.Consent{UserID: "u1", ClientID: "web", Scopes: []string{"openid", "payment"}, GrantedAt: e.now, UpdatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.login(t)
	if o := outcomeOf(t, b.get("/account")); o.status != 200 || !strings.Contains(o.body, "Notes") {
		t.Fatalf("account page: %d, want it to list Notes", o.status)
	}
	if o := outcomeOf(t, b.post("/account/revoke", url.Values{"client_id": {"web"}}, true)); o.status != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", o.status)
	}
	if _, err := e.store.GetConsent(ctx, "u1", "web"); err != nil {
		t.Fatalf("the consent went without a CSRF token: %v", err)
	}
	o := outcomeOf(t, b.post("/account/revoke", url.Values{"client_id": {"web"}}, false))
	if o.status != http.StatusSeeOther || o.query.Get("revoked") != "web" {
		t.Fatalf("revoke: %d %v", o.status, o.location)
	}
	if c, err := e.store.GetConsent(ctx, "u1", "web"); err == nil && len(c.Scopes) > 0 {
		t.Fatalf("consent after revoking: %+v", c)
	}
	if o := outcomeOf(t, b.get(o.location.String())); o.status != 200 || !strings.Contains(o.body, "Notes") {
		t.Fatalf("account page after revoking: %d, want a notice naming Notes", o.status)
	}
	other := e.browser()
	other.login(t)
	if o := outcomeOf(t, b.post("/account/logout-all", url.Values{}, false)); o.status != http.StatusSeeOther || o.location.Path != "/login" {
		t.Fatalf("logout-all: %d %v", o.status, o.location)
	}
	if o := outcomeOf(t, other.get("/account")); o.location == nil || o.location.Path != "/login" {
		t.Fatalf("another session after logging out everywhere: %d %v", o.status, o.location)
	}
	if o := outcomeOf(t, e.browser().post("/account/revoke", url.Values{"client_id": {"web"}}, false)); o.location == nil || o.location.Path != "/login" {
		t.Fatalf("revoke while logged out: %d %v", o.status, o.location)
	}
	// POST /logout ends the session and goes back to the request's login.
	b.login(t)
	if o := outcomeOf(t, b.post("/logout", url.Values{"req": {"r1"}}, false)); o.location == nil || o.location.Path != "/login" || o.query.Get("req") != "r1" {
		t.Fatalf("logout: %d %v", o.status, o.location)
	}
	if o := outcomeOf(t, b.get("/account")); o.location == nil || o.location.Path != "/login" {
		t.Fatalf("account after logout: %d %v", o.status, o.location)
	}
}

// TestDevicePage pins the verification page of the device flow (RFC 8628
// §3.3): unknown, used and expired codes are refused alike, a pending one
// leads through login and consent to a decision stored for the device.
func TestDevicePage(t *testing.T) {
	e := newAuthzEnv(t)
	ctx := context.Background()
	mk := func(userCode string, exp time.Duration) {
		if err := e.store.CreateDeviceCode(ctx, storage.DeviceCode{Hash: storage.Hash(userCode), UserCode: userCode, ClientID: "tv",
			Scopes: []string{"openid", "profile"}, Interval: 5, CreatedAt: e.now, ExpiresAt: e.now.Add(exp)}); err != nil {
			t.Fatal(err)
		}
	}
	mk("AAAABBBB", 10*time.Minute)
	mk("CCCCDDDD", time.Second)
	mk("EEEEFFFF", 10*time.Minute)
	mk("GGGGHHHH", 10*time.Minute)
	if err := e.store.DecideDeviceCode(ctx, "EEEEFFFF", false, "u1", nil, nil, e.now, e.now); err != nil {
		t.Fatal(err)
	}
	if o := outcomeOf(t, e.browser().get("/device?user_code=ABCD-EFGH")); o.status != 200 || !strings.Contains(o.body, "ABCD-EFGH") {
		t.Fatalf("device page: %d, want 200 with the code filled in", o.status)
	}
	e.now = e.now.Add(2 * time.Second) // CCCCDDDD expires
	loggedIn := e.browser()
	loggedIn.login(t)
	tests := []struct {
		name       string
		b          *browser
		code       string
		noCSRF     bool
		wantStatus int
		wantPath   string
	}{
		{"no CSRF token", e.browser(), "AAAA-BBBB", true, http.StatusForbidden, ""},
		{"unknown code", e.browser(), "ZZZZ-ZZZZ", false, http.StatusBadRequest, ""},
		{"expired code", e.browser(), "CCCC-DDDD", false, http.StatusBadRequest, ""},
		{"decided code", e.browser(), "EEEE-FFFF", false, http.StatusBadRequest, ""},
		{"pending code, logged out", e.browser(), "aaaa bbbb", false, http.StatusSeeOther, "/login"},
		{"pending code, logged in", loggedIn, "AAAA-BBBB", false, http.StatusSeeOther, "/consent"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			o := outcomeOf(t, tt.b.post("/device", url.Values{"user_code": {tt.code}}, tt.noCSRF))
			if o.status != tt.wantStatus || tt.wantPath != "" && (o.location == nil || o.location.Path != tt.wantPath) {
				t.Fatalf("got %d %v, want %d %s", o.status, o.location, tt.wantStatus, tt.wantPath)
			}
		})
	}

	decide := []struct {
		code, action string
		want         string
	}{{"AAAA-BBBB", "allow", storage.DeviceApproved}, {"GGGG-HHHH", "deny", storage.DeviceDenied}}
	for _, d := range decide {
		t.Run(d.action, func(t *testing.T) {
			o := outcomeOf(t, loggedIn.post("/device", url.Values{"user_code": {d.code}}, false))
			if o.location == nil || o.location.Path != "/consent" {
				t.Fatalf("device submit: %d %v", o.status, o.location)
			}
			o = outcomeOf(t, loggedIn.post("/consent", url.Values{"req": {o.query.Get("req")}, "action": {d.action}, "scope": {"profile"}}, false))
			if o.status != 200 || o.location != nil {
				t.Fatalf("device decision: %d %v, want the device page", o.status, o.location)
			}
			dc, err := e.store.GetDeviceCodeByUserCode(ctx, strings.ReplaceAll(d.code, "-", ""))
			if err != nil || dc.Status != d.want || d.want == storage.DeviceApproved && (dc.UserID != "u1" || strings.Join(dc.GrantedScopes, " ") != "openid profile") {
				t.Fatalf("device code after %s: %+v, %v", d.action, dc, err)
			}
		})
	}

	// Failed codes are throttled per address (RFC 8628 §5.1 on brute force).
	b := e.browser()
	for i := 0; i < 10; i++ {
		b.post("/device", url.Values{"user_code": {"ZZZZ-ZZZZ"}}, false)
	}
	if rec := b.post("/device", url.Values{"user_code": {"ZZZZ-ZZZZ"}}, false); rec.Code != http.StatusTooManyRequests || rec.Header().Get("Retry-After") == "" {
		t.Fatalf("guessing user codes: %d Retry-After %q, want 429", rec.Code, rec.Header().Get("Retry-After"))
	}
}

// flaky is a store whose named methods fail as an unreachable database
// does (storage.ErrUnavailable), the others passing through.
type flaky struct {
	storage.Storage
	down map[string]bool
}

var errOutage = fmt.Errorf("test: %w: connection refused", storage.ErrUnavailable)

func (f *flaky) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	if f.down["GetClient"] {
		return nil, errOutage
	}
	return f.Storage.GetClient(ctx, id)
}

func (f *flaky) GetConsent(ctx context.Context, userID, clientID string) (*storage.Consent, error) {
	if f.down["GetConsent"] {
		return nil, errOutage
	}
	return f.Storage.GetConsent(ctx, userID, clientID)
}

func (f *flaky) CreateAuthRequest(ctx context.Context, r storage.AuthRequest) error {
	if f.down["CreateAuthRequest"] {
		return errOutage
	}
	return f.Storage.CreateAuthRequest(ctx, r)
}

func (f *flaky) GetAuthRequest(ctx context.Context, id string) (*storage.AuthRequest, error) {
	if f.down["GetAuthRequest"] {
		return nil, errOutage
	}
	return f.Storage.GetAuthRequest(ctx, id)
}

func (f *flaky) CreateAuthCode(ctx context.Context, c storage.AuthCode) error {
	if f.down["CreateAuthCode"] {
		return errOutage
	}
	return f.Storage.CreateAuthCode(ctx, c)
}

func (f *flaky) GetUserByUsername(ctx context.Context, username string) (*storage.User, error) {
	if f.down["GetUserByUsername"] {
		return nil, errOutage
	}
	return f.Storage.GetUserByUsername(ctx, username)
}

// TestStoreOutage: while the store cannot be reached, a request whose
// redirect URI is trusted goes back to the client as
// temporarily_unavailable (RFC 6749 §4.1.2.1), and anything else is a 503
// page with Retry-After: never a 500.
func TestStoreOutage(t *testing.T) {
	e := newAuthzEnv(t)
	f := &flaky{Storage: e.store, down: map[string]bool{}}
	e.h.Store = f
	loggedIn := e.browser()
	loggedIn.login(t)
	_, pendingReq := e.pendingRequest(t, authzQuery())
	if err := e.store.CreateDeviceCode(context.Background(), storage.DeviceCode{Hash: "h-outage", UserCode: "JJJJKKKK", ClientID: "tv",
		Scopes: []string{"openid"}, Interval: 5, CreatedAt: e.now, ExpiresAt: e.now.Add(time.Minute)}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name string
		down string
		// do sends the request, calling outage when the store should go
		do       func(outage func()) *httptest.ResponseRecorder
		redirect bool // to the client; else a 503 page
	}{
		{"client lookup", "GetClient", func(outage func()) *httptest.ResponseRecorder {
			outage()
			return e.browser().get("/authorize?" + authzQuery().Encode())
		}, false},
		{"storing the request", "CreateAuthRequest", func(outage func()) *httptest.ResponseRecorder {
			outage()
			return e.browser().get("/authorize?" + authzQuery().Encode())
		}, true},
		{"reading the consent", "GetConsent", func(outage func()) *httptest.ResponseRecorder {
			outage()
			return loggedIn.get("/authorize?" + authzQuery().Encode())
		}, true},
		{"reading a pending request", "GetAuthRequest", func(outage func()) *httptest.ResponseRecorder {
			outage()
			return loggedIn.get("/consent?req=" + pendingReq)
		}, false},
		{"issuing the code", "CreateAuthCode", func(outage func()) *httptest.ResponseRecorder {
			b, req := e.pendingRequest(t, authzQuery())
			outage()
			return b.post("/consent", url.Values{"req": {req}, "action": {"allow"}, "scope": {"openid", "profile"}}, false)
		}, true},
		{"login", "GetUserByUsername", func(outage func()) *httptest.ResponseRecorder {
			outage()
			return e.browser().post("/login", url.Values{"username": {"amal"}, "password": {zPassword}}, false)
		}, false},
		{"device request", "CreateAuthRequest", func(outage func()) *httptest.ResponseRecorder {
			outage()
			return loggedIn.post("/device", url.Values{"user_code": {"JJJJ-KKKK"}}, false)
		}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			defer func() { f.down = map[string]bool{} }()
			rec := tt.do(func() { f.down[tt.down] = true })
			o := outcomeOf(t, rec)
			if tt.redirect {
				o.wantRedirectError(t, oautherr.TemporarilyUnavailable, "try again")
				if o.query.Get("state") != "xyz" {
					t.Fatalf("state %q", o.query.Get("state"))
				}
				return
			}
			if o.status != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" || o.location != nil ||
				!strings.Contains(o.body, oautherr.TemporarilyUnavailable) {
				t.Fatalf("got %d (Retry-After %q, Location %v), want a 503 page", o.status, rec.Header().Get("Retry-After"), o.location)
			}
		})
	}
}

// TestPARConcurrentUse: a request_uri sent by several browsers at once
// starts exactly one authorization (RFC 9126 §4: single use).
func TestPARConcurrentUse(t *testing.T) {
	e := newAuthzEnv(t)
	r := httptest.NewRequest("POST", "/par", strings.NewReader(authzQuery("client_id", "").Encode()))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("web", e.webSecret)
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	var pushed parResponse
	if err := json.Unmarshal(rec.Body.Bytes(), &pushed); err != nil || rec.Code != 201 {
		t.Fatalf("push: %d %s", rec.Code, rec.Body)
	}
	const n = 8
	codes := make(chan int, n)
	var wg sync.WaitGroup
	for range n {
		wg.Go(func() {
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, httptest.NewRequest("GET", "/authorize?"+url.Values{"client_id": {"web"}, "request_uri": {pushed.RequestURI}}.Encode(), nil))
			codes <- rec.Code
		})
	}
	wg.Wait()
	close(codes)
	started := 0
	for c := range codes {
		switch c {
		case http.StatusFound:
			started++
		case http.StatusBadRequest:
		default:
			t.Fatalf("a concurrent use of the request_uri got %d", c)
		}
	}
	if started != 1 {
		t.Fatalf("%d of %d concurrent uses of one request_uri went on, want 1", started, n)
	}
}
