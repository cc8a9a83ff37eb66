package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// startCluster starts n bawwab nodes, each with its own connection pool to
// one fresh PostgreSQL schema, behind one issuer URL (node 1's), as behind
// a load balancer. They share nothing but the database.
func startCluster(t *testing.T, n int) []*env {
	t.Helper()
	dsn, schema := testenv.PostgresSchema(t)
	c := &clock{}
	nodes := make([]*env, n)
	var issuer string
	for i := range nodes {
		store, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		l := listen(t)
		if i == 0 {
			issuer = "http://" + l.Addr().String()
		}
		nodes[i] = startNode(t, store, l, issuer, c)
	}
	return nodes
}

// TestMultiNode plays one user's story across three nodes: login on node 1,
// consent on node 2, code redeemed on node 3, and checks that each node
// sees at once what another did.
func TestMultiNode(t *testing.T) {
	nodes := startCluster(t, 3)
	n1, n2, n3 := nodes[0], nodes[1], nodes[2]

	b := n1.browser()
	r := n1.notesRequest("openid email offline_access")
	p := b.get(r.url())
	if !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("authorize on node 1: %d %s", p.Status, p.Location)
	}
	// The login form comes from node 1 and is posted to node 2: the CSRF
	// key and the pending request are shared.
	form := b.get(p.Location)
	req, _ := url.Parse(p.Location)
	p = b.on(n2).post("/login", url.Values{"csrf_token": {csrfOf(t, form)}, "req": {req.Query().Get("req")},
		"username": {userName}, "password": {userPassword}})
	if !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("login on node 2: %d %s", p.Status, p.Location)
	}
	// Consent on node 3 with the session made on node 2.
	p = b.on(n3).consent(p.Location, true, "email", "offline_access")
	if !strings.HasPrefix(p.Location, notesRedirect) {
		t.Fatalf("consent on node 3: %d %s", p.Status, p.Location)
	}
	cb, _ := url.Parse(p.Location)
	if cb.Query().Get("iss") != n1.URL {
		t.Fatalf("node 3 answers with iss %q, want the shared issuer %q", cb.Query().Get("iss"), n1.URL)
	}
	tok := n1.redeem(cb.Query().Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem on node 1", tok.Description)

	// Every node accepts the token and serves the same JWKS.
	for i, n := range nodes {
		if status, info, _ := n.userinfo(tok.AccessToken); status != 200 || info["email"] != "amal@example.com" {
			t.Fatalf("userinfo on node %d: %d %v", i+1, status, info)
		}
	}
	jwks := func(n *env) string {
		resp, err := http.Get(n.URL + "/jwks.json")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		body, _ := io.ReadAll(resp.Body)
		return string(body)
	}
	if jwks(n1) != jwks(n2) || jwks(n2) != jwks(n3) {
		t.Fatal("nodes serve different JWKS")
	}

	// Refresh on node 2, then on node 1; the old refresh token replayed
	// on node 3 is detected as reuse and ends the family everywhere.
	next := n2.refresh(tok.RefreshToken)
	wantStatus(t, next.Status, 200, "refresh on node 2", next.Description)
	next = n1.refresh(next.RefreshToken)
	wantStatus(t, next.Status, 200, "refresh on node 1", next.Description)
	wantTokenError(t, n3.refresh(tok.RefreshToken), 400, "invalid_grant")
	for i, n := range nodes {
		if in := n.introspect(next.AccessToken, "notes", n.NotesSecret); in["active"] != false {
			t.Fatalf("node %d: token of a reused family still active: %v", i+1, in)
		}
	}

	// Remembered consent made on node 3 is seen by node 1; revoking the app
	// on node 1 ends the tokens on nodes 2 and 3 at once.
	r2 := n1.notesRequest("openid email")
	q := b.authorize(r2)
	fresh := n2.redeem(q.Get("code"), r2)
	wantStatus(t, fresh.Status, 200, "second redeem", fresh.Description)
	acct := b.get("/account")
	if p := b.post("/account/revoke", url.Values{"csrf_token": {csrfOf(t, acct)}, "client_id": {"notes"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("revoke app on node 1: %d", p.Status)
	}
	for i, n := range nodes[1:] {
		if in := n.introspect(fresh.AccessToken, "notes", n.NotesSecret); in["active"] != false {
			t.Fatalf("node %d: token still active after the user revoked the app on node 1: %v", i+2, in)
		}
	}
}

// TestMultiNodeCodeRace redeems one code 100 times at once across three
// nodes: exactly one redemption wins, every other gets invalid_grant, and
// since a replay means the code leaked, the winner's tokens are revoked.
func TestMultiNodeCodeRace(t *testing.T) {
	nodes := startCluster(t, 3)
	r := nodes[0].notesRequest("openid email offline_access")
	code := nodes[0].browser().authorize(r, "email", "offline_access").Get("code")

	const tries = 100
	type result struct {
		status int
		body   tokenResult
		err    error
	}
	results := make([]result, tries)
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI},
		"code_verifier": {r.Verifier}}.Encode()
	client := &http.Client{Timeout: 30 * time.Second, Transport: &http.Transport{MaxIdleConnsPerHost: tries}}
	start := make(chan struct{})
	var wg sync.WaitGroup
	for i := range tries {
		n := nodes[i%len(nodes)]
		wg.Go(func() {
			req, _ := http.NewRequest("POST", n.URL+"/token", strings.NewReader(form))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			req.SetBasicAuth("notes", n.NotesSecret)
			<-start
			resp, err := client.Do(req)
			if err != nil {
				results[i].err = err
				return
			}
			defer resp.Body.Close()
			results[i].status = resp.StatusCode
			results[i].err = json.NewDecoder(resp.Body).Decode(&results[i].body)
		})
	}
	close(start)
	wg.Wait()

	var winner *tokenResult
	for i, res := range results {
		switch {
		case res.err != nil:
			t.Fatalf("try %d: %v", i, res.err)
		case res.status == 200:
			if winner != nil {
				t.Fatalf("the code was redeemed twice")
			}
			winner = &results[i].body
		case res.status != 400 || res.body.Error != "invalid_grant":
			t.Fatalf("try %d: %d %q %s, want 400 invalid_grant", i, res.status, res.body.Error, res.body.Description)
		}
	}
	if winner == nil {
		t.Fatal("no redemption succeeded")
	}
	for i, n := range nodes {
		if in := n.introspect(winner.AccessToken, "notes", n.NotesSecret); in["active"] != false {
			t.Fatalf("node %d: token of a replayed code still active: %v", i+1, in)
		}
	}
	wantTokenError(t, nodes[1].refresh(winner.RefreshToken), 400, "invalid_grant")
}

