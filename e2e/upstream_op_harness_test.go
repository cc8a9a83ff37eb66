package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/cookiejar"
	"net/http/httptest"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// The upstream OP's fixture: one confidential client and two people, one
// of whom has not verified their email.
const (
	upstreamClientID     = "bawwab"
	upstreamClientSecret = "upstream-secret-for-tests-0123456789abcdef"
	upstreamRedirect     = "http://127.0.0.1:1/upstream/corp/callback"
)

var (
	upstreamAmal = upstreamAccount{Sub: "corp-amal", Email: "amal@example.com", EmailVerified: true, Name: "Amal from Corp"}
	upstreamEve  = upstreamAccount{Sub: "corp-eve", Email: "amal@example.com", EmailVerified: false, Name: "Eve"}
)

func upstreamTestConfig() nodeOPConfig {
	return nodeOPConfig{
		Clients:  []upstreamClient{{ID: upstreamClientID, Secret: upstreamClientSecret, RedirectURIs: []string{upstreamRedirect}}},
		Accounts: []upstreamAccount{upstreamAmal, upstreamEve},
	}
}

func jarClient(t *testing.T) *http.Client {
	t.Helper()
	jar, err := cookiejar.New(nil)
	if err != nil {
		t.Fatal(err)
	}
	return &http.Client{Jar: jar}
}

// upstreamRP is a relying party of the upstream OP built from the standard
// libraries (x/oauth2 and go-oidc), as bawwab's side of the federation is.
type upstreamRP struct {
	provider *oidc.Provider
	conf     *oauth2.Config
}

func newUpstreamRP(t *testing.T, op *nodeOP) *upstreamRP {
	t.Helper()
	provider, err := oidc.NewProvider(context.Background(), op.Issuer)
	if err != nil {
		t.Fatal(err)
	}
	return &upstreamRP{provider: provider, conf: &oauth2.Config{ClientID: upstreamClientID, ClientSecret: upstreamClientSecret,
		Endpoint: provider.Endpoint(), RedirectURL: upstreamRedirect, Scopes: []string{oidc.ScopeOpenID, "email", "profile"}}}
}

// signIn runs the code flow with PKCE, state and nonce for account and
// returns the verified ID token, the tokens and the callback's query.
func (rp *upstreamRP) signIn(t *testing.T, op *nodeOP, client *http.Client, account string) (*oidc.IDToken, *oauth2.Token, url.Values) {
	t.Helper()
	verifier := oauth2.GenerateVerifier()
	state, nonce := oauth2.GenerateVerifier(), oauth2.GenerateVerifier()
	cb := callbackQuery(t, op.Login(t, client, rp.conf.AuthCodeURL(state, oauth2.S256ChallengeOption(verifier), oidc.Nonce(nonce)), account))
	if cb.Get("state") != state || cb.Get("iss") != op.Issuer || cb.Get("code") == "" {
		t.Fatalf("callback: %v", cb)
	}
	ctx := context.Background()
	tok, err := rp.conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("exchange: %v", err)
	}
	raw, _ := tok.Extra("id_token").(string)
	idt, err := rp.provider.Verifier(&oidc.Config{ClientID: upstreamClientID}).Verify(ctx, raw)
	if err != nil {
		t.Fatalf("ID token: %v", err)
	}
	if idt.Nonce != nonce || idt.Issuer != op.Issuer {
		t.Fatalf("ID token nonce %q issuer %q", idt.Nonce, idt.Issuer)
	}
	return idt, tok, cb
}

func callbackQuery(t *testing.T, callback string) url.Values {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil {
		t.Fatal(err)
	}
	if got := u.Scheme + "://" + u.Host + u.Path; got != upstreamRedirect {
		t.Fatalf("redirected to %s, not to the client's callback", callback)
	}
	return u.Query()
}

