package e2e

import (
	"net/url"
	"strings"
	"testing"
)

// TestClaimsParameter plays OpenID Connect Core §5.5: with only openid as
// scope, claims asked for one by one are shown on the consent page, and
// those the person allows come back where they were asked for (userinfo
// or ID token, also after a refresh); one the person unchecks, or one
// beyond the client's scopes, does not.
func TestClaimsParameter(t *testing.T) {
	e := start(t)
	e.setProfile(t, amalProfile)
	b := e.browser()
	const claims = `{"userinfo":{"name":{"essential":true},"phone_number":null},"id_token":{"email":null}}`
	r := e.notesRequest("openid offline_access")
	r.Extra = url.Values{"claims": {claims}}
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	page := b.get(p.Location)
	for _, want := range []string{`value="claim:name"`, `value="claim:email"`, `value="claim:phone_number"`, "Full name", "Phone number"} {
		if !strings.Contains(page.Body, want) {
			t.Fatalf("consent page lacks %s", want)
		}
	}
	// Allow name and email, not the phone number.
	p = b.consent(p.Location, true, "offline_access", "claim:name", "claim:email")
	cb, _ := url.Parse(p.Location)
	tok := e.redeem(cb.Query().Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	if tok.Scope != "openid offline_access" {
		t.Fatalf("scope %q: claim items must not become scopes", tok.Scope)
	}
	check := func(what string, tok tokenResult) {
		t.Helper()
		id := claimsOf(t, tok.IDToken)
		_, info, _ := e.userinfo(tok.AccessToken)
		if id["email"] != "amal@example.com" || id["name"] != nil || id["phone_number"] != nil {
			t.Fatalf("%s: ID token %v", what, id)
		}
		if info["name"] != "Amal Haddad" || info["email"] != nil || info["phone_number"] != nil {
			t.Fatalf("%s: userinfo %v", what, info)
		}
	}
	check("code", tok)
	check("refresh", e.refresh(tok.RefreshToken))

	// Remembered: no consent page the second time, same release.
	r2 := e.notesRequest("openid")
	r2.Extra = url.Values{"claims": {`{"userinfo":{"name":null}}`}, "prompt": {"none"}}
	q := b.authorize(r2)
	tok2 := e.redeem(q.Get("code"), r2)
	if _, info, _ := e.userinfo(tok2.AccessToken); info["name"] != "Amal Haddad" {
		t.Fatalf("remembered consent: userinfo %v", info)
	}
	// The phone number was refused: asking again needs consent.
	r3 := e.notesRequest("openid")
	r3.Extra = url.Values{"claims": {`{"userinfo":{"phone_number":null}}`}, "prompt": {"none"}}
	if q := b.authorize(r3); q.Get("error") != "consent_required" {
		t.Fatalf("refused claim asked again with prompt=none: %v", q)
	}
	// The Connected apps page names the claims granted.
	if acct := b.get("/account"); !strings.Contains(acct.Body, "Full name") {
		t.Fatal("account page does not name the claim granted")
	}
}
