package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// Sign-in through an upstream that is an independent implementation of
// OpenID Connect, not bawwab: node-oidc-provider (nodeOP). These tests
// skip where Node.js is missing and fail then under BAWWAB_REQUIRE_ALL=1
// (startNodeOP).
//
// What the node OP cannot be made to do, because it is a correct
// provider, stays with the fake OP of upstream_harness_test.go: an ID
// token it signs with another iss or a nonce other than the one it was
// sent, and a missing iss in the authorization response
// (TestUpstreamCallbackRefused). A wrong nonce (the request's altered on
// its way) and a wrong iss (a mix-up through a second node OP) are tested
// with the node OP too (TestUpstreamNodeCallbackRefused).

// nodeUpstream is the node OP as an [upstreamOP]. The node OP takes its
// clients' redirect URIs when it starts, and bawwab needs the node OP's
// issuer before it starts: so bawwab's listener is made first, the node
// OP is started with bawwab's callback (and back-channel logout URI) on
// it, and startWithNodeUpstream serves bawwab on that listener.
type nodeUpstream struct {
	op *nodeOP
	id string
	l  net.Listener // bawwab's, until startWithNodeUpstream serves on it
}

const nodeUpstreamSecret = "node-upstream-secret-0123456789abcdef"

// nodeUpstreamCallback and nodeUpstreamLogout are bawwab's URLs of
// upstream id on the listener l.
func nodeUpstreamCallback(l net.Listener, id string) string {
	return "http://" + l.Addr().String() + "/upstream/" + id + "/callback"
}

func nodeUpstreamLogout(l net.Listener, id string) string {
	return "http://" + l.Addr().String() + "/upstream/" + id + "/backchannel-logout"
}

// startNodeUpstream starts the node OP as upstream id of a bawwab yet to
// be started, with people (signing in by their Username) and bawwab as a
// confidential client with back-channel logout (sid in its tokens).
func startNodeUpstream(t *testing.T, id string, people ...upstreamUser) *nodeUpstream {
	t.Helper()
	return startNodeUpstreamVia(t, id, nil, people...)
}

// startNodeUpstreamVia is startNodeUpstream where the node OP posts its
// logout tokens to via(bawwab's back-channel logout URI) instead.
func startNodeUpstreamVia(t *testing.T, id string, via func(string) string, people ...upstreamUser) *nodeUpstream {
	t.Helper()
	l := listen(t)
	logout := nodeUpstreamLogout(l, id)
	if via != nil {
		logout = via(logout)
	}
	cfg := nodeOPConfig{Clients: []upstreamClient{{ID: "bawwab", Secret: nodeUpstreamSecret, RedirectURIs: []string{nodeUpstreamCallback(l, id)},
		BackchannelLogoutURI: logout, BackchannelLogoutSessionRequired: true}}}
	for _, p := range people {
		cfg.Accounts = append(cfg.Accounts, upstreamAccount{Sub: p.Username, Email: p.Email, EmailVerified: p.EmailVerified, Name: p.Username})
	}
	op := startNodeOP(t, cfg)
	t.Cleanup(func() { l.Close() })
	return &nodeUpstream{op: op, id: id, l: l}
}

func (n *nodeUpstream) Config(id string) upstream.Config {
	return upstream.Config{ID: id, Name: map[string]string{"en": "Node Corp", "ar": "شركة نود"}, Type: upstream.TypeOIDC,
		Issuer: n.op.Issuer, ClientID: "bawwab", ClientSecret: nodeUpstreamSecret}
}

// Register checks that callback is the one the node OP started with.
func (n *nodeUpstream) Register(t *testing.T, callback string) {
	t.Helper()
	if callback != nodeUpstreamCallback(n.l, n.id) {
		t.Fatalf("the node OP knows the callback %s, not %s", nodeUpstreamCallback(n.l, n.id), callback)
	}
}

// SignIn signs who in at the node OP with the browser's cookies, so that
// the browser keeps the upstream session as a person's would.
func (n *nodeUpstream) SignIn(t *testing.T, b *browser, authURL string, who upstreamUser) string {
	t.Helper()
	return n.op.Login(t, &http.Client{Jar: b.Jar, Timeout: 10 * time.Second}, authURL, who.Username)
}

