package e2e

import (
	"context"
	"fmt"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestAuthorizeErrors: requests whose client or redirect URI cannot be
// trusted get an error page, never a redirect; the others are redirected
// with error, state and iss.
func TestAuthorizeErrors(t *testing.T) {
	e := start(t)
	base := func() url.Values { return e.notesRequest("openid email").query() }
	with := func(k, v string) url.Values { q := base(); q.Set(k, v); return q }
	without := func(k string) url.Values { q := base(); q.Del(k); return q }

	pageCases := []struct {
		name  string
		query url.Values
	}{
		{"missing client_id", without("client_id")},
		{"unknown client", with("client_id", "nobody")},
		{"missing redirect_uri", without("redirect_uri")},
		{"redirect prefix", with("redirect_uri", "https://notes.example/callback/extra")},
		{"redirect shorter", with("redirect_uri", "https://notes.example/")},
		{"redirect other scheme", with("redirect_uri", "http://notes.example/callback")},
		{"redirect other port", with("redirect_uri", "https://notes.example:8443/callback")},
		{"redirect host case", with("redirect_uri", "https://NOTES.example/callback")},
		{"redirect suffix host", with("redirect_uri", "https://notes.example.evil.com/callback")},
		{"redirect userinfo", with("redirect_uri", "https://notes.example@evil.com/callback")},
		{"redirect encoded", with("redirect_uri", "https://notes.example/%63allback")},
		{"redirect fragment", with("redirect_uri", "https://notes.example/callback#x")},
		{"redirect traversal", with("redirect_uri", "https://notes.example/callback/../evil")},
		{"redirect extra query", with("redirect_uri", "https://notes.example/callback?x=1")},
		{"public loopback other host", url.Values{"client_id": {"cli"}, "redirect_uri": {"http://localhost:5000/callback"}, "response_type": {"code"}}},
		{"request_uri not pushed here", with("request_uri", "urn:x")},
		{"request object of a client without keys", with("request", "eyJ")},
		{"request_uri of another server", with("request_uri", "urn:ietf:params:oauth:request_uri:par-forged")},
	}
	for _, tc := range pageCases {
		t.Run("page/"+tc.name, func(t *testing.T) {
			p := e.browser().get("/authorize?" + tc.query.Encode())
			if p.Status != http.StatusBadRequest || p.Location != "" {
				t.Fatalf("got %d Location %q, want 400 error page", p.Status, p.Location)
			}
			if !strings.Contains(p.Body, `id="error-message"`) {
				t.Fatalf("no error message on page: %s", p.Body)
			}
			if p.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(p.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") {
				t.Fatal("error page can be framed")
			}
		})
	}
	// Repeated parameters are refused before anything else.
	t.Run("page/duplicate parameter", func(t *testing.T) {
		p := e.browser().get("/authorize?" + base().Encode() + "&client_id=notes")
		if p.Status != http.StatusBadRequest || p.Location != "" {
			t.Fatalf("got %d %q", p.Status, p.Location)
		}
	})

	redirectCases := []struct {
		name  string
		query url.Values
		code  string
	}{
		{"missing response_type", without("response_type"), "invalid_request"},
		{"implicit flow", with("response_type", "token"), "unsupported_response_type"},
		{"hybrid flow", with("response_type", "code id_token"), "unsupported_response_type"},
		{"missing state", without("state"), "invalid_request"},
		{"missing code_challenge", without("code_challenge"), "invalid_request"},
		{"missing challenge method", without("code_challenge_method"), "invalid_request"},
		{"plain PKCE", with("code_challenge_method", "plain"), "invalid_request"},
		{"malformed challenge", with("code_challenge", "short"), "invalid_request"},
		{"unknown scope", with("scope", "openid admin"), "invalid_scope"},
		{"bad scope characters", with("scope", `openid "x"`), "invalid_scope"},
		{"empty scope", with("scope", ""), "invalid_scope"},
		{"bad prompt", with("prompt", "maybe"), "invalid_request"},
		{"prompt none with login", with("prompt", "none login"), "invalid_request"},
		{"bad max_age", with("max_age", "-5"), "invalid_request"},
		{"fragment response mode", with("response_mode", "fragment"), "invalid_request"},
	}
	for _, tc := range redirectCases {
		t.Run("redirect/"+tc.name, func(t *testing.T) {
			p := e.browser().get("/authorize?" + tc.query.Encode())
			if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, notesRedirect+"?") {
				t.Fatalf("got %d %q, want a redirect to the client", p.Status, p.Location)
			}
			u, _ := url.Parse(p.Location)
			q := u.Query()
			if q.Get("error") != tc.code || q.Get("error_description") == "" || q.Get("iss") != e.URL || q.Has("code") {
				t.Fatalf("redirect %s: want error %s with description and iss", p.Location, tc.code)
			}
			if s := tc.query.Get("state"); s != "" && q.Get("state") != s {
				t.Fatalf("state %q not returned", s)
			}
		})
	}
}