// TestMultiNodeThrottle: failed logins on different nodes add up, and a key
// rotated on one node signs tokens every node accepts.
func TestMultiNodeThrottleAndKeys(t *testing.T) {
	nodes := startCluster(t, 3)
	b := nodes[0].browser()
	loginURL := b.get(nodes[0].notesRequest("openid").url()).Location
	for i := range 5 {
		if p := b.on(nodes[i%3]).login(loginURL, userName, "wrong"); p.Status != http.StatusUnauthorized {
			t.Fatalf("failure %d on node %d: %d", i+1, i%3+1, p.Status)
		}
	}
	for i, n := range nodes {
		if p := b.on(n).login(loginURL, userName, userPassword); p.Status != http.StatusTooManyRequests {
			t.Fatalf("node %d lets the throttled account in: %d", i+1, p.Status)
		}
	}

	// Rotate on node 2; node 1 signs with the new key only after it
	// reloads, but every node verifies the new key's tokens at once (an
	// unknown kid triggers a reload).
	newKID, err := nodes[1].Server.Keys.Rotate(context.Background())
	if err != nil {
		t.Fatal(err)
	}
	robot := nodes[1].token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", nodes[1].RobotSecret)
	wantStatus(t, robot.Status, 200, "client_credentials on node 2", robot.Description)
	for i, n := range nodes {
		if in := n.introspect(robot.AccessToken, "robot", n.RobotSecret); in["active"] != true {
			t.Fatalf("node %d rejects a token of the key rotated on node 2: %v", i+1, in)
		}
		if n.Server.Keys.ActiveKID() != newKID {
			if err := n.Server.Keys.Reload(context.Background()); err != nil {
				t.Fatal(err)
			}
		}
		if n.Server.Keys.ActiveKID() != newKID {
			t.Fatalf("node %d signs with %s after reload, want %s", i+1, n.Server.Keys.ActiveKID(), newKID)
		}
	}
}
