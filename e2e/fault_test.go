package e2e

import (
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// cutProxy forwards TCP connections from a loopback port to target, byte
// for byte, until it is cut: then it closes every open connection and
// each new one at once, as a database server that went away does.
// Restore lets connections through again.
type cutProxy struct {
	l      net.Listener
	target string
	mu     sync.Mutex
	cut    bool
	conns  map[net.Conn]bool
	wg     sync.WaitGroup
}

func newCutProxy(t *testing.T, target string) *cutProxy {
	t.Helper()
	p := &cutProxy{l: listen(t), target: target, conns: map[net.Conn]bool{}}
	p.wg.Add(1)
	go p.serve()
	t.Cleanup(func() {
		p.l.Close()
		p.Cut()
		p.wg.Wait()
	})
	return p
}

func (p *cutProxy) Addr() string { return p.l.Addr().String() }

func (p *cutProxy) serve() {
	defer p.wg.Done()
	for {
		down, err := p.l.Accept()
		if err != nil {
			return
		}
		up, err := net.DialTimeout("tcp", p.target, 2*time.Second)
		p.mu.Lock()
		if err != nil || p.cut {
			p.mu.Unlock()
			down.Close()
			if up != nil {
				up.Close()
			}
			continue
		}
		p.conns[down], p.conns[up] = true, true
		p.wg.Add(2)
		p.mu.Unlock()
		go p.pipe(up, down)
		go p.pipe(down, up)
	}
}

func (p *cutProxy) pipe(dst, src net.Conn) {
	defer p.wg.Done()
	_, _ = io.Copy(dst, src)
	dst.Close()
	src.Close()
	p.mu.Lock()
	delete(p.conns, dst)
	delete(p.conns, src)
	p.mu.Unlock()
}

// Cut closes every connection and refuses new ones.
func (p *cutProxy) Cut() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = true
	for c := range p.conns {
		c.Close()
	}
}

// Restore lets new connections through.
func (p *cutProxy) Restore() {
	p.mu.Lock()
	defer p.mu.Unlock()
	p.cut = false
}

// dropProxy forwards HTTP connections to a bawwab node; a connection
// accepted while drop is set has its request forwarded, but as soon as the
// server starts answering, both sides are closed and the client gets
// nothing: the server finished its work, the client lost the response.
type dropProxy struct {
	l      net.Listener
	target string
	drop   atomic.Bool
	wg     sync.WaitGroup
}

func newDropProxy(t *testing.T, target string) *dropProxy {
	t.Helper()
	p := &dropProxy{l: listen(t), target: target}
	p.wg.Add(1)
	go func() {
		defer p.wg.Done()
		for {
			down, err := p.l.Accept()
			if err != nil {
				return
			}
			up, err := net.Dial("tcp", p.target)
			if err != nil {
				down.Close()
				continue
			}
			drop := p.drop.Load()
			p.wg.Add(2)
			go func() { defer p.wg.Done(); _, _ = io.Copy(up, down); up.Close() }()
			go func() {
				defer p.wg.Done()
				defer down.Close()
				defer up.Close()
				if drop {
					_, _ = up.Read(make([]byte, 1)) // the response has begun: the handler is done
					return
				}
				_, _ = io.Copy(down, up)
			}()
		}
	}()
	t.Cleanup(func() { p.l.Close(); p.wg.Wait() })
	return p
}

// outcome is what one request of the load saw.
type outcome struct {
	kind       string // refresh, client_credentials, authorize, redeem
	start, end time.Time
	ok         bool
	// unavailable: a 503 temporarily_unavailable with Retry-After, or the
	// authorization endpoint's temporarily_unavailable redirect.
	unavailable bool
	detail      string
}

// faultLoad is the traffic of TestFaultPostgres: refresh chains,
// client_credentials and code flows against two nodes, recording every
// outcome and every token the clients received.
type faultLoad struct {
	nodes  []*env
	http   *http.Client
	mu     sync.Mutex
	log    []outcome
	access map[string]string // access token → the client that may introspect it
	chains []string          // the current refresh token of each chain
}

func (l *faultLoad) record(o outcome, accessToken, client string) {
	o.end = time.Now()
	l.mu.Lock()
	defer l.mu.Unlock()
	l.log = append(l.log, o)
	if accessToken != "" {
		l.access[accessToken] = client
	}
}

