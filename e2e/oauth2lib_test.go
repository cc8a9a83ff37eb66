package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"testing"

	"github.com/coreos/go-oidc/v3/oidc"
	"golang.org/x/oauth2"
)

// TestStandardClientLibraries runs the flow with golang.org/x/oauth2 (PKCE,
// code exchange, token refresh, authenticated API call) and verifies the ID
// token with github.com/coreos/go-oidc.
func TestStandardClientLibraries(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	conf := &oauth2.Config{ClientID: "notes", ClientSecret: e.NotesSecret, Endpoint: provider.Endpoint(), RedirectURL: notesRedirect,
		Scopes: []string{oidc.ScopeOpenID, "email", "offline_access"}}
	verifier := oauth2.GenerateVerifier()
	authURL := conf.AuthCodeURL("xyz-state", oauth2.S256ChallengeOption(verifier), oidc.Nonce("n-123"))
	u, _ := url.Parse(authURL)

	b := e.browser()
	p := b.get(u.RequestURI())
	for p.Status == http.StatusFound || p.Status == http.StatusSeeOther {
		if len(p.Location) >= len(notesRedirect) && p.Location[:len(notesRedirect)] == notesRedirect {
			break
		}
		switch {
		case p.Location[:6] == "/login":
			p = b.login(p.Location, userName, userPassword)
		default:
			p = b.consent(p.Location, true, "email", "offline_access")
		}
	}
	cb, _ := url.Parse(p.Location)
	if cb.Query().Get("state") != "xyz-state" {
		t.Fatalf("callback: %s", p.Location)
	}
	tok, err := conf.Exchange(ctx, cb.Query().Get("code"), oauth2.VerifierOption(verifier))
	if err != nil {
		t.Fatalf("x/oauth2 exchange: %v", err)
	}
	rawID, _ := tok.Extra("id_token").(string)
	idt, err := provider.Verifier(&oidc.Config{ClientID: "notes"}).Verify(ctx, rawID)
	if err != nil {
		t.Fatalf("go-oidc verify: %v", err)
	}
	if idt.Nonce != "n-123" || idt.Subject != e.UserID {
		t.Fatalf("id token: nonce %q sub %q", idt.Nonce, idt.Subject)
	}
	info, err := provider.UserInfo(ctx, oauth2.StaticTokenSource(tok))
	if err != nil {
		t.Fatalf("userinfo: %v", err)
	}
	if info.Email != "amal@example.com" {
		t.Fatalf("userinfo email %q", info.Email)
	}
	// Force a refresh through the library's TokenSource.
	tok.Expiry = tok.Expiry.Add(-24 * 3600e9)
	fresh, err := conf.TokenSource(ctx, tok).Token()
	if err != nil {
		t.Fatalf("refresh through x/oauth2: %v", err)
	}
	if fresh.AccessToken == tok.AccessToken || fresh.RefreshToken == tok.RefreshToken {
		t.Fatal("x/oauth2 refresh did not rotate")
	}
	// A broken exchange surfaces as *oauth2.RetrieveError with the RFC code.
	_, err = conf.Exchange(ctx, "bogus", oauth2.VerifierOption(verifier))
	var re *oauth2.RetrieveError
	if !errors.As(err, &re) || re.ErrorCode != "invalid_grant" {
		t.Fatalf("bogus code: %v", err)
	}
}

// TestKeyRotation: after a rotation, tokens signed by the old key stay
// valid and the JWKS publishes both keys.
func TestKeyRotation(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email")
	old := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	oldKID := e.Server.Keys.ActiveKID()
	newKID, err := e.Server.Keys.Rotate(context.Background())
	if err != nil || newKID == oldKID {
		t.Fatalf("rotate: %v (%s → %s)", err, oldKID, newKID)
	}
	resp, err := http.Get(e.URL + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set struct {
		Keys []struct {
			KID string `json:"kid"`
			D   string `json:"d"`
		} `json:"keys"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&set)
	if len(set.Keys) != 4 {
		t.Fatalf("JWKS has %d keys, want old and new of each kind (P-256, RSA)", len(set.Keys))
	}
	for _, k := range set.Keys {
		if k.D != "" {
			t.Fatal("JWKS leaks a private key")
		}
	}
	if in := e.introspect(old.AccessToken, "notes", e.NotesSecret); in["active"] != true {
		t.Fatalf("token of the retired key: %v", in)
	}
	r2 := e.notesRequest("openid email")
	fresh := e.redeem(e.browser().authorize(r2, "email").Get("code"), r2)
	if in := e.introspect(fresh.AccessToken, "notes", e.NotesSecret); in["active"] != true {
		t.Fatalf("token of the new key: %v", in)
	}
}