// TestTokenErrors covers every error of the token endpoint.
func TestTokenErrors(t *testing.T) {
	e := start(t)
	b := e.browser()
	// fresh returns an unused code and its request.
	fresh := func() (string, authRequest) {
		r := e.notesRequest("openid email offline_access")
		return b.authorize(r, "email", "offline_access").Get("code"), r
	}
	form := func(code string, r authRequest) url.Values {
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI}, "code_verifier": {r.Verifier}}
	}
	cases := []struct {
		name       string
		form       func() url.Values
		user, pass string
		status     int
		code       string
	}{
		{"no grant_type", func() url.Values { return url.Values{"code": {"x"}} }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"unknown grant_type", func() url.Values { return url.Values{"grant_type": {"magic"}} }, "notes", e.NotesSecret, 400, "unsupported_grant_type"},
		{"password grant", func() url.Values { return url.Values{"grant_type": {"password"}, "username": {"amal"}} }, "notes", e.NotesSecret, 400, "unsupported_grant_type"},
		{"implicit-style grant", func() url.Values { return url.Values{"grant_type": {"implicit"}} }, "notes", e.NotesSecret, 400, "unsupported_grant_type"},
		{"wrong secret", func() url.Values { c, r := fresh(); return form(c, r) }, "notes", "wrong", 401, "invalid_client"},
		{"unknown client", func() url.Values { c, r := fresh(); return form(c, r) }, "ghost", "x", 401, "invalid_client"},
		{"confidential client without secret", func() url.Values {
			c, r := fresh()
			f := form(c, r)
			f.Set("client_id", "notes")
			return f
		}, "", "", 401, "invalid_client"},
		{"two auth methods", func() url.Values {
			c, r := fresh()
			f := form(c, r)
			f.Set("client_secret", e.NotesSecret)
			return f
		}, "notes", e.NotesSecret, 400, "invalid_request"},
		{"grant not allowed", func() url.Values { return url.Values{"grant_type": {"client_credentials"}} }, "notes", e.NotesSecret, 400, "unauthorized_client"},
		{"missing code", func() url.Values { _, r := fresh(); return form("", r) }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"unknown code", func() url.Values { _, r := fresh(); return form("forged", r) }, "notes", e.NotesSecret, 400, "invalid_grant"},
		{"missing verifier", func() url.Values { c, r := fresh(); f := form(c, r); f.Del("code_verifier"); return f }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"malformed verifier", func() url.Values { c, r := fresh(); f := form(c, r); f.Set("code_verifier", "short"); return f }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"wrong verifier", func() url.Values {
			c, r := fresh()
			f := form(c, r)
			f.Set("code_verifier", strings.Repeat("a", 43))
			return f
		}, "notes", e.NotesSecret, 400, "invalid_grant"},
		{"missing redirect_uri", func() url.Values { c, r := fresh(); f := form(c, r); f.Del("redirect_uri"); return f }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"other redirect_uri", func() url.Values {
			c, r := fresh()
			f := form(c, r)
			f.Set("redirect_uri", notesRedirect+"/x")
			return f
		}, "notes", e.NotesSecret, 400, "invalid_grant"},
		{"code of another client", func() url.Values {
			c, r := fresh()
			f := form(c, r)
			f.Set("client_id", "cli")
			return f
		}, "", "", 400, "invalid_grant"},
		{"repeated parameter", func() url.Values { c, r := fresh(); f := form(c, r); f.Add("code", c); return f }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"missing refresh_token", func() url.Values { return url.Values{"grant_type": {"refresh_token"}} }, "notes", e.NotesSecret, 400, "invalid_request"},
		{"unknown refresh_token", func() url.Values { return url.Values{"grant_type": {"refresh_token"}, "refresh_token": {"nope"}} }, "notes", e.NotesSecret, 400, "invalid_grant"},
		{"client_credentials openid", func() url.Values { return url.Values{"grant_type": {"client_credentials"}, "scope": {"openid"}} }, "robot", e.RobotSecret, 400, "invalid_scope"},
		{"client_credentials foreign scope", func() url.Values { return url.Values{"grant_type": {"client_credentials"}, "scope": {"payment"}} }, "robot", e.RobotSecret, 400, "invalid_scope"},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := e.token(tc.form(), tc.user, tc.pass)
			wantTokenError(t, r, tc.status, tc.code)
			if tc.status == 401 && tc.user != "" && !strings.HasPrefix(r.Header.Get("WWW-Authenticate"), "Basic") {
				t.Fatalf("401 after Basic auth without WWW-Authenticate: %v", r.Header)
			}
		})
	}

	t.Run("wrong content type", func(t *testing.T) {
		req, _ := http.NewRequest("POST", e.URL+"/token", strings.NewReader(`{"grant_type":"client_credentials"}`))
		req.Header.Set("Content-Type", "application/json")
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("GET not allowed", func(t *testing.T) {
		resp, err := http.Get(e.URL + "/token?grant_type=client_credentials")
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusMethodNotAllowed {
			t.Fatalf("status %d", resp.StatusCode)
		}
	})

	t.Run("code replay revokes the tokens it issued", func(t *testing.T) {
		c, r := fresh()
		first := e.redeem(c, r)
		wantStatus(t, first.Status, 200, "first redemption", first.Description)
		wantTokenError(t, e.redeem(c, r), 400, "invalid_grant")
		if in := e.introspect(first.AccessToken, "notes", e.NotesSecret); in["active"] != false {
			t.Fatalf("access token of a replayed code still active: %v", in)
		}
		wantTokenError(t, e.refresh(first.RefreshToken), 400, "invalid_grant")
	})

	t.Run("refresh reuse revokes the family", func(t *testing.T) {
		c, r := fresh()
		first := e.redeem(c, r)
		second := e.refresh(first.RefreshToken)
		wantStatus(t, second.Status, 200, "rotation", second.Description)
		// The client moved on, so the first token is no retry of a lost
		// response (rotation grace period) but reuse.
		third := e.refresh(second.RefreshToken)
		wantStatus(t, third.Status, 200, "second rotation", third.Description)
		wantTokenError(t, e.refresh(first.RefreshToken), 400, "invalid_grant") // reuse
		wantTokenError(t, e.refresh(third.RefreshToken), 400, "invalid_grant")
		if in := e.introspect(third.AccessToken, "notes", e.NotesSecret); in["active"] != false {
			t.Fatalf("family access token alive after reuse: %v", in)
		}
	})

	t.Run("refresh token of another client", func(t *testing.T) {
		c, r := fresh()
		first := e.redeem(c, r)
		other := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}, "client_id": {"cli"}}, "", "")
		wantTokenError(t, other, 400, "invalid_grant")
		wantTokenError(t, e.refresh(first.RefreshToken), 400, "invalid_grant") // stolen: family revoked
	})

	t.Run("expired code", func(t *testing.T) {
		c, r := fresh()
		e.Clock.Advance(2 * time.Minute)
		wantTokenError(t, e.redeem(c, r), 400, "invalid_grant")
	})
}

