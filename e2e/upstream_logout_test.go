package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"
	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// Back-channel logout from an upstream (OpenID Connect Back-Channel Logout
// 1.0, bawwab as the relying party): signing out at the upstream ends the
// bawwab sessions of that upstream session, and bawwab's clients hear of
// it through bawwab's own back-channel logout.

// logoutReceiver is a downstream app's back-channel logout URI: it keeps
// the logout tokens bawwab posts.
func logoutReceiver(t *testing.T) (*httptest.Server, chan string) {
	t.Helper()
	got := make(chan string, 8)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.Method == http.MethodPost {
			got <- r.PostFormValue("logout_token")
		}
	}))
	t.Cleanup(rp.Close)
	return rp, got
}

// notesHearsLogouts registers uri as the Notes app's back-channel logout URI.
func notesHearsLogouts(t *testing.T, e *env, uri string) {
	t.Helper()
	c, err := e.Store.GetClient(context.Background(), "notes")
	if err != nil {
		t.Fatal(err)
	}
	c.BackchannelLogoutURI = uri
	if err := e.Store.UpdateClient(context.Background(), *c); err != nil {
		t.Fatal(err)
	}
}

// sessionOf returns the bawwab session of browser b, or nil.
func sessionOf(t *testing.T, e *env, b *browser) *storage.Session {
	t.Helper()
	u, _ := url.Parse(e.URL)
	for _, c := range b.Jar.Cookies(u) {
		if s, err := e.Store.GetSession(context.Background(), storage.Hash(c.Value)); err == nil {
			return s
		}
	}
	return nil
}

// postLogoutToken posts a logout token to bawwab's back-channel logout
// endpoint of upstream id and returns the status and error description.
func postLogoutToken(t *testing.T, e *env, id, raw string) (int, string) {
	t.Helper()
	resp, err := http.PostForm(e.URL+"/upstream/"+id+"/backchannel-logout", url.Values{"logout_token": {raw}})
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error       string `json:"error"`
		Description string `json:"error_description"`
	}
	b, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(b, &body)
	if resp.StatusCode != http.StatusOK && body.Error != "invalid_request" {
		t.Fatalf("refusal without invalid_request: %d %s", resp.StatusCode, b)
	}
	if cc := resp.Header.Get("Cache-Control"); cc != "no-store" {
		t.Fatalf("Cache-Control %q", cc)
	}
	return resp.StatusCode, body.Description
}