// startWithNodeUpstream starts bawwab on n's listener, signing in through
// n as upstream n.id.
func startWithNodeUpstream(t *testing.T, n *nodeUpstream, configure ...func(*config.Config)) *env {
	t.Helper()
	if n.l == nil {
		t.Fatal("a node upstream serves one bawwab")
	}
	store := sqliteStore(t)
	c := n.Config(n.id)
	e := startNode(t, store, n.l, "", &clock{}, append([]func(*config.Config){func(cfg *config.Config) { cfg.Upstreams = []upstream.Config{c} }},
		configure...)...)
	n.Register(t, e.URL+"/upstream/"+n.id+"/callback")
	n.l = nil
	return e
}

var (
	nodeJana = upstreamUser{Username: "jana", Email: "jana@corp.example", EmailVerified: true}
	// nodeAmal has the verified address of the local amal; nodeMallory
	// the same address, which the upstream did not verify.
	nodeAmal    = upstreamUser{Username: "amal-at-corp", Email: "amal@example.com", EmailVerified: true}
	nodeMallory = upstreamUser{Username: "mallory", Email: "amal@example.com"}
)

// TestUpstreamNodeAccounts signs in through node-oidc-provider: the first
// sign-in creates the account just in time, the second (another browser,
// a new upstream session) reuses it; a verified address of a local
// account links only after the person signs in to it locally; an
// unverified one neither links nor creates an account.
func TestUpstreamNodeAccounts(t *testing.T) {
	n := startNodeUpstream(t, "corp", nodeJana, nodeAmal, nodeMallory)
	e := startWithNodeUpstream(t, n)
	ctx := context.Background()

	t.Run("first sign-in creates, second reuses", func(t *testing.T) {
		before := countUsers(t, e)
		var first string
		for i := range 2 {
			b := e.browser()
			r := e.notesRequest("openid email profile")
			p, _ := b.upstreamLogin(n, r, "corp", nodeJana)
			claims := claimsOf(t, b.finishDownstream(p, r).IDToken)
			sub, _ := claims["sub"].(string)
			amr, _ := claims["amr"].([]any)
			if claims["iss"] != e.URL || claims["email"] != nodeJana.Email || len(amr) != 1 || amr[0] != "fed" || sub == "" || sub == nodeJana.Username {
				t.Fatalf("sign-in %d: claims %v", i, claims)
			}
			if i == 0 {
				first = sub
			} else if sub != first {
				t.Fatalf("second sign-in is %s, want %s", sub, first)
			}
		}
		if got := countUsers(t, e); got != before+1 {
			t.Fatalf("%d users after two sign-ins, want %d", got, before+1)
		}
		if l := linkOf(t, e, "corp", nodeJana.Username); l == nil || l.UserID != first {
			t.Fatalf("link %+v, want one to %s", l, first)
		}
		if auditCount(t, e, "upstream_account", first) != 1 {
			t.Error("the account's creation is not in the audit log once")
		}
	})

	t.Run("verified address links after local proof", func(t *testing.T) {
		b := e.browser()
		r := e.notesRequest("openid email")
		p, _ := b.upstreamLogin(n, r, "corp", nodeAmal)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "amal@example.com") {
			t.Fatalf("link page: %d %s", p.Status, p.Body)
		}
		if linkOf(t, e, "corp", nodeAmal.Username) != nil {
			t.Fatal("linked before the local proof")
		}
		loginURL := loginLinkOf(t, p)
		if p := b.login(loginURL, userName, "not the password"); p.Status != http.StatusUnauthorized || linkOf(t, e, "corp", nodeAmal.Username) != nil {
			t.Fatalf("a wrong password: %d, or it linked", p.Status)
		}
		b.finishDownstream(b.confirmLink(b.login(loginURL, userName, userPassword), "link"), r)
		if l := linkOf(t, e, "corp", nodeAmal.Username); l == nil || l.UserID != e.UserID {
			t.Fatalf("link after the local proof: %+v", l)
		}
		b2 := e.browser()
		r2 := e.notesRequest("openid")
		p, _ = b2.upstreamLogin(n, r2, "corp", nodeAmal)
		if sub := claimsOf(t, b2.finishDownstream(p, r2).IDToken)["sub"]; sub != e.UserID {
			t.Fatalf("linked sign-in is %v, want %s", sub, e.UserID)
		}
	})

	t.Run("unverified address refused", func(t *testing.T) {
		before := countUsers(t, e)
		sessions, _ := e.Store.ListUserSessions(ctx, e.UserID)
		p, _ := e.browser().upstreamLogin(n, e.notesRequest("openid"), "corp", nodeMallory)
		if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "was not verified") || strings.Contains(p.Location, "/consent") {
			t.Fatalf("unverified address: %d %s %s", p.Status, p.Location, p.Body)
		}
		if countUsers(t, e) != before || linkOf(t, e, "corp", nodeMallory.Username) != nil {
			t.Fatal("an unverified address made an account or a link")
		}
		if s, _ := e.Store.ListUserSessions(ctx, e.UserID); len(s) != len(sessions) {
			t.Fatalf("%d sessions of amal, %d before", len(s), len(sessions))
		}
	})
}

