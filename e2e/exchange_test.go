package e2e

import (
	"context"
	"encoding/base64"
	"encoding/json"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
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