// TestUpstreamNodeBackchannelLogout: a person signed in to bawwab (and
// through it to Notes) through node-oidc-provider signs out there; the
// upstream's logout token ends the bawwab session of that upstream
// session, but not one of another upstream session of the same person, nor
// a local one; Notes receives bawwab's logout token (not the upstream's).
// The same logout token again, and an ID token of the upstream posted as a
// logout token (rightly signed, for bawwab's client id), are refused.
func TestUpstreamNodeBackchannelLogout(t *testing.T) {
	// The node OP's logout tokens pass through a relay that keeps a copy.
	var mu sync.Mutex
	var target string
	relayed := make(chan string, 4)
	relay := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tok := r.PostFormValue("logout_token")
		relayed <- tok
		mu.Lock()
		to := target
		mu.Unlock()
		resp, err := http.PostForm(to, url.Values{"logout_token": {tok}})
		if err != nil {
			w.WriteHeader(http.StatusBadGateway)
			return
		}
		resp.Body.Close()
		w.WriteHeader(resp.StatusCode)
	}))
	defer relay.Close()
	n := startNodeUpstreamVia(t, "corp", func(u string) string {
		mu.Lock()
		target = u
		mu.Unlock()
		return relay.URL + "/backchannel-logout"
	}, nodeJana, nodeAmal)
	e := startWithNodeUpstream(t, n)
	rp, downstream := logoutReceiver(t)
	notesHearsLogouts(t, e, rp.URL+"/logout")

	signIn := func(who upstreamUser) *browser {
		b := e.browser()
		r := e.notesRequest("openid email")
		p, _ := b.upstreamLogin(n, r, "corp", who)
		b.finishDownstream(p, r)
		return b
	}
	jana, janaElsewhere := signIn(nodeJana), signIn(nodeJana) // two upstream sessions, two sids
	s1, s2 := sessionOf(t, e, jana), sessionOf(t, e, janaElsewhere)
	if s1 == nil || s2 == nil || s1.Upstream.Upstream != "corp" || s1.Upstream.Subject != nodeJana.Username || s1.Upstream.SID == "" ||
		s1.Upstream.SID == s2.Upstream.SID {
		t.Fatalf("sessions of the upstream: %+v %+v", s1, s2)
	}
	local := e.browser()
	local.authorize(e.notesRequest("openid")) // amal, with her password
	if s := sessionOf(t, e, local); s == nil || s.Upstream != (storage.UpstreamSession{}) {
		t.Fatalf("a local session: %+v", s)
	}

	n.op.Logout(t, &http.Client{Jar: jana.Jar})
	var raw string
	select {
	case raw = <-relayed:
	case <-time.After(5 * time.Second):
		t.Fatal("the upstream sent no logout token")
	}
	if sessionOf(t, e, jana) != nil {
		t.Fatal("the session of the upstream session outlived it")
	}
	if p := jana.get("/account"); p.Status/100 != 3 || !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("the account page after the upstream's logout: %d %s", p.Status, p.Location)
	}
	if sessionOf(t, e, janaElsewhere) == nil || sessionOf(t, e, local) == nil {
		t.Fatal("another upstream session's, or a local, session ended")
	}
	select {
	case lt := <-downstream:
		var c backchannel.Claims
		if err := e.Server.Keys.Verify(context.Background(), lt, jwks.TypeLogout, &c); err != nil {
			t.Fatalf("Notes got a logout token that is not bawwab's: %v", err)
		}
		if _, ok := c.Events[backchannel.Event]; !ok || c.Issuer != e.URL || c.Subject != s1.UserID || !c.Audience.Contains("notes") {
			t.Fatalf("Notes' logout token: %+v", c)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("Notes heard nothing")
	}
	if n := auditCount(t, e, "upstream_logout", s1.UserID); n != 1 {
		t.Fatalf("%d upstream_logout events", n)
	}

	if status, why := postLogoutToken(t, e, "corp", raw); status != http.StatusBadRequest || !strings.Contains(why, "used before") {
		t.Fatalf("the logout token replayed: %d %s", status, why)
	}
	if status, why := postLogoutToken(t, e, "corp", nodeIDToken(t, n, janaElsewhere)); status != http.StatusBadRequest || !strings.Contains(why, "logout event") {
		t.Fatalf("an ID token as logout token: %d %s", status, why)
	}
	if sessionOf(t, e, janaElsewhere) == nil {
		t.Fatal("a refused token ended a session")
	}
}

// nodeIDToken returns an ID token the node OP issues to bawwab's client
// (for whoever is signed in there with b's cookies), as one who stole
// bawwab's client secret, or an ID token, would hold.
func nodeIDToken(t *testing.T, n *nodeUpstream, b *browser) string {
	t.Helper()
	ctx := context.Background()
	c := n.Config("corp")
	conf := &oauth2.Config{ClientID: c.ClientID, ClientSecret: c.ClientSecret, Scopes: []string{"openid"},
		Endpoint:    oauth2.Endpoint{AuthURL: n.op.Issuer + "/auth", TokenURL: n.op.Issuer + "/token"},
		RedirectURL: strings.TrimSuffix(b.e.URL, "/") + "/upstream/corp/callback"}
	verifier := oauth2.GenerateVerifier()
	cb, _ := url.Parse(n.op.Login(t, &http.Client{Jar: b.Jar}, conf.AuthCodeURL("s", oauth2.S256ChallengeOption(verifier)), nodeJana.Username))
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := tok.Extra("id_token").(string)
	if raw == "" {
		t.Fatal("no ID token")
	}
	return raw
}

