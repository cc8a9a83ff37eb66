package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

func claimsOf(t *testing.T, jwt string) map[string]any {
	t.Helper()
	raw, err := base64.RawURLEncoding.DecodeString(strings.Split(jwt, ".")[1])
	if err != nil {
		t.Fatal(err)
	}
	var m map[string]any
	_ = json.Unmarshal(raw, &m)
	return m
}

// TestTokenExchange plays RFC 8693 with RFC 8707 audiences: an API that
// received a user's token (it is in the token's aud) trades it for a
// narrower token for a downstream API, by impersonation and by delegation.
func TestTokenExchange(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	// User tokens are meant for "api", "gateway" and "files" (the test
	// configuration): gateway may exchange them, other-gw may not.
	for _, id := range []string{"gateway", "other-gw"} {
		if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: id, GrantTypes: []string{token.TokenExchangeGrantType},
			Secret: id + "-secret-for-tests-0123456789"}, scope.Default()); err != nil {
			t.Fatal(err)
		}
	}

	r := e.notesRequest("openid email files.read offline_access")
	user := e.redeem(e.browser().authorize(r, "email", "files.read", "offline_access").Get("code"), r)
	wantStatus(t, user.Status, 200, "user token", user.Description)

	exchange := func(extra url.Values) tokenResult {
		t.Helper()
		f := url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {user.AccessToken},
			"subject_token_type": {token.AccessTokenType}}
		for k, v := range extra {
			f[k] = v
		}
		return e.token(f, "gateway", "gateway-secret-for-tests-0123456789")
	}

	// Impersonation, narrowed to one scope and one audience.
	x := exchange(url.Values{"scope": {"files.read"}, "audience": {"files"}})
	wantStatus(t, x.Status, 200, "exchange", x.Description)
	c := claimsOf(t, x.AccessToken)
	if c["sub"] != e.UserID || c["aud"] != "files" || c["scope"] != "files.read" || c["client_id"] != "gateway" || c["gid"] == nil || x.RefreshToken != "" ||
		x.IssuedTokenType != token.AccessTokenType || c["exp"].(float64) > claimsOf(t, user.AccessToken)["exp"].(float64) {
		t.Fatalf("exchanged token: %+v / %v", x.Response, c)
	}
	if c["act"] != nil {
		t.Fatalf("impersonation carries act: %v", c["act"])
	}
	// An exchanged token says nothing of how the user signed in beyond
	// the subject token's auth_time: no amr or acr that could claim more
	// (or less) than the sign-in behind it, and no ID token, even with
	// openid (those keep the sign-in's amr: TestSignInSecondFactor,
	// TestDeviceFlowSecondFactor).
	if c["amr"] != nil || c["acr"] != nil || c["auth_time"] == nil || c["auth_time"] != claimsOf(t, user.AccessToken)["auth_time"] {
		t.Fatalf("exchanged token's authentication claims: %v", c)
	}
	if o := exchange(url.Values{"scope": {"openid files.read"}}); o.Status != 200 || o.IDToken != "" {
		t.Fatalf("exchange with openid: %d %+v", o.Status, o.Response)
	}

	// Delegation: the actor appears in act.
	actor := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
	d := exchange(url.Values{"actor_token": {actor.AccessToken}, "actor_token_type": {token.AccessTokenType}, "resource": {"files"}})
	wantStatus(t, d.Status, 200, "delegation", d.Description)
	act, _ := claimsOf(t, d.AccessToken)["act"].(map[string]any)
	if act["sub"] != "robot" || act["client_id"] != "robot" {
		t.Fatalf("act claim: %v", act)
	}

	// Refused: wider scopes, unknown audiences, tokens not meant for the
	// client, unsupported types, dead subjects.
	wantTokenError(t, exchange(url.Values{"scope": {"files.read payment"}}), 400, "invalid_scope")
	wantTokenError(t, exchange(url.Values{"audience": {"https://evil.example"}}), 400, "invalid_target")
	wantTokenError(t, exchange(url.Values{"requested_token_type": {"urn:ietf:params:oauth:token-type:refresh_token"}}), 400, "invalid_request")
	wantTokenError(t, exchange(url.Values{"subject_token_type": {"urn:ietf:params:oauth:token-type:id_token"}}), 400, "invalid_request")
	wantTokenError(t, exchange(url.Values{"actor_token": {actor.AccessToken}}), 400, "invalid_request")
	wantTokenError(t, e.token(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {user.AccessToken},
		"subject_token_type": {token.AccessTokenType}}, "other-gw", "other-gw-secret-for-tests-0123456789"), 400, "invalid_grant")
	wantTokenError(t, e.token(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {user.AccessToken},
		"subject_token_type": {token.AccessTokenType}}, "notes", e.NotesSecret), 400, "unauthorized_client")

	// Revoking the user's consent ends the exchanged tokens too.
	acct := e.browser()
	acct.authorize(e.notesRequest("openid email"))
	page := acct.get("/account")
	acct.post("/account/revoke", url.Values{"csrf_token": {csrfOf(t, page)}, "client_id": {"notes"}})
	if in := e.introspect(x.AccessToken, "gateway", "gateway-secret-for-tests-0123456789"); in["active"] != false {
		t.Fatalf("exchanged token alive after the user revoked the app: %v", in)
	}
	wantTokenError(t, exchange(nil), 400, "invalid_grant")

	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(meta, token.TokenExchangeGrantType) {
		t.Fatal("discovery lacks token exchange")
	}
}

