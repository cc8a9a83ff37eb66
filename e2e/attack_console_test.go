package e2e

import (
	"context"
	"crypto/tls"
	"net/http"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/console"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestAttackConsoleOwnClientLockout: the console's own client is edited,
// on the console's client page or through the admin API, with a setting
// its sign-in cannot meet: PAR required (the console sends no pushed
// request), openid left out of its scopes (no ID token), the code grant
// left out, pairwise subjects (the ID token's sub names no user) or
// another ID token algorithm. Every operator would be locked out of the
// console; the next sign-in puts the console's sign-in back as it needs
// it, as it does its secret and DPoP setting, and the operator's other
// changes (a second factor, the name) stay.
func TestAttackConsoleOwnClientLockout(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	ctx := context.Background()
	b := e.browser()
	csrf := consoleToken(t, e, b)
	own := url.Values{"csrf_token": {csrf}, "name": {"Our console"}, "scopes": {"profile"}, "require_par": {"on"}, "verified": {"on"}}
	if p := b.post(e.AdminURL+"/console/clients/"+console.ClientID, own); p.Status != http.StatusSeeOther {
		t.Fatalf("edit the console's client: %d %s", p.Status, p.Body)
	}
	if p := e.browser().consoleSignIn(userName, userPassword); p.Status != http.StatusOK {
		t.Fatalf("console sign-in after PAR was required and openid dropped on the console's page: %d %s", p.Status, p.Body)
	}
	for name, change := range map[string]map[string]any{
		"pairwise":         {"subject_type": "pairwise"},
		"client grant":     {"grant_types": []string{"client_credentials"}},
		"ES256 ID tokens":  {"id_token_signed_response_alg": "ES256"},
		"PAR and no scope": {"require_pushed_authorization_requests": true, "scopes": []string{}},
	} {
		body := map[string]any{"name": "Our console", "redirect_uris": []string{"http://127.0.0.1/console/callback"},
			"grant_types": []string{"authorization_code"}, "scopes": []string{"openid"}, "token_endpoint_auth_method": "client_secret_post",
			"verified": true, "second_factor": false}
		for k, v := range change {
			body[k] = v
		}
		if status, raw := e.adminCall(http.MethodPut, "/admin/clients/"+console.ClientID, adminToken, body, nil); status != http.StatusOK {
			t.Fatalf("%s: PUT the console's client: %d %s", name, status, raw)
		}
		if p := e.browser().consoleSignIn(userName, userPassword); p.Status != http.StatusOK {
			t.Fatalf("%s: console sign-in after the API changed the console's client: %d %s", name, p.Status, p.Body)
		}
		if c, err := e.Store.GetClient(ctx, console.ClientID); err != nil || c.Name != "Our console" {
			t.Fatalf("%s: the operator's name did not stay: %v %+v", name, err, c)
		}
	}
}

// TestAttackConsoleUpstreamSecretRedirected: an upstream's client secret
// is write-only, on the console and in the admin API: no page or answer
// shows it. A plain OAuth 2.0 or GitHub upstream names its endpoints
// itself: the secret is sent to its token_url at every sign-in, people's
// browsers to its auth_url, their access tokens to its emails_url.
// Pointed elsewhere with the secret field left empty (keep the stored
// one), they would go to a server of the editor's choosing. Such an edit
// is refused unless the secret is typed again; the secret stays.
func TestAttackConsoleUpstreamSecretRedirected(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	csrf := consoleToken(t, e, b)
	const secret = "upstream-secret-never-shown-0123456789"
	for _, up := range []struct {
		id   string
		body map[string]any
		form url.Values
	}{
		{"gh", map[string]any{"id": "gh", "type": "github", "name": map[string]string{"en": "GitHub"}, "client_id": "gh-client", "client_secret": secret},
			url.Values{"name_en": {"GitHub"}, "client_id": {"gh-client"}, "enabled": {"on"}}},
		{"plain", map[string]any{"id": "plain", "type": "oauth2", "name": map[string]string{"en": "Plain"}, "client_id": "p-client", "client_secret": secret,
			"auth_url": "https://plain.example/authorize", "token_url": "https://plain.example/token", "userinfo_url": "https://plain.example/user",
			"claims": map[string]string{"subject": "id"}},
			url.Values{"name_en": {"Plain"}, "client_id": {"p-client"}, "auth_url": {"https://plain.example/authorize"},
				"userinfo_url": {"https://plain.example/user"}, "claim_subject": {"id"}, "enabled": {"on"}}},
	} {
		if status, raw := e.adminCall(http.MethodPost, "/admin/upstreams", adminToken, up.body, nil); status != http.StatusCreated {
			t.Fatalf("%s: add: %d %s", up.id, status, raw)
		}
		for _, moved := range []string{"token_url", "auth_url", "emails_url"} {
			f := url.Values{"csrf_token": {csrf}, moved: {"https://collector.example/" + moved}}
			for k, v := range up.form {
				if k != moved {
					f[k] = v
				}
			}
			p := b.post(e.AdminURL+"/console/upstreams/"+up.id, f)
			if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, moved) {
				t.Errorf("%s: %s moved, secret kept: %d %.400s", up.id, moved, p.Status, p.Body)
			}
			if _, raw := e.adminCall(http.MethodGet, "/admin/upstreams/"+up.id, adminToken, nil, nil); strings.Contains(raw, "collector.example") {
				t.Errorf("%s: the stored upstream after the refused edit: %s", up.id, raw)
			}
		}
		f := url.Values{"csrf_token": {csrf}, "token_url": {"https://collector.example/token"}}
		for k, v := range up.form {
			f[k] = v
		}
		f.Set("client_secret", "a-new-secret-for-the-new-endpoint-0123")
		if p := b.post(e.AdminURL+"/console/upstreams/"+up.id, f); p.Status != http.StatusSeeOther {
			t.Errorf("%s: token_url moved with a new secret: %d %.400s", up.id, p.Status, p.Body)
		}
	}
}

