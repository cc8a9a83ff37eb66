package e2e

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
)

// TestCodeFlow plays the whole story over HTTP: authorize, login, consent
// with one scope unchecked, code exchange, ID token, userinfo, refresh with
// rotation, introspection, revocation.
func TestCodeFlow(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid profile photo email offline_access")
	q := b.authorize(r, "openid", "profile", "email", "offline_access") // photo unchecked
	if q.Get("state") != r.State {
		t.Fatalf("state %q, want %q", q.Get("state"), r.State)
	}
	if q.Get("iss") != e.URL {
		t.Fatalf("iss %q, want %q (RFC 9207)", q.Get("iss"), e.URL)
	}
	tok := e.redeem(q.Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	if tok.TokenType != "Bearer" || tok.AccessToken == "" || tok.RefreshToken == "" || tok.IDToken == "" || tok.ExpiresIn <= 0 {
		t.Fatalf("token response incomplete: %+v", tok.Response)
	}
	if tok.Scope != "openid profile email offline_access" {
		t.Fatalf("granted scope %q: the unchecked photo scope must be missing", tok.Scope)
	}
	if cc := tok.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("token response Cache-Control %q, want no-store (RFC 6749 §5.1)", cc)
	}

	// The ID token verifies against discovery + JWKS, with nonce and at_hash.
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	idt, err := provider.Verifier(&oidc.Config{ClientID: "notes"}).Verify(ctx, tok.IDToken)
	if err != nil {
		t.Fatalf("id_token: %v", err)
	}
	if idt.Nonce != r.Nonce {
		t.Fatalf("nonce %q, want %q", idt.Nonce, r.Nonce)
	}
	if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
		t.Fatalf("at_hash: %v", err)
	}
	var idClaims map[string]any
	_ = idt.Claims(&idClaims)
	if idClaims["email"] != "amal@example.com" || idClaims["name"] != "Amal Haddad" || idClaims["auth_time"] == nil {
		t.Fatalf("id_token claims: %v", idClaims)
	}
	if _, ok := idClaims["picture"]; ok {
		t.Fatal("id_token carries picture though photo was not granted")
	}

	// userinfo releases only granted claims.
	status, info, _ := e.userinfo(tok.AccessToken)
	wantStatus(t, status, 200, "userinfo", info)
	if info["sub"] != e.UserID || info["email"] != "amal@example.com" || info["name"] != "Amal Haddad" {
		t.Fatalf("userinfo: %v", info)
	}
	if _, ok := info["picture"]; ok {
		t.Fatalf("userinfo leaks picture: %v", info)
	}

	// Introspection by the client and by the resource server named in aud.
	in := e.introspect(tok.AccessToken, "notes", e.NotesSecret)
	if in["active"] != true || in["client_id"] != "notes" || in["sub"] != e.UserID || in["scope"] != tok.Scope {
		t.Fatalf("introspect: %v", in)
	}
	if in := e.introspect(tok.AccessToken, "api", "api-secret-for-tests-0123456789"); in["active"] != true {
		t.Fatalf("resource server introspection: %v", in)
	}
	// A client that is neither the holder nor an audience learns nothing.
	if in := e.introspect(tok.AccessToken, "robot", e.RobotSecret); in["active"] != false || len(in) != 1 {
		t.Fatalf("foreign client introspection must say only inactive: %v", in)
	}

	// Refresh rotates: a new refresh token, the old one dies.
	ref := e.refresh(tok.RefreshToken)
	wantStatus(t, ref.Status, 200, "refresh", ref.Description)
	if ref.RefreshToken == "" || ref.RefreshToken == tok.RefreshToken || ref.AccessToken == tok.AccessToken {
		t.Fatal("refresh did not rotate")
	}
	if in := e.introspect(tok.RefreshToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("rotated refresh token still active: %v", in)
	}
	if in := e.introspect(ref.RefreshToken, "notes", e.NotesSecret); in["active"] != true || in["token_type"] != "refresh_token" {
		t.Fatalf("new refresh token: %v", in)
	}
	// Narrowing the scope on refresh works; widening does not.
	narrow := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {ref.RefreshToken}, "scope": {"email"}}, "notes", e.NotesSecret)
	wantStatus(t, narrow.Status, 200, "narrow refresh", narrow.Description)
	if narrow.Scope != "email" {
		t.Fatalf("narrowed scope %q", narrow.Scope)
	}
	wide := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {narrow.RefreshToken}, "scope": {"email photo"}}, "notes", e.NotesSecret)
	wantTokenError(t, wide, 400, "invalid_scope")

	// Revoking the refresh token revokes the grant: its access tokens die.
	status, _, body := e.post("/revoke", url.Values{"token": {narrow.RefreshToken}, "token_type_hint": {"refresh_token"}}, "notes", e.NotesSecret)
	wantStatus(t, status, 200, "revoke", string(body))
	if in := e.introspect(narrow.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("access token alive after its grant was revoked: %v", in)
	}
	wantTokenError(t, e.refresh(narrow.RefreshToken), 400, "invalid_grant")
	status, _, hdr := e.userinfo(narrow.AccessToken)
	wantStatus(t, status, 401, "userinfo after revoke", nil)
	if !strings.Contains(hdr.Get("WWW-Authenticate"), `error="invalid_token"`) {
		t.Fatalf("WWW-Authenticate %q", hdr.Get("WWW-Authenticate"))
	}
}