// TestUpstreamOP proves the federation tests' upstream OP on its own:
// an RP built from x/oauth2 and go-oidc signs two people in through it by
// HTTP alone (code flow with PKCE, state and nonce; the ID token verified
// with the upstream's keys; iss in the authorization response), and the
// upstream refuses what a real one refuses.
func TestUpstreamOP(t *testing.T) {
	op := startNodeOP(t, upstreamTestConfig())
	rp := newUpstreamRP(t, op)
	ctx := context.Background()

	t.Run("discovery", func(t *testing.T) {
		var meta struct {
			IssParam   bool     `json:"authorization_response_iss_parameter_supported"`
			PKCE       []string `json:"code_challenge_methods_supported"`
			Backchanel bool     `json:"backchannel_logout_supported"`
		}
		if err := rp.provider.Claims(&meta); err != nil {
			t.Fatal(err)
		}
		if !meta.IssParam || len(meta.PKCE) != 1 || meta.PKCE[0] != "S256" || !meta.Backchanel {
			t.Fatalf("discovery: %+v", meta)
		}
	})

	t.Run("verified email", func(t *testing.T) {
		client := jarClient(t)
		idt, tok, _ := rp.signIn(t, op, client, upstreamAmal.Sub)
		if idt.Subject != upstreamAmal.Sub {
			t.Fatalf("sub %q", idt.Subject)
		}
		info, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		var claims struct {
			Name string `json:"name"`
		}
		if err := info.Claims(&claims); err != nil {
			t.Fatal(err)
		}
		if info.Subject != upstreamAmal.Sub || info.Email != upstreamAmal.Email || !info.EmailVerified || claims.Name != upstreamAmal.Name {
			t.Fatalf("userinfo: %+v %+v", info, claims)
		}
		// The same browser signs in again without the form: the upstream
		// remembers its session, as a real one does.
		again, _, _ := rp.signIn(t, op, client, "nobody")
		if again.Subject != upstreamAmal.Sub {
			t.Fatalf("second sign-in: sub %q", again.Subject)
		}
	})

	t.Run("unverified email", func(t *testing.T) {
		_, tok, _ := rp.signIn(t, op, jarClient(t), upstreamEve.Sub)
		info, err := rp.provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
		if err != nil {
			t.Fatal(err)
		}
		if info.Subject != upstreamEve.Sub || info.Email != upstreamEve.Email || info.EmailVerified {
			t.Fatalf("userinfo: %+v", info)
		}
	})

	t.Run("refused", func(t *testing.T) {
		cb := callbackQuery(t, op.Refuse(t, jarClient(t), rp.conf.AuthCodeURL("s-1", oauth2.S256ChallengeOption(oauth2.GenerateVerifier()))))
		if cb.Get("error") != "access_denied" || cb.Get("state") != "s-1" || cb.Get("iss") != op.Issuer || cb.Has("code") {
			t.Fatalf("callback: %v", cb)
		}
	})

	t.Run("PKCE required", func(t *testing.T) {
		resp, err := noRedirects(jarClient(t)).Get(rp.conf.AuthCodeURL("s-2", oidc.Nonce("n")))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		cb := callbackQuery(t, resp.Header.Get("Location"))
		if cb.Get("error") != "invalid_request" || cb.Has("code") {
			t.Fatalf("without PKCE: %d %v", resp.StatusCode, cb)
		}
	})

	t.Run("code bound to verifier and single-use", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		cb := callbackQuery(t, op.Login(t, jarClient(t), rp.conf.AuthCodeURL("s-3", oauth2.S256ChallengeOption(verifier)), upstreamAmal.Sub))
		var re *oauth2.RetrieveError
		if _, err := rp.conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(oauth2.GenerateVerifier())); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("wrong verifier: %v", err)
		}
		if _, err := rp.conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(verifier)); err != nil {
			t.Fatalf("right verifier: %v", err)
		}
		if _, err := rp.conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(verifier)); !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
			t.Fatalf("replayed code: %v", err)
		}
	})

	t.Run("unknown client", func(t *testing.T) {
		other := *rp.conf
		other.ClientID = "stranger"
		resp, err := noRedirects(jarClient(t)).Get(other.AuthCodeURL("s-4", oauth2.S256ChallengeOption(oauth2.GenerateVerifier())))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusBadRequest || resp.Header.Get("Location") != "" {
			t.Fatalf("unknown client: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	t.Run("keys", func(t *testing.T) {
		resp, err := http.Get(op.Issuer + "/jwks")
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var set struct {
			Keys []map[string]any `json:"keys"`
		}
		if err := json.NewDecoder(resp.Body).Decode(&set); err != nil || len(set.Keys) != 1 || set.Keys[0]["d"] != nil {
			t.Fatalf("jwks: %v %v", err, set.Keys)
		}
	})
}

func noRedirects(c *http.Client) *http.Client {
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	return c
}

// TestUpstreamOPOptions proves the upstream OP's options: scope claims in
// the ID token, and back-channel logout: signing out at the upstream posts
// a logout token, signed with the upstream's keys, for the person's session
// to the client's back-channel logout URI, and ends the upstream session.
func TestUpstreamOPOptions(t *testing.T) {
	tokens := make(chan string, 4)
	receiver := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		tokens <- r.PostFormValue("logout_token")
	}))
	defer receiver.Close()
	cfg := upstreamTestConfig()
	cfg.Clients[0].BackchannelLogoutURI = receiver.URL + "/backchannel"
	cfg.Clients[0].BackchannelLogoutSessionRequired = true
	cfg.ScopeClaimsInIDToken = true
	op := startNodeOP(t, cfg)
	rp := newUpstreamRP(t, op)
	client := jarClient(t)
	idt, _, _ := rp.signIn(t, op, client, upstreamAmal.Sub)
	var claims struct {
		Email         string `json:"email"`
		EmailVerified bool   `json:"email_verified"`
		SID           string `json:"sid"`
	}
	if err := idt.Claims(&claims); err != nil || claims.Email != upstreamAmal.Email || !claims.EmailVerified || claims.SID == "" {
		t.Fatalf("ID token claims: %+v %v", claims, err)
	}

	op.Logout(t, client)
	var raw string
	select {
	case raw = <-tokens:
	default:
		t.Fatal("no logout token arrived before the sign-out answered")
	}
	ctx := context.Background()
	payload, err := oidc.NewRemoteKeySet(ctx, op.Issuer+"/jwks").VerifySignature(ctx, raw)
	if err != nil {
		t.Fatalf("logout token: %v", err)
	}
	var lt struct {
		Iss    string         `json:"iss"`
		Aud    any            `json:"aud"`
		Sub    string         `json:"sub"`
		SID    string         `json:"sid"`
		Events map[string]any `json:"events"`
		Nonce  *string        `json:"nonce"`
	}
	if err := json.Unmarshal(payload, &lt); err != nil {
		t.Fatal(err)
	}
	if _, ok := lt.Events["http://schemas.openid.net/event/backchannel-logout"]; !ok || lt.Iss != op.Issuer || lt.Aud != upstreamClientID ||
		lt.Sub != upstreamAmal.Sub || lt.SID != claims.SID || lt.Nonce != nil {
		t.Fatalf("logout token: %s", payload)
	}
	// The upstream session is gone: signing in again takes the form, and so
	// another person.
	if again, _, _ := rp.signIn(t, op, client, upstreamEve.Sub); again.Subject != upstreamEve.Sub {
		t.Fatalf("after sign-out: sub %q", again.Subject)
	}
}

func TestUpstreamNodeVersionOK(t *testing.T) {
	for v, want := range map[string]bool{
		"v20.19.0": true, "v20.20.2": true, "v22.1.0": true, "v24.0.0-pre": true,
		"v20.18.9": false, "v18.20.4": false, "v8.99.99": false, "20.19.0": false, "": false, "vx": false,
	} {
		if got := upstreamNodeVersionOK(v); got != want {
			t.Errorf("upstreamNodeVersionOK(%q) = %v, want %v", v, got, want)
		}
	}
}
