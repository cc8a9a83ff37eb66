package e2e

import (
	"context"
	"crypto/rand"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// inside is a service on the server's network that no client may make
// bawwab call: it counts the connections and requests it receives.
type inside struct {
	*httptest.Server
	conns, requests atomic.Int32
}

func newInside(t *testing.T, tls bool, h http.HandlerFunc) *inside {
	t.Helper()
	in := &inside{}
	if h == nil {
		h = func(w http.ResponseWriter, _ *http.Request) {
			http.Error(w, "internal service: secret detail", http.StatusUnauthorized)
		}
	}
	in.Server = httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		in.requests.Add(1)
		h(w, r)
	}))
	in.Config.ConnState = func(_ net.Conn, s http.ConnState) {
		if s == http.StateNew {
			in.conns.Add(1)
		}
	}
	if tls {
		in.StartTLS()
	} else {
		in.Start()
	}
	t.Cleanup(in.Close)
	return in
}

func (in *inside) untouched(t *testing.T, what string) {
	t.Helper()
	if n, r := in.conns.Load(), in.requests.Load(); n != 0 || r != 0 {
		t.Errorf("%s: the internal service received %d connections and %d requests", what, n, r)
	}
}

func allLoopback(addrs []string) bool {
	for _, a := range addrs {
		if ip := net.ParseIP(a); ip == nil || !ip.IsLoopback() {
			return false
		}
	}
	return true
}

// wantNoLeak checks that an error description tells a client nothing of
// the server's network: no address, port, or error of a connection.
func wantNoLeak(t *testing.T, what, desc string, words ...string) {
	t.Helper()
	for _, w := range append(words, "127.0.0.1", "localhost", "refused", "dial", "tcp", "401", "Unauthorized", "secret detail",
		"certificate", "tls", "redirect", "timeout") {
		if strings.Contains(strings.ToLower(desc), strings.ToLower(w)) {
			t.Errorf("%s: error_description %q tells the client %q", what, desc, w)
		}
	}
}