// TestRevokeAccessToken: revoking one access token puts it on the deny list.
func TestRevokeAccessToken(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email")
	tok := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	status, _, _ := e.post("/revoke", url.Values{"token": {tok.AccessToken}}, "cli", "")
	if status != http.StatusUnauthorized && status != 400 {
		t.Fatalf("revocation by a public client not owning the token: %d", status)
	}
	if status, _, body := e.post("/revoke", url.Values{"token": {tok.AccessToken}}, "notes", e.NotesSecret); status != 200 {
		t.Fatalf("revoke: %d %s", status, body)
	}
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("revoked access token active: %v", in)
	}
	// Unknown tokens are answered with 200 (RFC 7009 §2.2).
	if status, _, _ := e.post("/revoke", url.Values{"token": {"nonsense"}}, "notes", e.NotesSecret); status != 200 {
		t.Fatalf("revoke unknown: %d", status)
	}
}

// TestRememberedConsent: the second request skips the consent screen unless
// new scopes are asked; prompt=none works silently.
func TestRememberedConsent(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid email")
	b.authorize(r, "email")

	r2 := e.notesRequest("openid email")
	r2.Extra = url.Values{"prompt": {"none"}}
	p := b.get(r2.url())
	if !strings.HasPrefix(p.Location, notesRedirect) || !strings.Contains(p.Location, "code=") {
		t.Fatalf("remembered consent with prompt=none should return a code, got %d %s", p.Status, p.Location)
	}
	r3 := e.notesRequest("openid email photo")
	r3.Extra = url.Values{"prompt": {"none"}}
	p = b.get(r3.url())
	u, _ := url.Parse(p.Location)
	if u.Query().Get("error") != "consent_required" || u.Query().Get("state") != r3.State {
		t.Fatalf("new scope with prompt=none: %s", p.Location)
	}
	r4 := e.notesRequest("openid email photo")
	p = b.get(r4.url())
	if !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("new scope must show the consent screen, got %s", p.Location)
	}
	// prompt=login forces a new login even with a session.
	r5 := e.notesRequest("openid email")
	r5.Extra = url.Values{"prompt": {"login"}}
	e.Clock.Advance(2e9)
	if p := b.get(r5.url()); !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("prompt=login: %s", p.Location)
	}
	// A fresh browser with prompt=none gets login_required.
	r6 := e.notesRequest("openid")
	r6.Extra = url.Values{"prompt": {"none"}}
	p = e.browser().get(r6.url())
	if u, _ := url.Parse(p.Location); u.Query().Get("error") != "login_required" {
		t.Fatalf("prompt=none without session: %s", p.Location)
	}
}

// TestConsentDenied: deny on the consent screen → access_denied at the client.
func TestConsentDenied(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid email")
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	p = b.consent(p.Location, false)
	u, _ := url.Parse(p.Location)
	q := u.Query()
	if !strings.HasPrefix(p.Location, notesRedirect) || q.Get("error") != "access_denied" || q.Get("state") != r.State || q.Get("iss") != e.URL {
		t.Fatalf("deny: %s", p.Location)
	}
}