// TestAttackConsoleActionsAudited: every change an operator makes on the
// console reaches the audit log under the operator's name, so that an
// admin's session in the wrong hands leaves a trace: a client made,
// edited (a redirect URI added: where codes go) and deleted, a user made,
// its password set (a way into the account), a grant revoked, a scope's
// texts changed, the signing keys rotated.
func TestAttackConsoleActionsAudited(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	ctx := context.Background()
	b := e.browser()
	csrf := consoleToken(t, e, b)
	other := addConsoleUser(t, e, "other")
	now := e.Clock.Now()
	if err := e.Store.SaveConsent(ctx, storage.Consent{UserID: other, ClientID: "notes", Scopes: []string{"openid"}, GrantedAt: now, UpdatedAt: now}); err != nil {
		t.Fatal(err)
	}
	steps := []struct {
		event, path      string
		form             url.Values
		user, client, in string
	}{
		{audit.ClientCreated, "/console/clients", url.Values{"client_id": {"made"}, "name": {"Made"}, "redirect_uris": {"https://made.example/cb"}}, "", "made", ""},
		{audit.ClientUpdated, "/console/clients/notes", url.Values{"name": {"Notes"}, "redirect_uris": {notesRedirect + "\nhttps://collector.example/cb"},
			"scopes": {"openid"}, "grant_types": {"authorization_code"}, "auth_method": {"client_secret_basic"}}, "", "notes", ""},
		{audit.ClientDeleted, "/console/clients/made/delete", url.Values{}, "", "made", ""},
		{audit.UserCreated, "/console/users", url.Values{"username": {"newcomer"}, "password": {"a long and unusual phrase"}}, "new", "", "newcomer"},
		{audit.PasswordSet, "/console/users/" + other + "/password", url.Values{"password": {"quartz lantern velvet orbit 8812"}}, other, "", ""},
		{audit.GrantRevoked, "/console/users/" + other + "/grants/notes/revoke", url.Values{}, other, "notes", ""},
		{audit.ScopeSaved, "/console/scopes/email", url.Values{"description_en": {"Your address"}, "description_ar": {"عنوانك"}}, "", "", "email"},
		{audit.KeysRotated, "/console/keys/rotate", url.Values{}, "", "", ""},
	}
	for _, s := range steps {
		s.form.Set("csrf_token", csrf)
		if p := b.post(e.AdminURL+s.path, s.form); p.Status >= 400 {
			t.Fatalf("%s: POST %s: %d %s", s.event, s.path, p.Status, p.Body)
		}
		evs := auditOf(t, e, s.event)
		if s.user == "new" && len(evs) == 1 && evs[0].UserID != "" {
			s.user = evs[0].UserID // the user just made
		}
		if len(evs) != 1 || !strings.Contains(evs[0].Detail, "operator="+userName+" (console)") || evs[0].UserID != s.user ||
			evs[0].ClientID != s.client || !strings.Contains(evs[0].Detail, s.in) {
			t.Errorf("%s: audited %+v", s.event, evs)
		}
	}
}