// classify turns an HTTP answer into an outcome: 200 (or the expected
// redirect) is ok, a 503 temporarily_unavailable with Retry-After is an
// outage; anything else is a failure.
func classify(o *outcome, status int, h http.Header, body []byte) {
	switch {
	case status == http.StatusOK:
		o.ok = true
	case status == http.StatusServiceUnavailable && h.Get("Retry-After") != "" &&
		(strings.Contains(string(body), `"temporarily_unavailable"`) || strings.Contains(h.Get("Content-Type"), "text/html")):
		o.unavailable = true
	default:
		o.detail = fmt.Sprintf("%d %s", status, clipBody(string(body)))
	}
}

func clipBody(s string) string {
	if len(s) > 300 {
		return s[:300]
	}
	return s
}

func (l *faultLoad) post(n *env, form url.Values, user, pass string) (int, http.Header, []byte, error) {
	req, _ := http.NewRequest("POST", n.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(user), url.QueryEscape(pass))
	resp, err := l.http.Do(req)
	if err != nil {
		return 0, nil, nil, err
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, body, err
}

// tokenCall posts a token request and records it; it returns the tokens
// of a success.
func (l *faultLoad) tokenCall(kind string, n *env, form url.Values, user, pass string) (access, refresh string) {
	o := outcome{kind: kind, start: time.Now()}
	status, h, body, err := l.post(n, form, user, pass)
	if err != nil {
		o.detail = err.Error()
		l.record(o, "", "")
		return "", ""
	}
	classify(&o, status, h, body)
	var tr tokenResult
	if o.ok {
		if err := json.Unmarshal(body, &tr); err != nil || tr.AccessToken == "" {
			o.ok, o.detail = false, "200 without tokens: "+clipBody(string(body))
		}
	}
	l.record(o, tr.AccessToken, user)
	return tr.AccessToken, tr.RefreshToken
}

// refreshChain keeps one refresh chain going, alternating nodes: after an
// outage it retries with the token it holds, as a client does.
func (l *faultLoad) refreshChain(ctx context.Context, k int) {
	for i := 0; ctx.Err() == nil; i++ {
		n := l.nodes[(k+i)%len(l.nodes)]
		l.mu.Lock()
		rt := l.chains[k]
		l.mu.Unlock()
		if _, next := l.tokenCall("refresh", n, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}, "notes", n.NotesSecret); next != "" {
			l.mu.Lock()
			l.chains[k] = next
			l.mu.Unlock()
		}
		pause(ctx, 40*time.Millisecond)
	}
}

func (l *faultLoad) clientCredentials(ctx context.Context) {
	for i := 0; ctx.Err() == nil; i++ {
		n := l.nodes[i%len(l.nodes)]
		l.tokenCall("client_credentials", n, url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", n.RobotSecret)
		pause(ctx, 40*time.Millisecond)
	}
}

// codeFlows runs authorization code flows with a logged-in browser whose
// consent is remembered: /authorize answers with a code at once, which is
// redeemed on the other node. A code whose redemption met the outage is
// not retried (codes are single use by design); the flow starts over.
func (l *faultLoad) codeFlows(ctx context.Context, b *browser) {
	for i := 0; ctx.Err() == nil; i++ {
		n := l.nodes[i%len(l.nodes)]
		r := n.notesRequest("openid offline_access")
		o := outcome{kind: "authorize", start: time.Now()}
		req, _ := http.NewRequest("GET", n.URL+r.url(), nil)
		resp, err := b.Do(req)
		var code string
		if err != nil {
			o.detail = err.Error()
		} else {
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			loc, _ := url.Parse(resp.Header.Get("Location"))
			switch {
			case resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), notesRedirect) &&
				loc.Query().Get("code") != "" && loc.Query().Get("state") == r.State:
				o.ok, code = true, loc.Query().Get("code")
			case resp.StatusCode == http.StatusFound && strings.HasPrefix(resp.Header.Get("Location"), notesRedirect) &&
				loc.Query().Get("error") == "temporarily_unavailable" && loc.Query().Get("state") == r.State:
				o.unavailable = true
			default:
				classify(&o, resp.StatusCode, resp.Header, body)
				if o.ok {
					o.ok, o.detail = false, "200 instead of a redirect: "+clipBody(string(body))
				}
			}
		}
		l.record(o, "", "")
		if code != "" {
			other := l.nodes[(i+1)%len(l.nodes)]
			l.tokenCall("redeem", other, url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI},
				"code_verifier": {r.Verifier}}, "notes", other.NotesSecret)
		}
		pause(ctx, 40*time.Millisecond)
	}
}

