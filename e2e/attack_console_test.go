package e2e

import (
	"context"
	"net/http"
	"net/url"
	"testing"

	"github.com/bawwab/bawwab/internal/console"
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
