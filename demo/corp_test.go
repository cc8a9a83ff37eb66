package demo

import (
	"context"
	"errors"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/upstream"
)

// TestCorpServesDiscovery starts Example Corp beside a demo bawwab's
// callback and checks what the "Continue with Example Corp" button will
// rely on: its discovery document names its own issuer; the returned secret
// authenticates the client; and Layla signs in by plain HTTP, offline, with
// the code flow (PKCE, state, nonce, iss in the response), giving an ID
// token verified with go-oidc and her verified email at userinfo.
func TestCorpServesDiscovery(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	const callback = "http://localhost:1/upstream/corp/callback"
	corp, err := StartCorp(ctx, CorpOptions{RedirectURI: callback, Password: &password.Params{Memory: 1024, Time: 1, Threads: 1}})
	if err != nil {
		t.Fatal(err)
	}
	provider, err := oidc.NewProvider(ctx, corp.Issuer)
	if err != nil {
		t.Fatalf("discovery: %v", err)
	}
	var meta struct {
		Issuer   string `json:"issuer"`
		IssParam bool   `json:"authorization_response_iss_parameter_supported"`
	}
	if err := provider.Claims(&meta); err != nil || meta.Issuer != corp.Issuer || !meta.IssParam || corp.ClientID != CorpClientID {
		t.Fatalf("discovery: %v %+v", err, meta)
	}

	conf := &oauth2.Config{ClientID: corp.ClientID, ClientSecret: corp.ClientSecret, Endpoint: provider.Endpoint(), RedirectURL: callback,
		Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}
	c := &http.Client{CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	resp, err := c.Get(conf.AuthCodeURL("st", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()), oidc.Nonce("n")))
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if loc, _ := url.Parse(resp.Header.Get("Location")); resp.StatusCode/100 != 3 || !strings.HasPrefix(loc.Path, "/login") {
		t.Fatalf("authorization request: %d %s", resp.StatusCode, resp.Header.Get("Location"))
	}

	var re *oauth2.RetrieveError
	bad := *conf
	bad.ClientSecret = "guessed"
	if _, err := bad.Exchange(ctx, "bogus", oauth2.VerifierOption(oauth2.GenerateVerifier())); !errors.As(err, &re) || re.ErrorCode != "invalid_client" {
		t.Fatalf("exchange with a wrong secret: %v", err)
	}

	// Layla signs in at Example Corp; the demo bawwab's side gets a code
	// for an ID token that asserts her verified email.
	verifier := oauth2.GenerateVerifier()
	cb := corpSignIn(t, conf.AuthCodeURL("st-2", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-2")))
	if cb.Get("state") != "st-2" || cb.Get("iss") != corp.Issuer {
		t.Fatalf("callback: %v", cb)
	}
	tok, err := conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: CorpClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatal(err)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil || idt.Nonce != "n-2" || info.Subject != idt.Subject || info.Email != CorpEmail || !info.EmailVerified {
		t.Fatalf("signed in as %+v (%v), nonce %q", info, err, idt.Nonce)
	}

	cancel()
	if err := corp.Wait(); err != nil {
		t.Fatalf("stopping: %v", err)
	}
}

// TestCorpNeedsAnotherHost: Example Corp and the demo bawwab on one host
// name would share (and overwrite) each other's cookies in a browser.
func TestCorpNeedsAnotherHost(t *testing.T) {
	for _, redirect := range []string{"http://127.0.0.1:8080/upstream/corp/callback", "", "/upstream/corp/callback"} {
		if _, err := StartCorp(context.Background(), CorpOptions{RedirectURI: redirect}); err == nil {
			t.Fatalf("StartCorp accepted redirect URI %q on its own host", redirect)
		}
	}
}

var csrfField = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)

// corpSignIn signs Layla in at Example Corp by HTTP, as a browser would,
// from the authorization request to the redirect to the callback, whose
// query it returns.
func corpSignIn(t *testing.T, authorizeURL string) url.Values {
	t.Helper()
	jar, _ := cookiejar.New(nil)
	c := &http.Client{Jar: jar, CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	next, form := authorizeURL, url.Values(nil)
	for range 8 {
		var resp *http.Response
		var err error
		if form == nil {
			resp, err = c.Get(next)
		} else {
			resp, err = c.PostForm(next, form)
		}
		if err != nil {
			t.Fatal(err)
		}
		body, _ := io.ReadAll(resp.Body)
		resp.Body.Close()
		base, _ := url.Parse(next)
		if resp.StatusCode/100 == 3 {
			loc, _ := base.Parse(resp.Header.Get("Location"))
			if loc.Host != base.Host {
				return loc.Query()
			}
			next, form = loc.String(), nil
			continue
		}
		m := csrfField.FindSubmatch(body)
		if resp.StatusCode != http.StatusOK || m == nil {
			t.Fatalf("%s: %d %s", next, resp.StatusCode, body)
		}
		form = url.Values{"csrf_token": {string(m[1])}, "req": {base.Query().Get("req")}}
		if strings.HasPrefix(base.Path, "/login") {
			form.Set("username", CorpUsername)
			form.Set("password", CorpPassword)
			next = base.ResolveReference(&url.URL{Path: "/login"}).String()
		} else {
			form["scope"] = []string{"email", "profile"}
			form.Set("action", "allow")
			next = base.ResolveReference(&url.URL{Path: "/consent"}).String()
		}
	}
	t.Fatal("no redirect to the callback within 8 requests")
	return nil
}

// TestCorpFederate: the demo's bawwab gets Example Corp as a valid OpenID
// Connect upstream that creates accounts, and may call exactly Example
// Corp's loopback host besides the public internet; Example Corp always
// takes the other loopback name than the demo's.
func TestCorpFederate(t *testing.T) {
	for demoHost, want := range map[string]string{"localhost": "127.0.0.1", "127.0.0.1": "localhost", "LOCALHOST": "127.0.0.1", "id.test": "127.0.0.1"} {
		if got := corpHost(demoHost); got != want {
			t.Errorf("corpHost(%q) = %q, want %q", demoHost, got, want)
		}
	}
	for issuer, host := range map[string]string{"http://127.0.0.1:8090": "127.0.0.1", "http://localhost:8090": "localhost"} {
		c := &Corp{Issuer: issuer, ClientID: CorpClientID, ClientSecret: "s3cret"}
		cfg := config.Default()
		cfg.Issuer = "http://localhost:8080"
		c.federate(&cfg)
		if err := cfg.Validate(); err != nil {
			t.Fatalf("the demo's config with Example Corp: %v", err)
		}
		if len(cfg.InsecureOutboundAllow) != 1 || cfg.InsecureOutboundAllow[0] != host {
			t.Errorf("insecure_outbound_allow = %v, want only %s", cfg.InsecureOutboundAllow, host)
		}
		u := cfg.Upstreams
		if len(u) != 1 || u[0].ID != CorpUpstream || u[0].Type != upstream.TypeOIDC || u[0].Issuer != issuer || !u[0].CreatesAccounts() ||
			!u[0].On() || u[0].Label("en") != CorpNameEN || u[0].Label("ar") != CorpNameAR || u[0].ClientSecret != "s3cret" {
			t.Errorf("upstreams = %+v", u)
		}
	}
}

// TestStartKeepsCorpApart: with a data directory, the demo keeps Example
// Corp's store in a directory of its own beside the demo's, and Wait
// returns once the demo stopped.
func TestStartKeepsCorpApart(t *testing.T) {
	dir := t.TempDir()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := Start(ctx, Options{DataDir: dir, Password: &password.Params{Memory: 1024, Time: 1, Threads: 1}})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	for _, f := range []string{filepath.Join(dir, "bawwab.db"), filepath.Join(dir, "corp", "bawwab.db")} {
		if _, err := os.Stat(f); err != nil {
			t.Errorf("store: %v", err)
		}
	}
	if !strings.HasPrefix(d.Corp.Issuer, "http://127.0.0.1:") {
		t.Errorf("Example Corp at %s beside the demo at %s", d.Corp.Issuer, d.AuthURL)
	}
	cancel()
	done := make(chan error, 1)
	go func() { done <- d.Wait() }()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("Wait: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("Wait did not return after the demo stopped")
	}
}