// TestNoServerErrors throws malformed input at every endpoint: nothing may
// answer 5xx.
func TestNoServerErrors(t *testing.T) {
	e := start(t)
	bodies := []string{"", "%", "a=%zz", "grant_type=authorization_code&code=" + strings.Repeat("x", 5000), "token=\x00\xff",
		strings.Repeat("a=b&", 20000), "grant_type=refresh_token&refresh_token=%00"}
	for _, path := range []string{"/token", "/revoke", "/introspect", "/login", "/consent", "/authorize", "/userinfo", "/logout", "/account/revoke", "/par", "/device_authorization", "/device", "/register", "/end_session"} {
		for _, body := range bodies {
			for _, ct := range []string{"application/x-www-form-urlencoded", "text/plain", ""} {
				req, _ := http.NewRequest("POST", e.URL+path, strings.NewReader(body))
				if ct != "" {
					req.Header.Set("Content-Type", ct)
				}
				req.Header.Set("Authorization", "Basic !!!")
				resp, err := http.DefaultClient.Do(req)
				if err != nil {
					t.Fatal(err)
				}
				resp.Body.Close()
				if resp.StatusCode >= 500 {
					t.Fatalf("POST %s %q (%s): %d", path, clip(body), ct, resp.StatusCode)
				}
			}
		}
	}
	for _, q := range []string{"%", "client_id=%00", "client_id=notes&redirect_uri=%zz", "login=" + strings.Repeat("x", 10000)} {
		for _, path := range []string{"/authorize", "/login", "/consent", "/account", "/userinfo", "/jwks.json", "/device"} {
			resp, err := http.Get(e.URL + path + "?" + q)
			if err != nil {
				t.Fatal(err)
			}
			resp.Body.Close()
			if resp.StatusCode >= 500 {
				t.Fatalf("GET %s?%s: %d", path, clip(q), resp.StatusCode)
			}
		}
	}
	for _, h := range []string{"Bearer", "Bearer ", "Basic x", "Bearer a.b.c", "Bearer " + strings.Repeat("e", 3000)} {
		req, _ := http.NewRequest("GET", e.URL+"/userinfo", nil)
		req.Header.Set("Authorization", h)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 401 && resp.StatusCode != 400 {
			t.Fatalf("userinfo with %q: %d", clip(h), resp.StatusCode)
		}
	}
}