// TestTokenExchangeSenderConstraint (RFC 9449, RFC 8693 §5): a
// DPoP-bound subject token is exchanged only with a proof of its key, and
// the new token stays bound to it; a bound actor token needs its key's
// proof too; public clients are never given the token exchange grant.
func TestTokenExchangeSenderConstraint(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	const gwSecret = "gateway-secret-for-tests-0123456789"
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "gateway", GrantTypes: []string{token.TokenExchangeGrantType},
		Secret: gwSecret}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	tokenURL := e.URL + "/token"
	key, thief := newHolder(t), newHolder(t)

	// A public client's DPoP-bound token (its aud names the gateway).
	r := authRequest{ClientID: "cli", RedirectURI: cliRedirect, Scope: "openid email", State: "s", Verifier: strings.Repeat("x", 43)}
	code := e.browser().authorize(r, "email").Get("code")
	bound := e.dpopToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirect},
		"code_verifier": {r.Verifier}, "client_id": {"cli"}}, key.proof(t, "POST", tokenURL, ""), "", "")
	wantStatus(t, bound.Status, 200, "bound token", bound.Description)
	jkt := claimsOf(t, bound.AccessToken)["cnf"].(map[string]any)["jkt"]

	exchange := func(subject, proof string, extra url.Values) tokenResult {
		t.Helper()
		f := url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {subject}, "subject_token_type": {token.AccessTokenType}}
		for k, v := range extra {
			f[k] = v
		}
		return e.dpopToken(f, proof, "gateway", gwSecret)
	}
	t.Run("bound subject token", func(t *testing.T) {
		wantTokenError(t, exchange(bound.AccessToken, "", nil), 400, "invalid_grant")
		wantTokenError(t, exchange(bound.AccessToken, thief.proof(t, "POST", tokenURL, ""), nil), 400, "invalid_grant")
		wantTokenError(t, exchange(bound.AccessToken, "", url.Values{"audience": {"files"}, "scope": {"email"}}), 400, "invalid_grant")
		x := exchange(bound.AccessToken, key.proof(t, "POST", tokenURL, ""), url.Values{"audience": {"files"}})
		wantStatus(t, x.Status, 200, "exchange with the key's proof", x.Description)
		cnf, _ := claimsOf(t, x.AccessToken)["cnf"].(map[string]any)
		if x.TokenType != "DPoP" || cnf["jkt"] != jkt {
			t.Fatalf("exchanged token not bound to the subject's key: %s %v", x.TokenType, cnf)
		}
		if status, _, _ := e.userinfo(x.AccessToken); status != 401 {
			t.Fatalf("exchanged bound token works as Bearer: %d", status)
		}
	})

	t.Run("bound actor token", func(t *testing.T) {
		robot := e.dpopToken(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, thief.proof(t, "POST", tokenURL, ""), "robot", e.RobotSecret)
		wantStatus(t, robot.Status, 200, "bound robot token", robot.Description)
		n := e.notesRequest("openid files.read")
		user := e.redeem(e.browser().authorize(n, "files.read").Get("code"), n)
		act := url.Values{"actor_token": {robot.AccessToken}, "actor_token_type": {token.AccessTokenType}}
		wantTokenError(t, exchange(user.AccessToken, "", act), 400, "invalid_grant")
		wantTokenError(t, exchange(user.AccessToken, key.proof(t, "POST", tokenURL, ""), act), 400, "invalid_grant")
		wantTokenError(t, exchange(bound.AccessToken, thief.proof(t, "POST", tokenURL, ""), act), 400, "invalid_grant") // two keys, one proof
		wantStatus(t, exchange(user.AccessToken, thief.proof(t, "POST", tokenURL, ""), act).Status, 200, "actor's proof", nil)
	})

	t.Run("public clients", func(t *testing.T) {
		spec := admin.ClientSpec{ID: "spa", Public: true, RedirectURIs: []string{"https://spa.example/cb"}, Scopes: []string{"openid", "email"},
			GrantTypes: []string{"authorization_code", token.TokenExchangeGrantType}}
		if _, err := admin.AddClient(ctx, e.Store, spec, scope.Default()); err == nil {
			t.Error("admin gave a public client the token exchange grant")
		}
		if status, body := e.adminCall("POST", "/admin/clients", adminToken, map[string]any{"client_id": "spa2", "public": true,
			"redirect_uris": []string{"https://spa.example/cb"}, "grant_types": []string{"authorization_code", token.TokenExchangeGrantType}}, nil); status != 400 {
			t.Errorf("admin API gave a public client the token exchange grant: %d %s", status, body)
		}
		if status, body := e.adminCall("POST", "/admin/import", adminToken, map[string]any{"version": 1, "clients": []map[string]any{{
			"client_id": "spa3", "public": true, "grant_types": []string{token.TokenExchangeGrantType}}}}, nil); status != 400 {
			t.Errorf("import gave a public client the token exchange grant: %d %s", status, body)
		}
		if reg := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{"https://spa.example/cb"},
			"token_endpoint_auth_method": "none", "grant_types": []string{"authorization_code", token.TokenExchangeGrantType}}); reg.Status != 400 {
			t.Errorf("registration gave a public client the token exchange grant: %+v", reg)
		}
		// A public client stored with the grant before this rule: the
		// token endpoint refuses it, with its own bound token too.
		if err := e.Store.CreateClient(ctx, storage.Client{ID: "legacy", Name: "Legacy SPA", Public: true, RedirectURIs: spec.RedirectURIs, Scopes: spec.Scopes,
			GrantTypes: spec.GrantTypes, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		sr := authRequest{ClientID: "legacy", RedirectURI: "https://spa.example/cb", Scope: "openid email", State: "s", Verifier: strings.Repeat("s", 43)}
		code := e.browser().authorize(sr, "email").Get("code")
		own := e.dpopToken(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {sr.RedirectURI},
			"code_verifier": {sr.Verifier}, "client_id": {"legacy"}}, key.proof(t, "POST", tokenURL, ""), "", "")
		wantStatus(t, own.Status, 200, "the legacy client's token", own.Description)
		for _, proof := range []string{"", key.proof(t, "POST", tokenURL, "")} {
			x := e.dpopToken(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {own.AccessToken},
				"subject_token_type": {token.AccessTokenType}, "client_id": {"legacy"}}, proof, "", "")
			wantTokenError(t, x, 400, "unauthorized_client")
		}
	})
}