// TestOutboundRefused: with no operator allowance, bawwab calls no
// internal address for a client (RFC 9700 §4.16). Registration and the
// admin API refuse URLs that name one or are not https; a client whose
// stored URL leads inside anyway (a host name resolving to loopback, as a
// DNS-rebinding name would, or a URL stored before) gets a generic error,
// and the internal service sees no connection at all: the address is
// checked at connect time. The refusal is audited as an attack.
func TestOutboundRefused(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.InsecureOutboundAllow = nil })
	ctx := context.Background()
	plain, tlsIn := newInside(t, false, nil), newInside(t, true, nil)
	_, port, _ := net.SplitHostPort(plain.Listener.Addr().String())
	_, tlsPort, _ := net.SplitHostPort(tlsIn.Listener.Addr().String())
	rebind := "https://localhost:" + tlsPort
	// A name that passes every URL check and resolves to loopback, as a
	// DNS-rebinding name would: this machine's name, when it resolves so.
	inward := ""
	if h, err := os.Hostname(); err == nil && !strings.Contains(strings.ToLower(h), "localhost") {
		if addrs, err := net.LookupHost(h); err == nil && len(addrs) > 0 && allLoopback(addrs) {
			inward = "https://" + h + ":" + tlsPort
		}
	}

	base := func(extra map[string]any) map[string]any {
		m := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "grant_types": []string{"authorization_code"}, "scope": "openid"}
		for k, v := range extra {
			m[k] = v
		}
		return m
	}
	keyed := func(uri string) map[string]any {
		return base(map[string]any{"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": uri})
	}
	for name, meta := range map[string]map[string]any{
		"jwks_uri at the admin listener":        keyed(e.AdminURL + "/admin/users"),
		"jwks_uri https on loopback":            keyed("https://127.0.0.1:" + tlsPort + "/jwks"),
		"jwks_uri at the metadata service":      keyed("https://169.254.169.254/latest/meta-data/"),
		"jwks_uri IPv4-mapped loopback":         keyed("https://[::ffff:127.0.0.1]:" + tlsPort + "/jwks"),
		"jwks_uri IPv6 loopback":                keyed("https://[::1]/jwks"),
		"jwks_uri unspecified":                  keyed("https://0.0.0.0:" + tlsPort + "/jwks"),
		"jwks_uri over http":                    keyed("http://keys.example/jwks"),
		"backchannel_logout_uri private":        base(map[string]any{"backchannel_logout_uri": "https://10.0.0.7/logout"}),
		"backchannel_logout_uri CGNAT":          base(map[string]any{"backchannel_logout_uri": "https://100.64.0.1/logout"}),
		"backchannel_logout_uri ULA":            base(map[string]any{"backchannel_logout_uri": "https://[fd00::1]/logout"}),
		"backchannel_logout_uri http":           base(map[string]any{"backchannel_logout_uri": plain.URL + "/logout"}),
		"sector_identifier_uri on loopback":     base(map[string]any{"subject_type": "pairwise", "sector_identifier_uri": plain.URL + "/sector.json"}),
		"sector_identifier_uri by name":         base(map[string]any{"subject_type": "pairwise", "sector_identifier_uri": rebind + "/sector.json"}),
		"sector_identifier_uri over http":       base(map[string]any{"subject_type": "pairwise", "sector_identifier_uri": "http://sector.example/s.json"}),
		"sector_identifier_uri with a userinfo": base(map[string]any{"subject_type": "pairwise", "sector_identifier_uri": "https://a@sector.example/s.json"}),
	} {
		r := e.register("POST", "/register", registrationToken, meta)
		if r.Status != 400 || r.Error != "invalid_client_metadata" {
			t.Errorf("registration, %s: %d %s %s", name, r.Status, r.Error, r.Description)
		}
		wantNoLeak(t, name, r.Description, port, tlsPort)
	}
	plain.untouched(t, "registration")
	tlsIn.untouched(t, "registration")
	// The admin API applies the same rules.
	status, body := e.adminCall("POST", "/admin/clients", adminToken, map[string]any{"client_id": "inward", "redirect_uris": []string{"https://app.example/cb"},
		"token_endpoint_auth_method": "private_key_jwt", "jwks_uri": "https://127.0.0.1:" + tlsPort + "/jwks"}, nil)
	if status != 400 {
		t.Errorf("admin API, jwks_uri on loopback: %d %s", status, body)
	}

	// Clients whose URLs lead inside although registration would refuse
	// them now: each assertion is refused with the same generic words.
	key := newKeyPair(t, "k1")
	for id, uri := range map[string]string{
		"via-admin-listener": e.AdminURL + "/admin/users",
		"via-loopback":       plain.URL + "/jwks",
		"via-localhost":      rebind + "/jwks",
		"via-hostname":       inward + "/jwks",
	} {
		if uri == "/jwks" {
			t.Log("this machine's name does not resolve to loopback: the connect-time check is covered by internal/outbound TestRebinding only")
			continue
		}
		if err := e.Store.CreateClient(ctx, storage.Client{ID: id, Name: id, GrantTypes: []string{"client_credentials"}, Scopes: []string{"files.read"},
			AuthMethod: clientauth.MethodPrivateKeyJWT, JWKSURI: uri, CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
		r := e.token(assertionForm(key.assertion(t, id, e.URL+"/token", nil)), "", "")
		if r.Status != 401 || r.Error != "invalid_client" || r.AccessToken != "" {
			t.Errorf("%s: %d %s %s", id, r.Status, r.Error, r.Description)
		}
		wantNoLeak(t, id, r.Description, port, tlsPort, strings.TrimPrefix(e.AdminURL, "http://"), "loopback")
		if evs, _ := e.Store.ListAuditEvents(ctx, storage.AuditFilter{ClientID: id, Type: "outbound_refused"}); len(evs) != 1 {
			t.Errorf("%s: %d outbound_refused audit events, want 1", id, len(evs))
		}
	}
	plain.untouched(t, "jwks_uri")
	tlsIn.untouched(t, "jwks_uri by a name resolving to loopback")
	if !strings.Contains(e.Logs.String(), "is a loopback address") {
		t.Error("the log lacks the reason of the refusal")
	}

	// Back-channel logout to a loopback address is not delivered.
	if err := e.Store.CreateClient(ctx, storage.Client{ID: "feed", Name: "Feed", Public: true, RedirectURIs: []string{"https://feed.example/cb"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, BackchannelLogoutURI: plain.URL + "/logout", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.authorize(authRequest{ClientID: "feed", RedirectURI: "https://feed.example/cb", Scope: "openid", State: "s", Verifier: strings.Repeat("f", 43)})
	if p := b.post("/logout", url.Values{"csrf_token": {csrfOf(t, b.get("/account"))}}); p.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.Logs.String(), "back-channel logout not delivered") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	if !strings.Contains(e.Logs.String(), "back-channel logout not delivered") {
		t.Error("the refused back-channel logout was not logged")
	}
	plain.untouched(t, "back-channel logout")

	// A request object of a client whose jwks_uri leads inside: refused,
	// and the page tells nothing of why the keys could not be had.
	if err := e.Store.CreateClient(ctx, storage.Client{ID: "jar-inward", Name: "JAR", RedirectURIs: []string{"https://jar.example/cb"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, AuthMethod: clientauth.MethodPrivateKeyJWT,
		JWKSURI: plain.URL + "/jwks", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	ro := signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
		(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"), map[string]any{"iss": "jar-inward", "aud": e.URL, "client_id": "jar-inward",
			"response_type": "code", "redirect_uri": "https://jar.example/cb", "scope": "openid", "state": "st", "jti": rand.Text(),
			"code_challenge": token.S256(strings.Repeat("j", 43)), "code_challenge_method": "S256", "exp": time.Now().Add(time.Minute).Unix()})
	p := b.get("/authorize?" + url.Values{"client_id": {"jar-inward"}, "request": {ro}}.Encode())
	if strings.Contains(p.Location, "code=") || strings.HasPrefix(p.Location, "/login") {
		t.Errorf("request object verified with keys from a loopback jwks_uri: %d %s", p.Status, p.Location)
	}
	for _, w := range []string{port, "401", "Unauthorized", "refused", "secret detail", "127.0.0.1", "loopback"} {
		if strings.Contains(p.Body+p.Location, w) {
			t.Errorf("the answer to a request object tells %q: %d %s %s", w, p.Status, p.Location, p.Body)
		}
	}
	plain.untouched(t, "request object")

	// request_uri at /authorize names only pushed requests: a URL is
	// never fetched.
	for _, ru := range []string{plain.URL + "/request", rebind + "/request", "urn:example:elsewhere"} {
		q := url.Values{"client_id": {"notes"}, "request_uri": {ru}}
		if p := b.get("/authorize?" + q.Encode()); p.Status == http.StatusFound && strings.HasPrefix(p.Location, "/login") {
			t.Errorf("request_uri %s accepted", ru)
		}
	}
	plain.untouched(t, "request_uri")
	tlsIn.untouched(t, "request_uri")
}

// TestOutboundAllowed: the operator allows loopback (as the tests do), and
// still no redirect is followed, and what a client's server answers (a
// status, an error text, a refused connection) never reaches the client.
func TestOutboundAllowed(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	key := newKeyPair(t, "k1")
	// The redirect target would serve the right keys: following the
	// redirect would let the assertion through.
	target := newInside(t, false, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(jwkSet(key))) })
	redirect := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+r.URL.Path, http.StatusTemporaryRedirect)
	}))
	defer redirect.Close()
	var failures atomic.Int32
	failing := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		failures.Add(1)
		http.Error(w, "internal service: secret detail", http.StatusUnauthorized)
	}))
	defer failing.Close()
	huge := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		_, _ = w.Write([]byte(`{"keys":[],"pad":"` + strings.Repeat("x", 100<<10) + `"}`))
	}))
	defer huge.Close()
	closed := listen(t)
	closedURL := "http://" + closed.Addr().String() + "/jwks"
	closed.Close()

	for id, uri := range map[string]string{
		"redirected": redirect.URL + "/jwks",
		"failing":    failing.URL + "/jwks",
		"huge":       huge.URL + "/jwks",
		"closed":     closedURL,
	} {
		if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: id, GrantTypes: []string{"client_credentials"}, Scopes: []string{"files.read"},
			AuthMethod: "private_key_jwt", JWKSURI: uri, Outbound: e.Server.Outbound}, scope.Default()); err != nil {
			t.Fatalf("%s: %v", id, err)
		}
		r := e.token(assertionForm(key.assertion(t, id, e.URL+"/token", nil)), "", "")
		if r.Status != 401 || r.Error != "invalid_client" {
			t.Errorf("%s: %d %s %s", id, r.Status, r.Error, r.Description)
		}
		u, _ := url.Parse(uri)
		wantNoLeak(t, id, r.Description, u.Port(), "large", "bytes", "loopback")
	}
	target.untouched(t, "redirect from jwks_uri")
	// A failing jwks_uri is not fetched again at once: assertions cannot
	// make this server send one request each to a third party.
	for range 5 {
		if r := e.token(assertionForm(key.assertion(t, "failing", e.URL+"/token", nil)), "", ""); r.Status != 401 {
			t.Fatalf("failing jwks_uri: %d", r.Status)
		}
	}
	if n := failures.Load(); n != 1 {
		t.Errorf("a failing jwks_uri was fetched %d times for 6 assertions, want 1", n)
	}

	// Back-channel logout: a redirect is not followed either.
	bcTarget := newInside(t, false, func(http.ResponseWriter, *http.Request) {})
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, bcTarget.URL+"/logout", http.StatusTemporaryRedirect)
	}))
	defer rp.Close()
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "feed", Name: "Feed", Public: true, RedirectURIs: []string{"https://feed.example/cb"},
		Scopes: []string{"openid"}, BackchannelLogoutURI: rp.URL + "/logout", Outbound: e.Server.Outbound}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.authorize(authRequest{ClientID: "feed", RedirectURI: "https://feed.example/cb", Scope: "openid", State: "s", Verifier: strings.Repeat("f", 43)})
	if p := b.post("/logout", url.Values{"csrf_token": {csrfOf(t, b.get("/account"))}}); p.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.Status)
	}
	deadline := time.Now().Add(5 * time.Second)
	for !strings.Contains(e.Logs.String(), "back-channel logout not delivered") && time.Now().Before(deadline) {
		time.Sleep(20 * time.Millisecond)
	}
	bcTarget.untouched(t, "redirect from backchannel_logout_uri")
	if !strings.Contains(e.Logs.String(), "redirects are not followed") {
		t.Error("the log lacks why the logout token was not delivered")
	}
}