func clip(s string) string {
	if len(s) > 30 {
		return s[:30] + "…"
	}
	return s
}

// TestLoginThrottle: repeated failures lock the account with a clear message.
func TestLoginThrottle(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid")
	p := b.get(r.url())
	loginURL := p.Location
	for i := range 5 {
		if p := b.login(loginURL, userName, "wrong password"); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `id="login-error"`) {
			t.Fatalf("failure %d: %d", i+1, p.Status)
		}
	}
	// The five free attempts are spent: now even the right password waits.
	p = b.login(loginURL, userName, userPassword)
	if p.Status != http.StatusTooManyRequests || !strings.Contains(p.Body, "Too many failed attempts") {
		t.Fatalf("throttled login: %d", p.Status)
	}
	// RFC 9110 §10.2.3: Retry-After is a number of seconds.
	if secs, err := strconv.Atoi(p.Header.Get("Retry-After")); err != nil || secs < 1 {
		t.Fatalf("Retry-After %q is not a positive number of seconds", p.Header.Get("Retry-After"))
	}
	// Brute force is an attack in the audit log.
	if evs, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{UserID: e.UserID, Type: "login_throttled"}); len(evs) != 1 {
		t.Fatalf("login_throttled events: %+v", evs)
	}
	e.Clock.Advance(5 * time.Second)
	if p := b.login(loginURL, userName, userPassword); p.Status != http.StatusSeeOther {
		t.Fatalf("login after the wait: %d", p.Status)
	}
}

// TestLoginThrottlePerIP: an address that guesses many accounts, one try
// each, is throttled too, and a good password does not clear it.
func TestLoginThrottlePerIP(t *testing.T) {
	e := start(t)
	b := e.browser()
	loginURL := b.get(e.notesRequest("openid").url()).Location
	for i := range 49 {
		if p := b.login(loginURL, fmt.Sprintf("user%d", i), "guess"); p.Status != http.StatusUnauthorized {
			t.Fatalf("guess %d: %d", i+1, p.Status)
		}
	}
	if p := b.login(loginURL, userName, userPassword); p.Status != http.StatusSeeOther {
		t.Fatalf("login within the free attempts: %d", p.Status)
	}
	if p := b.login(loginURL, "user49", "guess"); p.Status != http.StatusUnauthorized {
		t.Fatalf("50th guess: %d", p.Status)
	}
	if p := b.login(loginURL, "user50", "guess"); p.Status != http.StatusTooManyRequests {
		t.Fatalf("51st guess from one address: %d, want 429", p.Status)
	}
}

// TestSessionFixation: the session cookie changes on login.
func TestSessionFixation(t *testing.T) {
	e := start(t)
	b := e.browser()
	p := b.get(e.notesRequest("openid").url())
	b.get(p.Location) // login page sets the anonymous cookie
	u, _ := url.Parse(e.URL)
	before := b.Jar.Cookies(u)
	b.login(p.Location, userName, userPassword)
	after := b.Jar.Cookies(u)
	if len(before) == 0 || len(after) == 0 || before[0].Value == after[0].Value {
		t.Fatalf("session id not renewed on login: %v → %v", before, after)
	}
	// The CSRF token of the login form is bound to the browser.
	other := e.browser()
	lp := b.get(p.Location)
	resp := other.post("/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "username": {userName}, "password": {userPassword}})
	if resp.Status != http.StatusForbidden {
		t.Fatalf("CSRF token of another browser accepted: %d", resp.Status)
	}

}
