package e2e

import (
	"context"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

// TestPairwise (OpenID Connect Core §8.1): a pairwise client sees a
// subject of its own for the user — the same on every sign-in, different
// from the user id and from other sectors' — at the ID token, the access
// token and userinfo; userinfo still finds the user.
func TestPairwise(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	for _, c := range []admin.ClientSpec{
		{ID: "private", Name: "Private", RedirectURIs: []string{"https://private.example/cb"}, Scopes: []string{"openid", "email"}, Pairwise: true,
			Secret: "private-secret-for-tests-0123456789"},
		{ID: "private2", Name: "Private 2", RedirectURIs: []string{"https://other.example/cb"}, Scopes: []string{"openid", "email"}, Pairwise: true,
			Secret: "private2-secret-for-tests-0123456789"},
	} {
		if _, err := admin.AddClient(ctx, e.Store, c, scope.Default()); err != nil {
			t.Fatal(err)
		}
	}
	b := e.browser()
	subOf := func(client, redirect, secret string) (idSub, atSub, infoSub string) {
		t.Helper()
		r := authRequest{ClientID: client, RedirectURI: redirect, Scope: "openid email", State: "s", Nonce: "n", Verifier: strings.Repeat("p", 43)}
		code := b.authorize(r, "email").Get("code")
		tok := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect}, "code_verifier": {r.Verifier}},
			client, secret)
		wantStatus(t, tok.Status, 200, "token of "+client, tok.Description)
		_, info, _ := e.userinfo(tok.AccessToken)
		if info["email"] != "amal@example.com" {
			t.Fatalf("userinfo of a pairwise client lost the user: %v", info)
		}
		return claimsOf(t, tok.IDToken)["sub"].(string), claimsOf(t, tok.AccessToken)["sub"].(string), info["sub"].(string)
	}
	id1, at1, info1 := subOf("private", "https://private.example/cb", "private-secret-for-tests-0123456789")
	id1b, _, _ := subOf("private", "https://private.example/cb", "private-secret-for-tests-0123456789")
	id2, _, _ := subOf("private2", "https://other.example/cb", "private2-secret-for-tests-0123456789")
	if id1 == e.UserID || id1 != at1 || id1 != info1 || id1 != id1b || id1 == id2 {
		t.Fatalf("pairwise subs: user %s, id %s, access %s, userinfo %s, again %s, other sector %s", e.UserID, id1, at1, info1, id1b, id2)
	}
	// A pairwise client's redirect URIs must share the sector's host.
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "bad", RedirectURIs: []string{"https://a.example/cb", "https://b.example/cb"},
		Pairwise: true}, scope.Default()); err == nil {
		t.Fatal("pairwise client across two hosts accepted")
	}
}

// TestClaimsAndACR: the claims parameter is validated, an essential acr
// bawwab cannot meet is refused, and ID tokens carry acr and amr.
func TestClaimsAndACR(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email")
	r.Extra = url.Values{"claims": {`{"id_token":{"email":{"essential":true},"acr":{"essential":true,"values":["` + token.ACR + `"]}}}`},
		"acr_values": {token.ACR}}
	tok := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	wantStatus(t, tok.Status, 200, "token with a claims request", tok.Description)
	c := claimsOf(t, tok.IDToken)
	if c["acr"] != token.ACR || c["email"] != "amal@example.com" {
		t.Fatalf("ID token: %v", c)
	}
	for name, tc := range map[string]struct{ claims, code string }{
		"not JSON":        {"{", "invalid_request"},
		"unknown member":  {`{"access_token":{}}`, "invalid_request"},
		"unmet acr":       {`{"id_token":{"acr":{"essential":true,"values":["urn:mace:incommon:iap:silver"]}}}`, "access_denied"},
		"unmet acr value": {`{"userinfo":{"acr":{"essential":true,"value":"mfa"}}}`, "access_denied"},
	} {
		bad := e.notesRequest("openid")
		bad.Extra = url.Values{"claims": {tc.claims}}
		p := e.browser().get(bad.url())
		if q, _ := url.Parse(p.Location); q.Query().Get("error") != tc.code {
			t.Errorf("%s: %d %s", name, p.Status, p.Location)
		}
	}
	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	for _, want := range []string{`"claims_parameter_supported":true`, `"acr_values_supported":["` + token.ACR + `","` + token.ACRMFA + `"]`, `"subject_types_supported":["public","pairwise"]`} {
		if !strings.Contains(meta, want) {
			t.Errorf("discovery lacks %s", want)
		}
	}
}