// TestUpstreamBackchannelLogoutRefused: a logout token that is not valid
// (OpenID Connect Back-Channel Logout 1.0 §2.6) gets 400 invalid_request,
// is audited, and ends no session: signed by another key, for another
// audience, from another issuer, with a nonce, without the logout event
// (an ID token) or with it not an object, of another JWT type, naming
// neither sub nor sid, without jti, issued long ago, expired, replayed;
// and posted to an upstream that is not there. The fake OP signs what the
// test asks; the valid token at the end proves the refusals are the
// checks', not a broken endpoint.
func TestUpstreamBackchannelLogoutRefused(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	b := e.browser()
	r := e.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: "lina", Email: "lina@fake.example", EmailVerified: true})
	b.finishDownstream(p, r)
	if s := sessionOf(t, e, b); s == nil || s.Upstream.Subject != "sub-lina" {
		t.Fatalf("session %+v", s)
	}
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	now := time.Now()
	valid := func() map[string]any {
		return map[string]any{"iss": op.srv.URL, "aud": "bawwab", "sub": "sub-lina", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": "jti-" + token.NewID(), "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	}
	with := func(k string, v any) map[string]any {
		c := valid()
		if v == nil {
			delete(c, k)
		} else {
			c[k] = v
		}
		return c
	}
	idTokens := 0
	for _, tok := range op.issuedTokens() {
		if strings.Count(tok, ".") == 2 {
			idTokens++
			if status, why := postLogoutToken(t, e, "fake", tok); status != http.StatusBadRequest {
				t.Fatalf("the upstream's ID token as logout token: %d %s", status, why)
			}
		}
	}
	if idTokens == 0 {
		t.Fatal("the fake OP issued no ID token")
	}
	replayed := valid()
	replayed["sub"] = "sub-nobody"
	tests := []struct {
		name, why string
		raw       string
	}{
		{"another key", "keys", signLogout(t, other, "logout+jwt", valid())},
		{"another audience", "aud", signLogout(t, op.key, "logout+jwt", with("aud", "someone-else"))},
		{"another issuer", "iss", signLogout(t, op.key, "logout+jwt", with("iss", "https://evil.example"))},
		{"with a nonce", "nonce", signLogout(t, op.key, "logout+jwt", with("nonce", "n"))},
		{"no event", "events", signLogout(t, op.key, "logout+jwt", with("events", nil))},
		{"event not an object", "object", signLogout(t, op.key, "logout+jwt",
			with("events", map[string]any{"http://schemas.openid.net/event/backchannel-logout": "yes"}))},
		{"an access token's type", "typ", signLogout(t, op.key, "at+jwt", valid())},
		{"neither sub nor sid", "neither", signLogout(t, op.key, "logout+jwt", with("sub", nil))},
		{"no jti", "jti", signLogout(t, op.key, "logout+jwt", with("jti", nil))},
		{"issued long ago", "iat", signLogout(t, op.key, "logout+jwt", with("iat", now.Add(-time.Hour).Unix()))},
		{"expired", "expired", signLogout(t, op.key, "logout+jwt", with("exp", now.Add(-time.Minute).Unix()))},
		{"not a JWT", "JWT", "not.a.jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, why := postLogoutToken(t, e, "fake", tt.raw)
			if status != http.StatusBadRequest || !strings.Contains(why, tt.why) {
				t.Fatalf("%d %q, want 400 saying %q", status, why, tt.why)
			}
		})
	}
	t.Run("replayed jti", func(t *testing.T) {
		raw := signLogout(t, op.key, "logout+jwt", replayed)
		if status, why := postLogoutToken(t, e, "fake", raw); status != http.StatusOK {
			t.Fatalf("first: %d %s", status, why)
		}
		if status, why := postLogoutToken(t, e, "fake", raw); status != http.StatusBadRequest || !strings.Contains(why, "used before") {
			t.Fatalf("again: %d %s", status, why)
		}
	})
	t.Run("no such upstream", func(t *testing.T) {
		if status, _ := postLogoutToken(t, e, "nope", signLogout(t, op.key, "logout+jwt", valid())); status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
	})
	t.Run("no token", func(t *testing.T) {
		if status, _ := postLogoutToken(t, e, "fake", ""); status != http.StatusBadRequest {
			t.Fatalf("%d", status)
		}
	})
	if sessionOf(t, e, b) == nil {
		t.Fatal("a refused logout token ended the session")
	}
	if n := auditCount(t, e, "upstream_refused", ""); n < len(tests)+idTokens+1 {
		t.Errorf("%d refusals audited", n)
	}
	if status, why := postLogoutToken(t, e, "fake", signLogout(t, op.key, "logout+jwt", valid())); status != http.StatusOK || sessionOf(t, e, b) != nil {
		t.Fatalf("a valid logout token: %d %s, session %v", status, why, sessionOf(t, e, b))
	}
}

// signLogout signs claims with key as the fake OP's key k1, with typ.
func signLogout(t *testing.T, key *ecdsa.PrivateKey, typ string, claims map[string]any) string {
	t.Helper()
	s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: key}, (&jose.SignerOptions{}).WithType(jose.ContentType(typ)).WithHeader("kid", "k1"))
	if err != nil {
		t.Fatal(err)
	}
	payload, _ := json.Marshal(claims)
	obj, err := s.Sign(payload)
	if err != nil {
		t.Fatal(err)
	}
	raw, _ := obj.CompactSerialize()
	return raw
}

