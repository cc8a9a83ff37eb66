package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestAttackConsoleBadInput: console forms with NUL bytes, invalid UTF-8,
// markup, huge values or missing fields get an answer of 4xx or a
// redirect, never a server error; markup is escaped on the pages that
// show it back; every console page denies framing and caching.
func TestAttackConsoleBadInput(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	tok := consoleToken(t, e, b)
	other := addConsoleUser(t, e, "other")
	if status, body := e.adminCall("POST", "/admin/upstreams", adminToken, map[string]any{"id": "corp", "type": "oidc", "name": map[string]string{"en": "Corp"},
		"issuer": "https://login.corp.example", "client_id": "bawwab", "client_secret": "corp-secret"}, nil); status != http.StatusCreated {
		t.Fatalf("add upstream: %d %s", status, body)
	}
	huge := strings.Repeat("x", 2<<20)
	bad := []string{"a\x00b", "\xff\xfe", `<script>alert(1)</script>"'`, huge, ""}
	forms := map[string][]string{
		"/console/clients":                      {"name", "redirect_uris", "scopes", "grant_types", "auth_method", "jwks", "jwks_uri"},
		"/console/clients/bawwab-console":       {"name", "scopes", "jwks", "auth_method"},
		"/console/users":                        {"username", "name", "email", "password"},
		"/console/users/" + other + "/password": {"password"},
		"/console/users/" + other + "/role":     {"admin"},
		"/console/users/nobody\x00/do/signout":  {},
		"/console/scopes/openid":                {"description_en", "description_ar"},
		"/console/upstreams":                    {"id", "name", "issuer", "client_id", "client_secret"},
		"/console/upstreams/corp": {"name_en", "name_ar", "issuer", "auth_url", "token_url", "userinfo_url", "client_id", "client_secret",
			"scopes", "allowed_domains", "icon", "claim_subject", "claim_email", "jit", "enabled"},
		"/console/users/" + e.UserID + "/grants/%00/revoke": {},
		"/console/registration/tokens":                      {"label", "expires_in", "max_uses"},
		"/console/registration/tokens/%00/revoke":           {},
	}
	for path, fields := range forms {
		for _, v := range bad {
			f := url.Values{"csrf_token": {tok}}
			for _, k := range fields {
				f.Set(k, v)
			}
			p := b.post(e.AdminURL+strings.ReplaceAll(path, "\x00", "%00"), f)
			if p.Status >= 500 {
				t.Errorf("POST %s with %.20q: %d %.300s", path, v, p.Status, p.Body)
			}
			if strings.Contains(p.Body, "<script>alert(1)") {
				t.Errorf("POST %s shows markup unescaped", path)
			}
		}
	}
	for _, path := range []string{"/console/", "/console/clients", "/console/clients/bawwab-console", "/console/users", "/console/users/" + e.UserID,
		"/console/scopes", "/console/audit", "/console/upstreams", "/console/upstreams/corp", "/console/upstreams/%00", "/console/audit?user=%ff%00&client=<x>&from=bad&before=zz",
		"/console/registration", "/console/registration/tokens/%ff%00/revoke"} {
		resp, err := b.Get(e.AdminURL + path)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode >= 500 {
			t.Errorf("GET %s: %d", path, resp.StatusCode)
		}
		if resp.Header.Get("X-Frame-Options") != "DENY" || !strings.Contains(resp.Header.Get("Content-Security-Policy"), "frame-ancestors 'none'") ||
			resp.Header.Get("Cache-Control") != "no-store" {
			t.Errorf("GET %s headers: %v", path, resp.Header)
		}
	}
	// A Host of another name (DNS rebinding) is refused a sign-in.
	req, _ := http.NewRequest("GET", e.AdminURL+"/console/login", nil)
	req.Host = "rebind.example:80"
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusBadRequest {
		t.Errorf("console login under a foreign Host: %d", resp.StatusCode)
	}
}

// TestAttackConsoleCallbackOtherPort: the console's client matches its
// loopback callback on any port (RFC 8252 §7.3), so a program listening
// on another loopback port can have an admin's browser bring it a code
// for the console, with the state and PKCE challenge of a sign-in the
// program started itself. Replayed into the console's callback under a
// Host of that other port, the code must not give the program a console
// session: the callback is the console's own port, whatever Host says.
func TestAttackConsoleCallbackOtherPort(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	admin := e.browser()
	wantStatus(t, admin.consoleSignIn(userName, userPassword).Status, http.StatusOK, "console sign-in", nil)
	au, _ := url.Parse(e.AdminURL)
	// Another port, and the console's port at the other loopback address
	// (free when the admin listener binds 127.0.0.1 only).
	for _, at := range []string{"127.0.0.1:9", "[::1]:" + au.Port()} {
		t.Run(at, func(t *testing.T) { stealConsoleCode(t, e, admin, at) })
	}
}

func stealConsoleCode(t *testing.T, e *env, admin *browser, stolenAt string) {
	thief := e.browser()
	start := thief.get(e.AdminURL + "/console/login")
	au, err := url.Parse(start.Location)
	if err != nil || start.Location == "" {
		t.Fatalf("console login: %d %q", start.Status, start.Location)
	}
	q := au.Query()
	q.Set("redirect_uri", "http://"+stolenAt+"/console/callback")
	au.RawQuery = q.Encode()

	p := admin.get(au.String())
	for range 6 {
		if strings.HasPrefix(p.Location, "http://"+stolenAt+"/") {
			break
		}
		switch {
		case strings.HasPrefix(p.Location, "/consent"):
			p = admin.consent(p.Location, true, "openid")
		case p.Location != "":
			p = admin.get(p.Location)
		}
	}
	cb, err := url.Parse(p.Location)
	if err != nil || cb.Query().Get("code") == "" {
		t.Skipf("the admin's browser brought no code to the other port (%d %q): nothing to replay", p.Status, p.Location)
	}
	req, _ := http.NewRequest("GET", e.AdminURL+"/console/callback?"+cb.RawQuery, nil)
	req.Host = stolenAt
	for _, ck := range thief.Jar.Cookies(req.URL) {
		req.AddCookie(ck)
	}
	resp, err := http.DefaultTransport.RoundTrip(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	for _, line := range resp.Header.Values("Set-Cookie") {
		if strings.HasPrefix(line, "bawwab_console=") && !strings.Contains(line, "Max-Age=0") {
			t.Fatalf("a code brought to another loopback port gave a console session: %d %s", resp.StatusCode, line)
		}
	}
	if resp.StatusCode != http.StatusBadRequest {
		t.Fatalf("callback under another port's Host: %d", resp.StatusCode)
	}
	if got := thief.get(e.AdminURL + "/console/users"); got.Status == http.StatusOK {
		t.Fatal("the thief reads the console")
	}
}