// TestSensitiveScope: a sensitive scope is flagged and unchecked by default.
func TestSensitiveScope(t *testing.T) {
	e := startNoScopeFactor(t)
	b := e.browser()
	r := e.notesRequest("openid email payment")
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	page := b.get(p.Location)
	if !strings.Contains(page.Body, `id="scope-payment">`) || strings.Contains(page.Body, `id="scope-payment" checked`) {
		t.Fatalf("payment must be shown unchecked: %s", page.Body)
	}
	if !strings.Contains(page.Body, "Sensitive") || !strings.Contains(page.Body, `id="scope-email" checked`) {
		t.Fatal("sensitive badge or default-checked email missing")
	}
	ar := b.get(p.Location + "&lang=ar")
	if !strings.Contains(ar.Body, `dir="rtl"`) || !strings.Contains(ar.Body, "حسّاس") {
		t.Fatal("Arabic consent page is not right-to-left or untranslated")
	}
	langCookies := 0
	for _, c := range ar.Header.Values("Set-Cookie") {
		if strings.HasPrefix(c, "bawwab_lang=ar") {
			langCookies++
		}
	}
	if langCookies != 1 {
		t.Fatalf("?lang=ar set the language cookie %d times, want once", langCookies)
	}
}

// TestConnectedApps: revoking an app on the account page kills its tokens.
func TestConnectedApps(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid email offline_access")
	tok := e.redeem(b.authorize(r, "email", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	acct := b.get("/account")
	if acct.Status != 200 || !strings.Contains(acct.Body, "Notes") || !strings.Contains(acct.Body, "Your email address") {
		t.Fatalf("account page: %d %s", acct.Status, acct.Body)
	}
	p := b.post("/account/revoke", url.Values{"csrf_token": {csrfOf(t, acct)}, "client_id": {"notes"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("revoke app: %d %s", p.Status, p.Body)
	}
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("access token active after the user revoked the app: %v", in)
	}
	wantTokenError(t, e.refresh(tok.RefreshToken), 400, "invalid_grant")
	if acct := b.get("/account"); strings.Contains(acct.Body, `id="app-notes"`) {
		t.Fatal("revoked app still listed")
	}
	// Without the CSRF token the revoke form is refused.
	if p := b.post("/account/revoke", url.Values{"client_id": {"notes"}}); p.Status != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", p.Status)
	}
}

// TestPublicClientLoopback: a native app (public client) with a loopback
// redirect on any port (RFC 8252 §7.3) and no secret.
func TestPublicClientLoopback(t *testing.T) {
	e := start(t)
	r := authRequest{ClientID: "cli", RedirectURI: "http://127.0.0.1:53111/callback", Scope: "openid profile", State: "s1", Verifier: strings.Repeat("v", 50)}
	q := e.browser().authorize(r, "profile")
	tok := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {r.RedirectURI},
		"code_verifier": {r.Verifier}, "client_id": {"cli"}}, "", "")
	wantStatus(t, tok.Status, 200, "public redeem", tok.Description)
}

// TestClientCredentials: a machine client gets a token for itself.
func TestClientCredentials(t *testing.T) {
	e := start(t)
	tok := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
	wantStatus(t, tok.Status, 200, "client_credentials", tok.Description)
	if tok.RefreshToken != "" || tok.IDToken != "" {
		t.Fatal("client_credentials must not return refresh or ID tokens")
	}
	in := e.introspect(tok.AccessToken, "robot", e.RobotSecret)
	if in["active"] != true || in["sub"] != "robot" || !slices.Contains(anyStrings(in["aud"]), "api") {
		t.Fatalf("introspect: %v", in)
	}
	// client_secret_post works too.
	tok = e.token(url.Values{"grant_type": {"client_credentials"}, "client_id": {"robot"}, "client_secret": {e.RobotSecret}}, "", "")
	wantStatus(t, tok.Status, 200, "client_secret_post", tok.Description)
	if status, _, _ := e.userinfo(tok.AccessToken); status != 403 {
		t.Fatalf("userinfo with a client token: %d, want 403", status)
	}
}

func anyStrings(v any) []string {
	l, _ := v.([]any)
	var out []string
	for _, s := range l {
		out = append(out, s.(string))
	}
	return out
}
