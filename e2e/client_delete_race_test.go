package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestDeletedClientGetsNoGrant: a client deregisters itself (RFC 7592
// §2.3) on one node while another node, which looked the client up a
// moment before (its client cache, as a token request in flight holds
// the client it authenticated), redeems a code of that client. The
// deletion revokes every grant of the client, and a grant created after
// it must not live on: the redemption is refused, and no token of the
// deleted client reads the user's claims on any node. Before, the code
// exchange created a live grant after the deletion, whose access token
// worked until it expired.
func TestDeletedClientGetsNoGrant(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	meta := map[string]any{"redirect_uris": []string{"https://gone.example/cb"}, "client_name": "Soon Gone",
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid email"}
	app := a.register("POST", "/register", registrationToken, meta)
	if app.Status != http.StatusCreated {
		t.Fatalf("registration: %+v", app)
	}

	// The user signs in to the app on node b, which looks the client up.
	r := authRequest{ClientID: app.ClientID, RedirectURI: "https://gone.example/cb", Scope: "openid email", State: "s", Verifier: strings.Repeat("v", 43)}
	br := b.browser()
	p := br.get(r.url())
	p = br.login(p.Location, userName, userPassword)
	p = br.consent(p.Location, true, "email")
	loc, _ := url.Parse(p.Location)
	code := loc.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %d %s", p.Status, p.Location)
	}

	// The client deregisters on node a.
	if d := a.register("DELETE", app.RegistrationClientURI, app.RegistrationAccessToken, nil); d.Status != http.StatusNoContent {
		t.Fatalf("delete: %+v", d)
	}

	// Node b redeems the code.
	tok := b.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI},
		"code_verifier": {r.Verifier}}, app.ClientID, app.ClientSecret)
	if tok.Status == http.StatusOK {
		for _, n := range nodes {
			if st, _, _ := n.userinfo(tok.AccessToken); st == http.StatusOK {
				t.Fatalf("an access token of a client deleted before its code was redeemed reads the user's claims on %s", n.URL)
			}
		}
		t.Fatalf("the code of a deleted client was redeemed (its tokens are dead, but the answer should say so): %+v", tok)
	}
	if tok.Status != http.StatusUnauthorized || tok.Error != "invalid_client" || tok.Description == "" {
		t.Fatalf("redeeming the code of a deleted client answered %d %s %q; want 401 invalid_client", tok.Status, tok.Error, tok.Description)
	}
}