// TestAttackConsoleStolenCodeAtConsolePort: a program on a loopback port
// starts a console sign-in in its own browser, sends the admin's browser
// to the authorization request with its own port as redirect_uri (any
// loopback port matches, RFC 8252 §7.3) and gets the admin's code; it
// brings that code, with its own sign-in's cookie and state, to the
// console's real callback at the console's own port and Host. The
// console redeems it with its own callback, which is not the one the code
// was issued for (RFC 6749 §4.1.3): no console session.
func TestAttackConsoleStolenCodeAtConsolePort(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	admin := e.browser()
	wantStatus(t, admin.consoleSignIn(userName, userPassword).Status, http.StatusOK, "console sign-in", nil)
	thief := e.browser()
	start := thief.get(e.AdminURL + "/console/login")
	au, _ := url.Parse(start.Location)
	q := au.Query()
	q.Set("redirect_uri", "http://127.0.0.1:9/console/callback")
	au.RawQuery = q.Encode()
	p := admin.get(au.String())
	for range 6 {
		if strings.HasPrefix(p.Location, "http://127.0.0.1:9/") {
			break
		}
		switch {
		case strings.HasPrefix(p.Location, "/consent"):
			p = admin.consent(p.Location, true, "openid")
		case p.Location != "":
			p = admin.get(p.Location)
		}
	}
	cb, _ := url.Parse(p.Location)
	if cb.Query().Get("code") == "" {
		t.Fatalf("the admin's browser brought no code to the other port: %d %q", p.Status, p.Location)
	}
	if got := thief.get(e.AdminURL + "/console/callback?" + cb.RawQuery); got.Status != http.StatusBadRequest || thief.consoleSession() {
		t.Fatalf("a code issued for another port, redeemed at the console's own: %d", got.Status)
	}
}

// TestAttackConsoleCookieAtAdminAPI: over TLS the console's session cookie
// is at Path=/ (the __Host- prefix needs it), so the browser sends it to
// the admin API beside the console too. A page that has the operator's
// browser call the API (a form posted to it, a link) carries the cookie
// and no Bearer token: refused, nothing changes.
func TestAttackConsoleCookieAtAdminAPI(t *testing.T) {
	certFile, keyFile, pool := selfSigned(t)
	e := startWith(t, func(c *config.Config) { c.AdminTLSCert, c.AdminTLSKey = certFile, keyFile })
	makeAdmin(t, e, e.UserID, true)
	trusting := &http.Transport{TLSClientConfig: &tls.Config{RootCAs: pool}}
	defer trusting.CloseIdleConnections()
	b := e.browser()
	b.Transport = trusting
	if p, _ := b.consoleFlow(""); p.Status != http.StatusOK || !b.consoleSession() {
		t.Fatalf("console sign-in over TLS: %d %s", p.Status, p.Body)
	}
	au, _ := url.Parse(e.AdminURL + "/admin/clients")
	if !slices.ContainsFunc(b.Jar.Cookies(au), func(c *http.Cookie) bool { return c.Name == console.HostPrefix+console.SessionCookie }) {
		t.Fatal("the browser sends no console cookie to the admin API: nothing to test")
	}
	keys := func() int {
		ks, err := e.Store.ListSigningKeys(context.Background())
		if err != nil {
			t.Fatal(err)
		}
		return len(ks)
	}
	before := keys()
	if p := b.get(e.AdminURL + "/admin/clients"); p.Status != http.StatusUnauthorized {
		t.Fatalf("GET /admin/clients with the console cookie: %d", p.Status)
	}
	if p := b.post(e.AdminURL+"/admin/keys/rotate", url.Values{}); p.Status != http.StatusUnauthorized || keys() != before {
		t.Fatalf("POST /admin/keys/rotate with the console cookie: %d", p.Status)
	}
}