func pause(ctx context.Context, d time.Duration) {
	select {
	case <-ctx.Done():
	case <-time.After(d):
	}
}

// TestFaultPostgres cuts the network between two bawwab nodes and
// PostgreSQL under refresh, client_credentials and code-flow load: once for
// 20 s, then three times for 2 s. No refresh chain may be revoked, no token
// a client received may stop working, clients see 503
// temporarily_unavailable (never 500) during a cut, and every request
// succeeds from 2 s after the database is back. Then it drops the
// connection of a refresh right after the rotation committed: the client's
// retry with the old token succeeds (rotation grace period).
func TestFaultPostgres(t *testing.T) {
	dsn, schema := testenv.PostgresSchema(t)
	u, err := url.Parse(dsn)
	if err != nil || u.Host == "" {
		t.Fatalf("BAWWAB_TEST_POSTGRES_DSN must be a postgres:// URL for this test: %v", err)
	}
	proxy := newCutProxy(t, u.Host)
	u.Host = proxy.Addr()
	c := &clock{}
	var nodes []*env
	var issuer string
	for range 2 {
		store, err := postgres.Open(context.Background(), u.String(), postgres.Options{SearchPath: schema})
		if err != nil {
			t.Fatal(err)
		}
		t.Cleanup(func() { store.Close() })
		l := listen(t)
		if issuer == "" {
			issuer = "http://" + l.Addr().String()
		}
		nodes = append(nodes, startNode(t, store, l, issuer, c))
	}
	n1 := nodes[0]

	// Setup: one user, consent remembered, four refresh chains.
	b := n1.browser()
	load := &faultLoad{nodes: nodes, http: &http.Client{Timeout: 10 * time.Second}, access: map[string]string{}}
	for range 4 {
		r := n1.notesRequest("openid offline_access")
		q := b.authorize(r, "offline_access")
		tok := n1.redeem(q.Get("code"), r)
		wantStatus(t, tok.Status, 200, "redeem", tok.Description)
		load.chains = append(load.chains, tok.RefreshToken)
		load.access[tok.AccessToken] = "notes"
	}

	ctx, stop := context.WithCancel(context.Background())
	var wg sync.WaitGroup
	for k := range load.chains {
		wg.Go(func() { load.refreshChain(ctx, k) })
	}
	wg.Go(func() { load.clientCredentials(ctx) })
	wg.Go(func() { load.codeFlows(ctx, b) })

	type window struct{ cut, back time.Time }
	var cuts []window
	outage := func(d time.Duration) {
		w := window{cut: time.Now()}
		proxy.Cut()
		time.Sleep(d)
		proxy.Restore()
		w.back = time.Now()
		cuts = append(cuts, w)
		time.Sleep(3 * time.Second)
	}
	time.Sleep(time.Second)
	outage(20 * time.Second)
	for range 3 {
		outage(2 * time.Second)
	}
	stop()
	wg.Wait()

	// Every request either succeeded or, overlapping a cut or the 2 s
	// after it, met 503 temporarily_unavailable; none failed otherwise.
	near := func(o outcome) bool {
		for _, w := range cuts {
			if o.end.After(w.cut) && o.start.Before(w.back.Add(2*time.Second)) {
				return true
			}
		}
		return false
	}
	counts := map[string]int{}
	for _, o := range load.log {
		switch {
		case o.ok:
			counts[o.kind+" ok"]++
		case o.unavailable && near(o):
			counts[o.kind+" 503"]++
		case o.unavailable:
			t.Errorf("%s started %v after the last cut began was still unavailable more than 2 s after the database came back",
				o.kind, o.start.Sub(cuts[len(cuts)-1].cut).Round(time.Millisecond))
		default:
			t.Errorf("%s failed: %s", o.kind, o.detail)
		}
	}
	t.Logf("outcomes: %v", counts)
	if counts["refresh 503"] == 0 || counts["refresh ok"] == 0 || counts["client_credentials ok"] == 0 || counts["redeem ok"] == 0 {
		t.Fatalf("the load did not meet both outages and successes: %v", counts)
	}

	// No chain was revoked: each current refresh token still rotates, and
	// no reuse or replay was detected.
	for k, rt := range load.chains {
		next := nodes[k%2].refresh(rt)
		wantStatus(t, next.Status, 200, fmt.Sprintf("chain %d after the outages", k), next.Description)
		load.chains[k] = next.RefreshToken
	}
	for _, typ := range []string{"refresh_reuse", "code_replay", "refresh_wrong_client"} {
		ev, err := n1.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: typ})
		if err != nil {
			t.Fatal(err)
		}
		if len(ev) != 0 {
			t.Fatalf("%d %s events: %+v", len(ev), typ, ev[0])
		}
	}
	// No access token a client received stopped working.
	for tok, client := range load.access {
		secret := n1.NotesSecret
		if client == "robot" {
			secret = n1.RobotSecret
		}
		if in := n1.introspect(tok, client, secret); in["active"] != true {
			t.Fatalf("an access token of %s received under load is no longer active: %v", client, in)
		}
	}

	// The connection of a refresh drops right after the rotation committed.
	front := newDropProxy(t, strings.TrimPrefix(n1.URL, "http://"))
	lossy := &http.Client{Timeout: 10 * time.Second, Transport: &http.Transport{DisableKeepAlives: true}}
	refreshVia := func(rt string) (tokenResult, error) {
		req, _ := http.NewRequest("POST", "http://"+front.l.Addr().String()+"/token",
			strings.NewReader(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("notes", n1.NotesSecret)
		resp, err := lossy.Do(req)
		if err != nil {
			return tokenResult{}, err
		}
		defer resp.Body.Close()
		var tr tokenResult
		err = json.NewDecoder(resp.Body).Decode(&tr)
		tr.Status = resp.StatusCode
		return tr, err
	}
	for k, rt := range load.chains {
		front.drop.Store(true)
		if _, err := refreshVia(rt); err == nil {
			t.Fatal("the dropping proxy delivered a response")
		}
		front.drop.Store(false)
		old, err := n1.Store.GetRefreshToken(context.Background(), storage.Hash(rt))
		if err != nil || old.UsedAt.IsZero() {
			t.Fatalf("chain %d: the rotation whose response was lost did not commit: %+v %v", k, old, err)
		}
		retry, err := refreshVia(rt)
		if err != nil {
			t.Fatal(err)
		}
		wantStatus(t, retry.Status, 200, fmt.Sprintf("chain %d: retry after the lost response", k), retry.Description)
		next := nodes[1].refresh(retry.RefreshToken)
		wantStatus(t, next.Status, 200, fmt.Sprintf("chain %d: the retry's refresh token", k), next.Description)
		if in := n1.introspect(retry.AccessToken, "notes", n1.NotesSecret); in["active"] != true {
			t.Fatalf("chain %d: the retry's access token is not active: %v", k, in)
		}
	}
}

// TestFaultEndpoints cuts one node from PostgreSQL and calls every
// endpoint that needs the store: each JSON endpoint answers 503
// temporarily_unavailable with Retry-After, /authorize redirects that
// error to the client's trusted redirect URI with state and iss, and the
// pages show a retry page in the user's language; none answers 500. After
// the cut everything works again.
func TestFaultEndpoints(t *testing.T) {
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
	tok := e.redeem(b.authorize(r, "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)

	do := func(method, path, contentType, body string, h http.Header) (int, http.Header, string) {
		t.Helper()
		req, _ := http.NewRequest(method, path, strings.NewReader(body))
		if contentType != "" {
			req.Header.Set("Content-Type", contentType)
		}
		for k, v := range h {
			req.Header[k] = v
		}
		resp, err := b.Do(req)
		if err != nil {
			t.Fatalf("%s %s: %v", method, path, err)
		}
		defer resp.Body.Close()
		raw, _ := io.ReadAll(resp.Body)
		return resp.StatusCode, resp.Header, string(raw)
	}
	form := "application/x-www-form-urlencoded"
	basic := func(user, pass string) http.Header {
		req, _ := http.NewRequest("GET", "/", nil)
		req.SetBasicAuth(user, pass)
		return req.Header
	}
	bearer := func(tok string) http.Header { return http.Header{"Authorization": {"Bearer " + tok}} }

	// The authorization request goes first, while the client is still in
	// the node's one-second client cache: its redirect URI is trusted, so
	// the outage is the client's to show (RFC 6749 §4.1.2.1).
	r2 := e.notesRequest("openid offline_access")
	if status, _, _ := do("GET", e.URL+r2.url(), "", "", nil); status != http.StatusFound {
		t.Fatalf("authorize before the cut: %d", status)
	}
	csrf := csrfOf(t, b.get("/account"))
	proxy.Cut()
	status, h, body := do("GET", e.URL+r2.url(), "", "", nil)
	if loc, _ := url.Parse(h.Get("Location")); status == http.StatusFound {
		q := loc.Query()
		if !strings.HasPrefix(h.Get("Location"), notesRedirect) || q.Get("error") != "temporarily_unavailable" ||
			q.Get("state") != r2.State || q.Get("iss") != e.URL || q.Get("code") != "" {
			t.Fatalf("authorize during the cut redirected to %s", h.Get("Location"))
		}
	} else if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" {
		t.Fatalf("authorize during the cut: %d %s", status, clipBody(body))
	} else {
		t.Log("the client had left the cache: a retry page instead of the redirect")
	}

	jsonCalls := []struct {
		name, method, path, body string
		h                        http.Header
	}{
		{"refresh", "POST", "/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}.Encode(), basic("notes", e.NotesSecret)},
		{"client_credentials", "POST", "/token", "grant_type=client_credentials&scope=files.read", basic("robot", e.RobotSecret)},
		{"introspection", "POST", "/introspect", url.Values{"token": {tok.RefreshToken}}.Encode(), basic("notes", e.NotesSecret)},
		{"revocation", "POST", "/revoke", url.Values{"token": {tok.RefreshToken}}.Encode(), basic("notes", e.NotesSecret)},
		{"userinfo", "GET", "/userinfo", "", bearer(tok.AccessToken)},
		{"par", "POST", "/par", r.query().Encode(), basic("notes", e.NotesSecret)},
		{"device authorization", "POST", "/device_authorization", "client_id=tv&scope=openid", nil},
		{"registration", "POST", "/register", `{"redirect_uris":["https://app.example/cb"]}`, bearer(registrationToken)},
		{"admin API", "GET", "/admin/users", "", bearer(adminToken)},
	}
	for _, c := range jsonCalls {
		base, ct := e.URL, form
		if c.name == "admin API" {
			base = e.AdminURL
		}
		if c.name == "registration" {
			ct = "application/json"
		}
		status, h, body := do(c.method, base+c.path, ct, c.body, c.h)
		var errBody struct {
			Error string `json:"error"`
		}
		_ = json.Unmarshal([]byte(body), &errBody)
		if status != http.StatusServiceUnavailable || errBody.Error != "temporarily_unavailable" || h.Get("Retry-After") == "" {
			t.Errorf("%s during the cut: %d Retry-After %q %s; want 503 temporarily_unavailable with Retry-After",
				c.name, status, h.Get("Retry-After"), clipBody(body))
		}
	}

	pages := []struct{ name, method, path, body string }{
		{"login page", "GET", "/login?req=abc", ""},
		{"consent page", "GET", "/consent?req=abc", ""},
		{"account", "GET", "/account", ""},
		{"logout", "POST", "/logout", "csrf_token=" + url.QueryEscape(csrf)},
		{"device code entry", "POST", "/device", url.Values{"csrf_token": {csrf}, "user_code": {"BCDF-GHJK"}}.Encode()},
	}
	for _, lang := range []struct{ accept, want, dir string }{
		{"en", "try again in a moment", `dir="ltr"`}, {"ar", "يرجى المحاولة مرة أخرى", `dir="rtl"`},
	} {
		for _, p := range pages {
			ct := ""
			if p.method == "POST" {
				ct = form
			}
			status, h, body := do(p.method, e.URL+p.path, ct, p.body, http.Header{"Accept-Language": {lang.accept}})
			if status != http.StatusServiceUnavailable || h.Get("Retry-After") == "" ||
				!strings.Contains(body, lang.want) || !strings.Contains(body, lang.dir) {
				t.Errorf("%s (%s) during the cut: %d Retry-After %q, want the %s retry page; body %s",
					p.name, lang.accept, status, h.Get("Retry-After"), lang.accept, clipBody(body))
			}
		}
	}

	proxy.Restore()
	// Prompt recovery, with room for a loaded machine running the race
	// detector.
	deadline := time.Now().Add(10 * time.Second)
	for {
		next := e.refresh(tok.RefreshToken)
		if next.Status == http.StatusOK {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("refresh 10 s after the cut: %d %s", next.Status, next.Description)
		}
		time.Sleep(100 * time.Millisecond)
	}
	if status, _, body := do("GET", e.URL+"/account", "", "", nil); status != http.StatusOK {
		t.Fatalf("account page after the cut: %d %s", status, clipBody(body))
	}
}
