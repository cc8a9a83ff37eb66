package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

const rpRedirect = "https://rp.example/cb"

// addNonceClient registers "rp", a confidential client that the operator
// lets send nonce instead of PKCE, and returns its secret.
func addNonceClient(t *testing.T, e *env) string {
	t.Helper()
	secret, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "rp", Name: "Relying Party",
		RedirectURIs: []string{rpRedirect}, Scopes: e.Server.Scopes.Names(), PKCEPolicy: storage.PKCENonceInstead}, scope.Default())
	if err != nil {
		t.Fatal(err)
	}
	return secret
}

// follow runs the browser from an authorization request to the client's
// redirect URI, logging in and consenting to every scope asked for, and
// returns the callback's query.
func follow(t *testing.T, b *browser, authorizeURL, redirectURI string) url.Values {
	t.Helper()
	u, _ := url.Parse(authorizeURL)
	scopes := strings.Fields(u.Query().Get("scope"))
	var claims map[string]map[string]any // and each claim asked for alone (Core §5.5)
	_ = json.Unmarshal([]byte(u.Query().Get("claims")), &claims)
	for _, target := range claims {
		for name := range target {
			scopes = append(scopes, "claim:"+name)
		}
	}
	p := b.get(authorizeURL)
	for range 4 {
		switch {
		case strings.HasPrefix(p.Location, redirectURI):
			cb, _ := url.Parse(p.Location)
			return cb.Query()
		case strings.HasPrefix(p.Location, "/login"):
			p = b.login(p.Location, userName, userPassword)
		case strings.HasPrefix(p.Location, "/consent"):
			p = b.consent(p.Location, true, scopes...)
		default:
			t.Fatalf("authorize: %d %s %s", p.Status, p.Location, p.Body)
		}
	}
	t.Fatal("authorize: too many redirects")
	return nil
}

// TestPKCEPolicy: PKCE stays required by default; a confidential client
// the operator allows may send nonce with openid instead; a code is held
// to what its request chose, in both directions (RFC 9700 §2.1.1, §4.8.2).
func TestPKCEPolicy(t *testing.T) {
	e := start(t)
	secret := addNonceClient(t, e)
	b := e.browser()
	base := func(clientID, redirectURI string) url.Values {
		return url.Values{"response_type": {"code"}, "client_id": {clientID}, "redirect_uri": {redirectURI}, "scope": {"openid email"},
			"state": {"s-" + token.NewID()}, "nonce": {"n-" + token.NewID()}}
	}
	redeem := func(code, verifier string) tokenResult {
		f := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {rpRedirect}}
		if verifier != "" {
			f.Set("code_verifier", verifier)
		}
		return e.token(f, "rp", secret)
	}
	verifier := strings.Repeat("k", 43)

	t.Run("nonce instead of PKCE", func(t *testing.T) {
		q := base("rp", rpRedirect)
		cb := follow(t, b, "/authorize?"+q.Encode(), rpRedirect)
		tok := redeem(cb.Get("code"), "")
		wantStatus(t, tok.Status, 200, "redeem without PKCE", tok.Description)
		if c := claimsOf(t, tok.IDToken); c["nonce"] != q.Get("nonce") {
			t.Fatalf("ID token nonce %v, want %s", c["nonce"], q.Get("nonce"))
		}
	})
	t.Run("a verifier for a code issued without a challenge is refused", func(t *testing.T) {
		cb := follow(t, b, "/authorize?"+base("rp", rpRedirect).Encode(), rpRedirect)
		tok := redeem(cb.Get("code"), verifier)
		wantTokenError(t, tok, 400, "invalid_grant")
	})
	t.Run("a code issued for a challenge needs its verifier", func(t *testing.T) {
		q := base("rp", rpRedirect)
		q.Set("code_challenge", token.S256(verifier))
		q.Set("code_challenge_method", "S256")
		cb := follow(t, b, "/authorize?"+q.Encode(), rpRedirect)
		wantTokenError(t, redeem(cb.Get("code"), ""), 400, "invalid_grant")
		// The failed redemption burnt the code.
		wantTokenError(t, redeem(cb.Get("code"), verifier), 400, "invalid_grant")

		cb = follow(t, b, "/authorize?"+q.Encode(), rpRedirect)
		wantTokenError(t, redeem(cb.Get("code"), strings.Repeat("x", 43)), 400, "invalid_grant")
		cb = follow(t, b, "/authorize?"+q.Encode(), rpRedirect)
		tok := redeem(cb.Get("code"), verifier)
		wantStatus(t, tok.Status, 200, "redeem with PKCE", tok.Description)
	})
	for _, tc := range []struct {
		name   string
		client string
		mod    func(url.Values)
		want   string
	}{
		{"nonce client: neither nonce nor PKCE", "rp", func(q url.Values) { q.Del("nonce") }, "invalid_request"},
		{"nonce client: nonce without openid", "rp", func(q url.Values) { q.Set("scope", "email") }, "invalid_request"},
		{"nonce client: plain PKCE still refused", "rp", func(q url.Values) {
			q.Set("code_challenge", verifier)
			q.Set("code_challenge_method", "plain")
		}, "invalid_request"},
		{"default client: nonce is not enough", "notes", func(url.Values) {}, "invalid_request"},
		{"nonce client, prompt=none without a session", "rp", func(q url.Values) { q.Set("prompt", "none") }, "login_required"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			redirect := map[string]string{"rp": rpRedirect, "notes": notesRedirect}[tc.client]
			q := base(tc.client, redirect)
			tc.mod(q)
			p := e.browser().get("/authorize?" + q.Encode())
			u, _ := url.Parse(p.Location)
			if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, redirect) || u.Query().Get("error") != tc.want {
				t.Fatalf("got %d %s, want error %s", p.Status, p.Location, tc.want)
			}
		})
	}

	t.Run("only the operator grants the policy", func(t *testing.T) {
		_, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{rpRedirect},
			PKCEPolicy: storage.PKCENonceInstead}, scope.Default())
		if err == nil || !strings.Contains(err.Error(), "public client") {
			t.Fatalf("public client with the nonce policy: %v", err)
		}
		// Registration's default policy refuses it to self-registered clients.
		r := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{rpRedirect}, "pkce_policy": "nonce_instead"})
		if r.Status != 400 || r.Error != "invalid_client_metadata" {
			t.Fatalf("registration asking for the nonce policy: %+v", r)
		}
		r = e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{rpRedirect}})
		if r.Status != 201 || r.PKCEPolicy != "required" {
			t.Fatalf("registration: %+v", r)
		}
	})
}

