package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"golang.org/x/oauth2"
)

const (
	githubClientID     = "Iv1.bawwab-tests"
	githubClientSecret = "github-secret-for-tests-0123456789abcdef"
	githubRedirect     = "http://127.0.0.1:1/upstream/github/callback"
)

var githubAmal = githubUser{ID: 4242, Login: "amal-h", Name: "Amal Haddad", Emails: []githubEmail{
	{Email: "amal@example.com", Primary: true, Verified: true},
	{Email: "amal@old.example", Verified: false},
}}

func startTestGitHub(t *testing.T) (*fakeGitHub, *oauth2.Config) {
	t.Helper()
	g := startFakeGitHub(t, fakeGitHubConfig{ClientID: githubClientID, ClientSecret: githubClientSecret, RedirectURI: githubRedirect, User: githubAmal})
	return g, &oauth2.Config{ClientID: githubClientID, ClientSecret: githubClientSecret, Endpoint: g.Endpoint(),
		RedirectURL: githubRedirect, Scopes: []string{"read:user", "user:email"}}
}

// githubCallback checks that callback is the app's callback and returns its query.
func githubCallback(t *testing.T, callback string) url.Values {
	t.Helper()
	u, err := url.Parse(callback)
	if err != nil || u.Scheme+"://"+u.Host+u.Path != githubRedirect {
		t.Fatalf("redirected to %q, not to the app's callback", callback)
	}
	return u.Query()
}

// githubGet calls the fake's API with tok and decodes the answer into v.
func githubGet(t *testing.T, conf *oauth2.Config, tok *oauth2.Token, path string, v any) int {
	t.Helper()
	resp, err := conf.Client(context.Background(), tok).Get(strings.TrimSuffix(conf.Endpoint.AuthURL, "/login/oauth/authorize") + path)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	if err := json.NewDecoder(resp.Body).Decode(v); err != nil {
		t.Fatalf("%s: %v", path, err)
	}
	return resp.StatusCode
}

