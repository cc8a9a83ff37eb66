package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// TestAttack2OutageSweep cuts the database and sends every endpoint and
// page not already covered by TestFaultEndpoints a request an outsider
// or a signed-in user can make: none may answer 500, and none may show
// the driver's text.
func TestAttack2OutageSweep(t *testing.T) {
	dsn, schema := testenv.PostgresSchema(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("BAWWAB_TEST_POSTGRES_DSN must be a postgres:// URL for this test: %v", err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.Addr()
	store, err := postgres.Open(context.Background(), u.String(), postgres.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := startOn(t, store)
	b := e.browser()
	r := e.notesRequest("openid offline_access")
	code := b.authorize(r, "offline_access").Get("code")
	r2 := e.notesRequest("openid offline_access")
	tok := e.redeem(b.authorize(r2, "offline_access").Get("code"), r2)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	_, dev := e.deviceAuthorize("tv", "openid")
	csrf := csrfOf(t, b.get("/account"))
	pendingLogin := e.browser().get(e.notesRequest("openid").url()).Location
	loginPage := e.browser()
	lp := loginPage.get(pendingLogin)
	loginCSRF := csrfOf(t, lp)
	lu, _ := url.Parse(pendingLogin)
	ec, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	unseenKeyHint := signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: ec},
		(&jose.SignerOptions{}).WithType("JWT").WithHeader(jose.HeaderKey("kid"), "rotated-on-another-node"),
		map[string]any{"iss": e.URL, "sub": "someone", "aud": "notes", "iat": 1, "exp": 2})
	unseenKeyAccess := signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: ec},
		(&jose.SignerOptions{}).WithType("at+jwt").WithHeader(jose.HeaderKey("kid"), "rotated-on-another-node-2"),
		map[string]any{"iss": e.URL, "sub": "someone", "aud": e.URL, "client_id": "notes", "scope": "openid", "jti": "x", "iat": 1, "exp": 4102444800})
	proxy.Cut()

	form := "application/x-www-form-urlencoded"
	calls := []struct {
		name, method, path, body string
		user, pass               string
		c                        *http.Client
	}{
		{"code redemption", "POST", "/token", url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI}, "code_verifier": {r.Verifier}}.Encode(), "notes", e.NotesSecret, nil},
		{"device poll", "POST", "/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:device_code"}, "device_code": {dev.DeviceCode}, "client_id": {"tv"}}.Encode(), "", "", nil},
		{"token exchange", "POST", "/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {tok.AccessToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:access_token"}}.Encode(), "notes", e.NotesSecret, nil},
		{"token exchange id_token", "POST", "/token", url.Values{"grant_type": {"urn:ietf:params:oauth:grant-type:token-exchange"}, "subject_token": {tok.IDToken}, "subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}.Encode(), "notes", e.NotesSecret, nil},
		{"introspect access", "POST", "/introspect", url.Values{"token": {tok.AccessToken}}.Encode(), "notes", e.NotesSecret, nil},
		{"revoke access", "POST", "/revoke", url.Values{"token": {tok.AccessToken}}.Encode(), "notes", e.NotesSecret, nil},
		{"login post", "POST", "/login", url.Values{"csrf_token": {loginCSRF}, "req": {lu.Query().Get("req")}, "username": {userName}, "password": {userPassword}}.Encode(), "", "", loginPage.Client},
		{"end_session get", "GET", "/end_session?id_token_hint=" + url.QueryEscape(tok.IDToken), "", "", "", b.Client},
		{"end_session post", "POST", "/end_session", url.Values{"id_token_hint": {tok.IDToken}, "csrf_token": {csrf}}.Encode(), "", "", b.Client},
		{"logout all", "POST", "/account/logout-all", url.Values{"csrf_token": {csrf}}.Encode(), "", "", b.Client},
		{"revoke app", "POST", "/account/revoke", url.Values{"csrf_token": {csrf}, "client_id": {"notes"}}.Encode(), "", "", b.Client},
		{"profile page", "GET", "/account/profile", "", "", "", b.Client},
		{"profile save", "POST", "/account/profile", url.Values{"csrf_token": {csrf}, "name": {"X"}}.Encode(), "", "", b.Client},
		{"device page", "GET", "/device?user_code=" + url.QueryEscape(dev.UserCode), "", "", "", b.Client},
		{"consent post", "POST", "/consent", url.Values{"csrf_token": {csrf}, "req": {"abc"}, "action": {"allow"}}.Encode(), "", "", b.Client},
		{"authorize post", "POST", "/authorize", r.query().Encode(), "", "", b.Client},
		{"jwks", "GET", "/jwks.json", "", "", "", nil},
		{"discovery", "GET", "/.well-known/openid-configuration", "", "", "", nil},
		{"home", "GET", "/", "", "", "", b.Client},
		{"registration read", "GET", "/register/notes", "", "Bearer", "some-registration-access-token", nil},
		{"registration delete", "DELETE", "/register/notes", "", "Bearer", "some-registration-access-token", nil},
		{"authorize request_uri", "GET", "/authorize?client_id=notes&request_uri=" + url.QueryEscape("urn:ietf:params:oauth:request_uri:abc"), "", "", "", b.Client},
		{"par", "POST", "/par", r.query().Encode(), "notes", e.NotesSecret, nil},
		// A client the node has not cached: its lookup fails, which is
		// an outage, not an unknown client (OpenID RP-Initiated Logout
		// §2 would have the RP drop a registration that is fine).
		{"end_session unseen client", "GET", "/end_session?client_id=robot", "", "", "", b.Client},
		// A hint signed by a key the node has not loaded: the lookup of
		// the key fails, which is an outage, not a foreign token.
		{"userinfo token of an unseen key", "GET", "/userinfo", "", "Bearer", unseenKeyAccess, nil},
		{"introspect token of an unseen key", "POST", "/introspect", url.Values{"token": {unseenKeyAccess}}.Encode(), "notes", e.NotesSecret, nil},
		{"end_session hint of an unseen key", "GET", "/end_session?id_token_hint=" + url.QueryEscape(unseenKeyHint), "", "", "", b.Client},
	}
	for _, c := range calls {
		if strings.Contains(c.name, "unseen key") {
			// Past the one-a-second limit on reloads for unknown kids,
			// so that this token's kid is looked up in the store.
			e.Clock.Advance(2 * time.Second)
		}
		req, _ := http.NewRequest(c.method, e.URL+c.path, strings.NewReader(c.body))
		if c.method == "POST" {
			req.Header.Set("Content-Type", form)
		}
		switch c.user {
		case "":
		case "Bearer":
			req.Header.Set("Authorization", "Bearer "+c.pass)
		default:
			req.SetBasicAuth(c.user, c.pass)
		}
		cl := c.c
		if cl == nil {
			cl = http.DefaultClient
		}
		resp, err := cl.Do(req)
		if err != nil {
			t.Fatalf("%s: %v", c.name, err)
		}
		raw, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		body := string(raw)
		t.Logf("%s: %d %s", c.name, resp.StatusCode, clipBody(body))
		if strings.Contains(c.name, "unseen") && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s during the cut: %d, want the 503 retry page: %s", c.name, resp.StatusCode, clipBody(body))
		}
		if resp.StatusCode >= 500 && resp.StatusCode != http.StatusServiceUnavailable {
			t.Errorf("%s during the cut: %d %s", c.name, resp.StatusCode, clipBody(body))
		}
		for _, leak := range []string{"dial tcp", "connection refused", "connection reset", "pgx", "postgres:", "EOF", "unexpected"} {
			if strings.Contains(body, leak) {
				t.Errorf("%s during the cut shows driver text %q: %s", c.name, leak, clipBody(body))
			}
		}
	}
}