// TestUserinfoTokenMethods: the access token in the Authorization header
// (GET or POST) or in a form body (RFC 6750 §2.2), never both, never the
// query string.
func TestUserinfoTokenMethods(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email")
	tok := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	for _, tc := range []struct {
		name, method, query, body, auth string
		status                          int
		wantErr                         string
	}{
		{"GET header", "GET", "", "", "Bearer " + tok.AccessToken, 200, ""},
		{"POST header", "POST", "", "", "Bearer " + tok.AccessToken, 200, ""},
		{"POST form body", "POST", "", url.Values{"access_token": {tok.AccessToken}}.Encode(), "", 200, ""},
		{"header and body", "POST", "", url.Values{"access_token": {tok.AccessToken}}.Encode(), "Bearer " + tok.AccessToken, 400, "invalid_request"},
		{"body twice", "POST", "", "access_token=" + tok.AccessToken + "&access_token=" + tok.AccessToken, "", 400, "invalid_request"},
		{"query string", "GET", "access_token=" + tok.AccessToken, "", "", 401, "invalid_token"},
		{"body of a GET", "GET", "", url.Values{"access_token": {tok.AccessToken}}.Encode(), "", 401, "invalid_token"},
		{"forged token in body", "POST", "", "access_token=forged.token.here", "", 401, "invalid_token"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			u := e.URL + "/userinfo"
			if tc.query != "" {
				u += "?" + tc.query
			}
			req, _ := http.NewRequest(tc.method, u, strings.NewReader(tc.body))
			if tc.body != "" {
				req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			}
			if tc.auth != "" {
				req.Header.Set("Authorization", tc.auth)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			defer resp.Body.Close()
			var out map[string]any
			_ = json.NewDecoder(resp.Body).Decode(&out)
			if resp.StatusCode != tc.status || (tc.wantErr == "" && out["email"] != "amal@example.com") || (tc.wantErr != "" && out["error"] != tc.wantErr) {
				t.Fatalf("got %d %v, want %d %s", resp.StatusCode, out, tc.status, tc.wantErr)
			}
		})
	}
}