// TestFakeGitHub proves the GitHub-shaped fake with x/oauth2: the code flow
// with PKCE signs a person in, /user and /user/emails answer with GitHub's
// shapes, and the fake refuses what GitHub refuses, GitHub's way.
func TestFakeGitHub(t *testing.T) {
	g, conf := startTestGitHub(t)
	ctx := context.Background()
	signIn := func(t *testing.T, conf *oauth2.Config) *oauth2.Token {
		t.Helper()
		verifier := oauth2.GenerateVerifier()
		cb := githubCallback(t, g.Login(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier))))
		if cb.Get("state") != "st" || cb.Get("code") == "" || cb.Has("iss") {
			t.Fatalf("callback: %v", cb)
		}
		tok, err := conf.Exchange(ctx, cb.Get("code"), oauth2.VerifierOption(verifier))
		if err != nil {
			t.Fatalf("exchange: %v", err)
		}
		return tok
	}

	t.Run("profile and emails", func(t *testing.T) {
		tok := signIn(t, conf)
		if tok.Extra("scope") != "read:user,user:email" {
			t.Fatalf("scope %v", tok.Extra("scope"))
		}
		var user map[string]any
		if status := githubGet(t, conf, tok, "/user", &user); status != http.StatusOK ||
			user["id"] != float64(4242) || user["login"] != "amal-h" || user["name"] != "Amal Haddad" || user["email"] != nil {
			t.Fatalf("/user: %d %v", status, user)
		}
		var emails []githubEmail
		if status := githubGet(t, conf, tok, "/user/emails", &emails); status != http.StatusOK || len(emails) != 2 ||
			emails[0] != githubAmal.Emails[0] || emails[1].Verified {
			t.Fatalf("/user/emails: %d %v", status, emails)
		}
	})

	t.Run("another person", func(t *testing.T) {
		g.SignInAs(githubUser{ID: 7, Login: "eve", Email: "eve@example.com"})
		defer g.SignInAs(githubAmal)
		var user map[string]any
		if githubGet(t, conf, signIn(t, conf), "/user", &user); user["id"] != float64(7) || user["email"] != "eve@example.com" || user["name"] != nil {
			t.Fatalf("/user: %v", user)
		}
	})

	t.Run("emails need user:email", func(t *testing.T) {
		narrow := *conf
		narrow.Scopes = []string{"read:user"}
		var body map[string]any
		if status := githubGet(t, &narrow, signIn(t, &narrow), "/user/emails", &body); status != http.StatusNotFound {
			t.Fatalf("/user/emails without user:email: %d %v", status, body)
		}
	})

	t.Run("bad token", func(t *testing.T) {
		var body map[string]any
		if status := githubGet(t, conf, &oauth2.Token{AccessToken: "gho_forged"}, "/user", &body); status != http.StatusUnauthorized || body["message"] != "Bad credentials" {
			t.Fatalf("/user with a forged token: %d %v", status, body)
		}
	})

	t.Run("code single-use and bound to verifier", func(t *testing.T) {
		verifier := oauth2.GenerateVerifier()
		code := githubCallback(t, g.Login(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))).Get("code")
		var re *oauth2.RetrieveError
		// GitHub reports the error with status 200; x/oauth2 still sees it.
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(oauth2.GenerateVerifier())); !errors.As(err, &re) ||
			re.ErrorCode != "bad_verification_code" || re.Response.StatusCode != http.StatusOK {
			t.Fatalf("wrong verifier: %v", err)
		}
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !errors.As(err, &re) || re.ErrorCode != "bad_verification_code" {
			t.Fatalf("code after a failed redemption: %v", err)
		}
		verifier = oauth2.GenerateVerifier()
		code = githubCallback(t, g.Login(t, conf.AuthCodeURL("st", oauth2.S256ChallengeOption(verifier)))).Get("code")
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); err != nil {
			t.Fatal(err)
		}
		if _, err := conf.Exchange(ctx, code, oauth2.VerifierOption(verifier)); !errors.As(err, &re) || re.ErrorCode != "bad_verification_code" {
			t.Fatalf("replayed code: %v", err)
		}
	})

	t.Run("wrong secret", func(t *testing.T) {
		bad := *conf
		bad.ClientSecret = "guessed"
		code := githubCallback(t, g.Login(t, bad.AuthCodeURL("st"))).Get("code")
		var re *oauth2.RetrieveError
		if _, err := bad.Exchange(ctx, code); !errors.As(err, &re) || re.ErrorCode != "incorrect_client_credentials" {
			t.Fatalf("wrong secret: %v", err)
		}
	})

	t.Run("token answer JSON or form by Accept", func(t *testing.T) {
		for accept, want := range map[string]string{"application/json": "application/json", "": "application/x-www-form-urlencoded"} {
			code := githubCallback(t, g.Login(t, conf.AuthCodeURL("st"))).Get("code")
			req, _ := http.NewRequest(http.MethodPost, conf.Endpoint.TokenURL, strings.NewReader(url.Values{"client_id": {githubClientID},
				"client_secret": {githubClientSecret}, "code": {code}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			if accept != "" {
				req.Header.Set("Accept", accept)
			}
			resp, err := http.DefaultClient.Do(req)
			if err != nil {
				t.Fatal(err)
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.HasPrefix(resp.Header.Get("Content-Type"), want) || !strings.Contains(string(body), "gho_") {
				t.Fatalf("Accept %q: %s %s", accept, resp.Header.Get("Content-Type"), body)
			}
		}
	})

	t.Run("denied", func(t *testing.T) {
		g.Deny(true)
		defer g.Deny(false)
		cb := githubCallback(t, g.Login(t, conf.AuthCodeURL("st")))
		if cb.Get("error") != "access_denied" || cb.Get("state") != "st" || cb.Has("code") {
			t.Fatalf("denied: %v", cb)
		}
	})

	t.Run("redirect_uri mismatch goes to the registered callback", func(t *testing.T) {
		evil := *conf
		evil.RedirectURL = "https://attacker.example/cb"
		cb := githubCallback(t, g.Login(t, evil.AuthCodeURL("st")))
		if cb.Get("error") != "redirect_uri_mismatch" || cb.Has("code") {
			t.Fatalf("mismatch: %v", cb)
		}
	})

	t.Run("unknown app", func(t *testing.T) {
		other := *conf
		other.ClientID = "stranger"
		resp, err := noRedirects(&http.Client{}).Get(other.AuthCodeURL("st"))
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != http.StatusNotFound || resp.Header.Get("Location") != "" {
			t.Fatalf("unknown app: %d %s", resp.StatusCode, resp.Header.Get("Location"))
		}
	})

	if g.Hits("/user/emails") != 2 {
		t.Fatalf("/user/emails was called %d times", g.Hits("/user/emails"))
	}
}