// TestUpstreamNodeCallbackRefused: with node-oidc-provider's real
// authorization responses, a tampered state, a replayed callback, an ID
// token with another nonce (the nonce of the authorization request
// altered on its way) and a mix-up (bawwab's request taken to another
// node-oidc-provider, which knows bawwab's callback, and its answer sent
// back: iss is not the upstream's) are refused, audited, and sign nobody
// in. An upstream that lies in its own ID tokens (another iss, another
// nonce) is the fake OP's: TestUpstreamCallbackRefused.
func TestUpstreamNodeCallbackRefused(t *testing.T) {
	n := startNodeUpstream(t, "corp", nodeJana)
	e := startWithNodeUpstream(t, n)
	refused := func(t *testing.T, p page, what, why string) {
		t.Helper()
		if p.Status != http.StatusUnauthorized || strings.Contains(p.Location, "/consent") || !strings.Contains(p.Body, `id="notice-error"`) {
			t.Fatalf("%s: %d %s %s", what, p.Status, p.Location, p.Body)
		}
		ev, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: "upstream_refused"})
		if len(ev) == 0 || !strings.Contains(ev[0].Detail, why) {
			t.Fatalf("%s: refused events %+v, want the newest to say %q", what, ev, why)
		}
	}
	t.Run("tampered state", func(t *testing.T) {
		b := e.browser()
		cb := n.SignIn(t, b, b.startUpstreamLogin(e.notesRequestLogin(t, b), "corp"), nodeJana)
		u, _ := url.Parse(cb)
		q := u.Query()
		if q.Get("code") == "" || q.Get("iss") != n.op.Issuer {
			t.Fatalf("the node OP's answer: %s", cb)
		}
		q.Set("state", q.Get("state")+"x")
		u.RawQuery = q.Encode()
		refused(t, b.get(u.String()), "tampered state", "not this browser's")
		if s, _ := e.Store.ListUserSessions(context.Background(), e.UserID); len(s) != 0 {
			t.Fatal("a session")
		}
	})
	t.Run("another nonce", func(t *testing.T) {
		b := e.browser()
		u, _ := url.Parse(b.startUpstreamLogin(e.notesRequestLogin(t, b), "corp"))
		q := u.Query()
		q.Set("nonce", "the-attackers-nonce")
		u.RawQuery = q.Encode()
		refused(t, b.get(n.SignIn(t, b, u.String(), nodeJana)), "another nonce", "nonce")
	})
	t.Run("mix-up", func(t *testing.T) {
		rogue := startNodeOP(t, nodeOPConfig{Clients: []upstreamClient{{ID: "bawwab", Secret: nodeUpstreamSecret,
			RedirectURIs: []string{e.URL + "/upstream/corp/callback"}}}, Accounts: []upstreamAccount{{Sub: nodeJana.Username, Email: nodeJana.Email, EmailVerified: true}}})
		b := e.browser()
		u, _ := url.Parse(b.startUpstreamLogin(e.notesRequestLogin(t, b), "corp"))
		r, _ := url.Parse(rogue.Issuer)
		u.Host = r.Host
		cb := rogue.Login(t, &http.Client{Jar: b.Jar}, u.String(), nodeJana.Username)
		if c, _ := url.Parse(cb); c.Query().Get("iss") != rogue.Issuer || c.Query().Get("code") == "" {
			t.Fatalf("the rogue's answer: %s", cb)
		}
		refused(t, b.get(cb), "mix-up", "RFC 9207")
	})
	t.Run("replayed callback", func(t *testing.T) {
		b := e.browser()
		cb := n.SignIn(t, b, b.startUpstreamLogin(e.notesRequestLogin(t, b), "corp"), nodeJana)
		cbURL, _ := url.Parse(cb)
		saved := b.Jar.Cookies(cbURL) // the state cookie, as someone who copied it holds it
		if first := b.get(cb); !strings.HasPrefix(first.Location, "/consent") {
			t.Fatalf("first callback: %d %s", first.Status, first.Body)
		}
		replay := e.browser()
		replay.Jar.SetCookies(cbURL, saved)
		refused(t, replay.get(cb), "replayed callback with the cookie", "used before")
		refused(t, b.get(cb), "replayed callback in the same browser", "not this browser's")
	})
}