// TestUpstreamLogoutDuringSignIn: the upstream signs the person out while
// the sign-in through it waits here for the second factor; the code then
// gives no session (the logout was recorded before it ended the sessions
// there were, and the session checks it once stored). A new sign-in at
// the upstream, a new sid, works.
func TestUpstreamLogoutDuringSignIn(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	a := e.browser()
	a.authorize(e.notesRequest("openid"))
	secret, _ := a.enrolTOTP()
	if err := e.Store.CreateUpstreamLink(context.Background(), storage.UpstreamLink{Upstream: "fake", Subject: "sub-amal", UserID: e.UserID}); err != nil {
		t.Fatal(err)
	}
	amal := upstreamUser{Username: "amal", Email: "amal@example.com", EmailVerified: true}
	totpPage := func(b *browser, r authRequest) page {
		t.Helper()
		p, _ := b.upstreamLogin(op, r, "fake", amal)
		if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="code"`) {
			t.Fatalf("after the upstream: %d %s %s", p.Status, p.Location, p.Body)
		}
		return p
	}
	before, _ := e.Store.ListUserSessions(context.Background(), e.UserID)
	b := e.browser()
	r := e.notesRequest("openid")
	p := totpPage(b, r)
	now := time.Now()
	raw := signLogout(t, op.key, "logout+jwt", map[string]any{"iss": op.srv.URL, "aud": "bawwab", "sub": "sub-amal", "sid": op.lastSID(),
		"iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(), "jti": "jti-" + token.NewID(),
		"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}})
	if status, why := postLogoutToken(t, e, "fake", raw); status != http.StatusOK {
		t.Fatalf("logout: %d %s", status, why)
	}
	e.Clock.Advance(30 * time.Second) // a code of the next time step: the enrolment's is spent
	code, err := totp.GenerateCode(secret, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.answer(p, r, "totp", code)
	if p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, "You signed out at the provider") || sessionOf(t, e, b) != nil {
		t.Fatalf("the second factor after the upstream's logout: %d %s %s", p.Status, p.Location, p.Body)
	}
	if after, _ := e.Store.ListUserSessions(context.Background(), e.UserID); len(after) != len(before) {
		t.Fatalf("%d sessions, %d before", len(after), len(before))
	}
	// A new upstream session signs in.
	b2 := e.browser()
	r2 := e.notesRequest("openid")
	p = totpPage(b2, r2)
	e.Clock.Advance(30 * time.Second)
	code, _ = totp.GenerateCode(secret, e.Clock.Now())
	b2.finishDownstream(b2.answer(p, r2, "totp", code), r2)
	if s := sessionOf(t, e, b2); s == nil || s.Upstream.SID != op.lastSID() {
		t.Fatalf("a new sign-in: %+v", s)
	}
}

// TestUpstreamLogoutKeyRefetchBounded: logout tokens anyone may post,
// rightly addressed but signed by unknown keys (a known or a new kid),
// do not make bawwab fetch the upstream's keys once each (an
// unauthenticated endpoint turned into requests at the upstream); the
// upstream's keys are read again at most once in a while, and a token of
// its key still verifies.
func TestUpstreamLogoutKeyRefetchBounded(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	other, _ := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	claims := func() map[string]any {
		now := time.Now()
		return map[string]any{"iss": op.srv.URL, "aud": "bawwab", "sub": "sub-nobody", "iat": now.Unix(), "exp": now.Add(2 * time.Minute).Unix(),
			"jti": "jti-" + token.NewID(), "events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}
	}
	if status, why := postLogoutToken(t, e, "fake", signLogout(t, op.key, "logout+jwt", claims())); status != http.StatusOK {
		t.Fatalf("a valid logout token: %d %s", status, why)
	}
	before := op.jwksHits.Load()
	for i := range 30 {
		s, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: other},
			(&jose.SignerOptions{}).WithType("logout+jwt").WithHeader("kid", fmt.Sprintf("k%d", i%3)))
		if err != nil {
			t.Fatal(err)
		}
		payload, _ := json.Marshal(claims())
		obj, _ := s.Sign(payload)
		raw, _ := obj.CompactSerialize()
		if status, why := postLogoutToken(t, e, "fake", raw); status != http.StatusBadRequest || !strings.Contains(why, "keys") {
			t.Fatalf("forged %d: %d %s", i, status, why)
		}
	}
	if n := op.jwksHits.Load() - before; n > 2 {
		t.Errorf("30 forged logout tokens made bawwab fetch the upstream's keys %d times", n)
	}
	if status, why := postLogoutToken(t, e, "fake", signLogout(t, op.key, "logout+jwt", claims())); status != http.StatusOK {
		t.Fatalf("a valid logout token after the forged ones: %d %s", status, why)
	}
}
