package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"sync"
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

// TestRegistrationDeleteRace: RFC 7592 requests of a client that is being
// deleted, or was just deleted on another node whose deletion this node's
// client cache has not seen yet: a second DELETE and an update (PUT) find
// no client, which is 401 as for any unknown client (RFC 7592 §2.3, §3),
// never a 500. On one node, two DELETEs at once: one 204, one 401.
func TestRegistrationDeleteRace(t *testing.T) {
	nodes := startCluster(t, 2)
	a, b := nodes[0], nodes[1]
	meta := map[string]any{"redirect_uris": []string{"https://gone.example/cb"}, "client_name": "Soon Gone", "scope": "openid"}
	app := a.register("POST", "/register", registrationToken, meta)
	if app.Status != http.StatusCreated {
		t.Fatalf("registration: %+v", app)
	}
	onB := strings.Replace(app.RegistrationClientURI, a.URL, b.URL, 1)
	if r := b.register("GET", onB, app.RegistrationAccessToken, nil); r.Status != http.StatusOK {
		t.Fatalf("read on node b: %+v", r)
	}
	if d := a.register("DELETE", app.RegistrationClientURI, app.RegistrationAccessToken, nil); d.Status != http.StatusNoContent {
		t.Fatalf("delete on node a: %+v", d)
	}
	upd := map[string]any{"client_id": app.ClientID, "redirect_uris": []string{"https://gone.example/cb"}, "client_name": "Back", "scope": "openid"}
	if r := b.register("PUT", onB, app.RegistrationAccessToken, upd); r.Status != http.StatusUnauthorized || r.Error != "invalid_token" {
		t.Fatalf("update on node b of the client node a deleted: %d %s %s; want 401 invalid_token", r.Status, r.Error, r.Description)
	}
	if r := b.register("DELETE", onB, app.RegistrationAccessToken, nil); r.Status != http.StatusUnauthorized || r.Error != "invalid_token" {
		t.Fatalf("delete on node b of the client node a deleted: %d %s %s; want 401 invalid_token", r.Status, r.Error, r.Description)
	}
	if c, err := a.Store.GetClient(t.Context(), app.ClientID); err == nil {
		t.Fatalf("the update brought the deleted client back: %+v", c)
	}

	for round := range 4 {
		app := a.register("POST", "/register", registrationToken, meta)
		statuses := map[int]int{}
		var mu sync.Mutex
		var wg sync.WaitGroup
		start := make(chan struct{})
		for range 2 {
			wg.Go(func() {
				<-start
				st, _ := jsonCall(t, "DELETE", app.RegistrationClientURI, app.RegistrationAccessToken, nil)
				mu.Lock()
				statuses[st]++
				mu.Unlock()
			})
		}
		close(start)
		wg.Wait()
		if statuses[http.StatusNoContent] != 1 || statuses[http.StatusUnauthorized] != 1 {
			t.Fatalf("round %d: two DELETEs at once answered %v; want one 204 and one 401", round, statuses)
		}
	}
}

// TestDeletedClientTokensEnd: the access tokens of a client's own
// (client_credentials, and what it exchanged them for) belong to no grant
// that DeleteClient could revoke: once the operator deletes the client,
// introspection answers them inactive at once, as it does tokens of a
// grant, instead of active until they expire.
func TestDeletedClientTokensEnd(t *testing.T) {
	e := start(t)
	tok := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
	if tok.Status != http.StatusOK {
		t.Fatalf("client_credentials: %+v", tok)
	}
	const apiSecret = "api-secret-for-tests-0123456789"
	if in := e.introspect(tok.AccessToken, "api", apiSecret); in["active"] != true {
		t.Fatalf("before the deletion: %v", in)
	}
	if st, raw := e.adminCall("DELETE", "/admin/clients/robot", adminToken, nil, nil); st != http.StatusNoContent {
		t.Fatalf("delete robot: %d %s", st, raw)
	}
	if in := e.introspect(tok.AccessToken, "api", apiSecret); in["active"] != false {
		t.Fatalf("a client_credentials token of a deleted client is introspected %v", in)
	}
}