// TestUpstreamNodeDownstreamLibraries: a downstream app built on x/oauth2
// and go-oidc signs in through bawwab, who signed the person in at
// node-oidc-provider; everything the app receives is bawwab's: its ID
// token is signed by bawwab (not by the upstream's keys), names bawwab
// and bawwab's subject, and its access token is refused by the upstream.
func TestUpstreamNodeDownstreamLibraries(t *testing.T) {
	n := startNodeUpstream(t, "corp", nodeJana)
	e := startWithNodeUpstream(t, n)
	ctx := context.Background()
	provider, conf, verifier, authPath := libraryApp(t, e)
	b := e.browser()
	p := b.get(authPath)
	p = b.get(n.SignIn(t, b, b.startUpstreamLogin(p.Location, "corp"), nodeJana))
	p = b.consent(p.Location, true, "openid", "email", "profile")
	cb, _ := url.Parse(p.Location)
	if cb.Query().Get("iss") != e.URL && cb.Query().Has("iss") {
		t.Fatalf("the app's callback names another issuer: %s", p.Location)
	}
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "notes"}).Verify(ctx, rawID)
	if err != nil || idt.Nonce != "lib-nonce" || idt.Subject == nodeJana.Username || idt.Issuer != e.URL {
		t.Fatalf("ID token: %v %+v", err, idt)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || info.Email != nodeJana.Email || info.Subject != idt.Subject {
		t.Fatalf("userinfo: %v %+v", err, info)
	}
	// Nothing the app holds is the upstream's.
	if _, err := oidc.NewRemoteKeySet(ctx, n.op.Issuer+"/jwks").VerifySignature(ctx, rawID); err == nil {
		t.Fatal("the app's ID token verifies with the upstream's keys")
	}
	upstreamOP, err := oidc.NewProvider(ctx, n.op.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := upstreamOP.UserInfo(ctx, oauth2.StaticTokenSource(tok)); err == nil {
		t.Fatal("the upstream accepts the app's access token")
	}
	var all map[string]any
	if err := idt.Claims(&all); err != nil {
		t.Fatal(err)
	}
	raw, _ := json.Marshal(all)
	for _, s := range []string{string(raw), tok.AccessToken, tok.RefreshToken} {
		if strings.Contains(s, n.op.Issuer) || strings.Contains(s, strings.TrimPrefix(n.op.Issuer, "http://")) {
			t.Fatalf("the upstream shows through: %s", s)
		}
	}
	// The upstream did sign the person in: the test proves something.
	if linkOf(t, e, "corp", nodeJana.Username) == nil {
		t.Fatal("no sign-in through the upstream")
	}
}