// TestAttackConsoleStoredMarkup: values that others than the operator
// choose reach the console's pages: a client's name (dynamic
// registration), a user's name and email (sign-up), an upstream's labels,
// an initial access token's label, a scope's Arabic text, an audit
// event's detail. Each holding markup is shown escaped on every page that
// lists it, and the pages allow no script at all.
func TestAttackConsoleStoredMarkup(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	consoleToken(t, e, b)
	const mark = `<script>alert(1)</script><img src=x onerror=alert(2)>`
	calls := []struct {
		method, path string
		body         any
	}{
		{"POST", "/admin/clients", map[string]any{"client_id": "marked", "name": mark, "redirect_uris": []string{"https://marked.example/cb"}}},
		{"PUT", "/admin/users/" + e.UserID, map[string]any{"name": mark, "email": "amal@example.com"}},
		{"POST", "/admin/upstreams", map[string]any{"id": "corp", "type": "oidc", "name": map[string]string{"en": mark, "ar": mark},
			"issuer": "https://login.corp.example", "client_id": "bawwab", "client_secret": "corp-secret"}},
		{"POST", "/admin/registration/tokens", map[string]any{"label": mark}},
		{"PUT", "/admin/scopes/email", map[string]any{"description": map[string]string{"en": "Email", "ar": mark}}},
	}
	for _, c := range calls {
		if status, raw := e.adminCall(c.method, c.path, adminToken, c.body, nil); status >= 300 {
			t.Fatalf("%s %s: %d %s", c.method, c.path, status, raw)
		}
	}
	now := e.Clock.Now()
	if err := e.Store.AddAuditEvent(context.Background(), storage.AuditEvent{ID: "marked-event", Time: now, Type: audit.LoginFailed, UserID: e.UserID,
		ClientID: mark, Detail: mark, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, path := range []string{"/console/", "/console/clients", "/console/clients/marked", "/console/clients/marked/delete", "/console/users",
		"/console/users/" + e.UserID, "/console/upstreams", "/console/upstreams/corp", "/console/registration", "/console/scopes",
		"/console/scopes/email?lang=ar", "/console/audit", "/console/audit?lang=ar"} {
		p := b.get(e.AdminURL + path)
		if p.Status != http.StatusOK || strings.Contains(p.Body, "<script>alert") || strings.Contains(p.Body, "<img src=x") {
			t.Errorf("GET %s: %d, markup unescaped or page refused", path, p.Status)
		}
		if path != "/console/" && !strings.Contains(p.Body, "&lt;script&gt;alert(1)") {
			t.Errorf("GET %s does not show the stored value: nothing tested", path)
		}
		if csp := p.Header.Get("Content-Security-Policy"); !strings.Contains(csp, "default-src 'none'") || strings.Contains(csp, "script-src") {
			t.Errorf("GET %s: scripts allowed: %q", path, csp)
		}
	}
}

// TestAttackConsoleSecretsShownOnce: what the console shows once (an
// initial access token, a new client's secret, a password it made) is in
// the answer to the form and nowhere else: not on a later page, not in the
// admin API's lists, not in any audit event, not in the server's log.
func TestAttackConsoleSecretsShownOnce(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	csrf := consoleToken(t, e, b)
	shown := func(p page, re *regexp.Regexp, what string) string {
		t.Helper()
		m := re.FindStringSubmatch(p.Body)
		if p.Status != http.StatusCreated || m == nil {
			t.Fatalf("%s: %d %s", what, p.Status, p.Body)
		}
		return m[1]
	}
	tok := shown(b.post(e.AdminURL+"/console/registration/tokens", url.Values{"csrf_token": {csrf}, "label": {"ci"}, "expires_in": {"3600"}}),
		shownToken, "issue a token")
	if app := e.register("POST", "/register", tok, appMeta); app.Status != http.StatusCreated {
		t.Fatalf("registration with the token: %+v", app)
	}
	secret := shown(b.post(e.AdminURL+"/console/clients", url.Values{"csrf_token": {csrf}, "client_id": {"made"}, "name": {"Made"},
		"redirect_uris": {"https://made.example/cb"}}), regexp.MustCompile(`<code id="secret">([^<]+)<`), "create a client")
	pw := shown(b.post(e.AdminURL+"/console/users", url.Values{"csrf_token": {csrf}, "username": {"newcomer"}}), shownPassword, "create a user")

	evs, err := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{})
	if err != nil {
		t.Fatal(err)
	}
	var seen strings.Builder
	for _, ev := range evs {
		seen.WriteString(ev.Detail + " " + ev.ClientID + "\n")
	}
	for _, path := range []string{"/console/registration", "/console/clients", "/console/clients/made", "/console/users", "/console/audit"} {
		seen.WriteString(b.get(e.AdminURL + path).Body)
	}
	for _, path := range []string{"/admin/registration/tokens", "/admin/clients", "/admin/users", "/admin/audit"} {
		_, raw := e.adminCall("GET", path, adminToken, nil, nil)
		seen.WriteString(raw)
	}
	seen.WriteString(e.Logs.String())
	for what, s := range map[string]string{"initial access token": tok, "client secret": secret, "password": pw} {
		if strings.Contains(seen.String(), s) {
			t.Errorf("the %s shown once is found again", what)
		}
	}
}

// TestAttackConsoleSecondFactorAskedAway: someone with an admin's
// password but not the authenticator app starts a console sign-in in
// their own browser and rewrites its authorization request to ask for
// less: the password's acr (acr_values, an essential acr claim), a fresh
// sign-in (prompt=login, max_age=0). The second factor is still asked;
// and the sign-in, if the server let it through, would still be refused
// at the console's callback, which reads the ID token's amr and acr.
func TestAttackConsoleSecondFactorAskedAway(t *testing.T) {
	e := offStart(t)
	makeAdmin(t, e, e.UserID, true)
	e.signIn(userPassword).enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	for name, extra := range map[string]url.Values{
		"acr_values":    {"acr_values": {"urn:bawwab:acr:password"}},
		"essential acr": {"claims": {`{"id_token":{"acr":{"essential":true,"values":["urn:bawwab:acr:password"]}}}`}},
		"prompt login":  {"prompt": {"login"}, "max_age": {"0"}},
	} {
		b := e.browser()
		start := b.get(e.AdminURL + "/console/login")
		u, err := url.Parse(start.Location)
		if err != nil || start.Status != http.StatusSeeOther {
			t.Fatalf("console login: %d %q", start.Status, start.Location)
		}
		q := u.Query()
		for k, v := range extra {
			q[k] = v
		}
		u.RawQuery = q.Encode()
		p, asked := b.consoleFlowFrom(b.get(u.String()), "")
		if !asked || b.consoleSession() {
			t.Errorf("%s: the second factor was not asked (%d), or a console session followed", name, p.Status)
		}
	}
}
