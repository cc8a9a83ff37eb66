package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// amalProfile is a whole profile as the admin API takes it.
var amalProfile = map[string]any{
	"name": "Amal Haddad", "email": "amal@example.com", "email_verified": true, "picture": "https://example.com/amal.png",
	"given_name": "Amal", "family_name": "Haddad", "middle_name": "Nour", "nickname": "Mimi", "website": "https://amal.example",
	"gender": "female", "birthdate": "1990-04-01", "zoneinfo": "Asia/Amman", "locale": "ar-JO",
	"phone_number": "+962791234567", "phone_number_verified": true,
	"address": map[string]any{"formatted": "1 Rainbow St\nAmman 11181\nJO", "street_address": "1 Rainbow St", "locality": "Amman",
		"postal_code": "11181", "country": "JO"},
}

// setProfile replaces the test user's profile through the admin API.
func (e *env) setProfile(t *testing.T, p map[string]any) {
	t.Helper()
	if status, body := e.adminCall("PUT", "/admin/users/"+e.UserID, adminToken, p, nil); status != 200 {
		t.Fatalf("PUT /admin/users/{id}: %d %s", status, body)
	}
}

// TestStandardClaims: the admin API stores every standard claim (OpenID
// Connect Core §5.1), each scope releases its own (§5.4) at userinfo and in
// the ID token, the consent page names the new scopes in both languages,
// and discovery lists the claims.
func TestStandardClaims(t *testing.T) {
	e := start(t)
	bad := map[string]any{"name": "Amal", "birthdate": "01/04/1990"}
	if status, body := e.adminCall("PUT", "/admin/users/"+e.UserID, adminToken, bad, nil); status != 400 || !strings.Contains(body, "birthdate") {
		t.Fatalf("bad birthdate: %d %s", status, body)
	}
	e.setProfile(t, amalProfile)

	b := e.browser()
	r := e.notesRequest("openid address phone")
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	for lang, want := range map[string][]string{"en": {"Your postal address", "Your phone number"}, "ar": {"عنوانك البريدي", "رقم هاتفك"}} {
		page := b.get(p.Location + "&lang=" + lang)
		for _, w := range want {
			if !strings.Contains(page.Body, w) {
				t.Fatalf("consent page (%s) does not name %q", lang, w)
			}
		}
	}

	for _, tc := range []struct {
		scope      string
		want, none []string
	}{
		{"openid profile", []string{"name", "given_name", "family_name", "middle_name", "nickname", "preferred_username", "website", "gender",
			"birthdate", "zoneinfo", "locale", "updated_at"}, []string{"email", "phone_number", "address"}},
		{"openid address", []string{"address"}, []string{"name", "phone_number"}},
		{"openid phone", []string{"phone_number", "phone_number_verified"}, []string{"name", "address"}},
	} {
		t.Run(tc.scope, func(t *testing.T) {
			r := e.notesRequest(tc.scope)
			tok := e.redeem(b.authorize(r, strings.Fields(tc.scope)...).Get("code"), r)
			wantStatus(t, tok.Status, 200, "redeem", tok.Description)
			_, info, _ := e.userinfo(tok.AccessToken)
			id := claimsOf(t, tok.IDToken)
			for _, c := range tc.want {
				if info[c] == nil || id[c] == nil {
					t.Fatalf("claim %s: userinfo %v, ID token %v", c, info[c], id[c])
				}
			}
			for _, c := range tc.none {
				if info[c] != nil {
					t.Fatalf("claim %s released without its scope: %v", c, info)
				}
			}
		})
	}
	r = e.notesRequest("openid address phone")
	tok := e.redeem(b.authorize(r, "address", "phone").Get("code"), r)
	_, info, _ := e.userinfo(tok.AccessToken)
	addr, _ := info["address"].(map[string]any)
	if addr["locality"] != "Amman" || addr["formatted"] != "1 Rainbow St\nAmman 11181\nJO" || info["phone_number_verified"] != true {
		t.Fatalf("userinfo %v", info)
	}

	var meta struct {
		Claims []string `json:"claims_supported"`
		Scopes []string `json:"scopes_supported"`
	}
	if status, raw := jsonCall(t, "GET", e.URL+"/.well-known/openid-configuration", "", nil); status != 200 || json.Unmarshal(raw, &meta) != nil {
		t.Fatalf("discovery: %d", status)
	}
	for _, c := range []string{"given_name", "family_name", "middle_name", "nickname", "website", "gender", "birthdate", "zoneinfo", "locale",
		"updated_at", "phone_number", "phone_number_verified", "address"} {
		if !strings.Contains(" "+strings.Join(meta.Claims, " ")+" ", " "+c+" ") {
			t.Fatalf("claims_supported lacks %s: %v", c, meta.Claims)
		}
	}
	if !strings.Contains(strings.Join(meta.Scopes, " "), "address phone") {
		t.Fatalf("scopes_supported %v", meta.Scopes)
	}
}

// TestAccountProfile: the person edits their own profile on the account
// page; bad values are refused with the field named and nothing saved; a
// changed phone number is no longer verified; the form needs its CSRF
// token.
func TestAccountProfile(t *testing.T) {
	e := start(t)
	e.setProfile(t, amalProfile)
	b := e.browser()
	p := b.get("/account/profile")
	p = b.login(p.Location, userName, userPassword)
	page := b.get("/account/profile")
	if page.Status != 200 || !strings.Contains(page.Body, `value="Mimi"`) || !strings.Contains(page.Body, "962791234567") {
		t.Fatalf("profile page: %d %s", page.Status, page.Body)
	}
	csrf := csrfOf(t, page)
	form := url.Values{"csrf_token": {csrf}, "name": {"Amal H."}, "given_name": {"Amal"}, "family_name": {"Haddad"}, "nickname": {""},
		"phone_number": {"+962790000000"}, "locality": {"Irbid"}, "country": {"JO"}, "birthdate": {"1990-13-01"}}
	if p := b.post("/account/profile", form); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "birthdate") {
		t.Fatalf("bad birthdate: %d", p.Status)
	}
	if u, _ := e.Store.GetUser(context.Background(), e.UserID); u.Name != "Amal Haddad" {
		t.Fatalf("a refused form changed the profile: %+v", u)
	}
	form.Set("birthdate", "0000-04-01")
	if p := b.post("/account/profile", form); p.Status != http.StatusSeeOther || p.Location != "/account/profile?saved" {
		t.Fatalf("save: %d %s %s", p.Status, p.Location, p.Body)
	}
	u, _ := e.Store.GetUser(context.Background(), e.UserID)
	if u.Name != "Amal H." || u.Profile.Nickname != "" || u.Profile.PhoneNumber != "+962790000000" || u.Profile.PhoneNumberVerified ||
		u.Profile.Address.Locality != "Irbid" || u.Profile.Address.Formatted != "Irbid\nJO" || u.Profile.Birthdate != "0000-04-01" ||
		u.Email != "amal@example.com" || !u.EmailVerified {
		t.Fatalf("after save: %+v", u)
	}
	form.Set("csrf_token", "forged")
	form.Set("name", "Mallory")
	if p := b.post("/account/profile", form); p.Status != http.StatusForbidden {
		t.Fatalf("forged CSRF token: %d", p.Status)
	}
	if p := e.browser().post("/account/profile", form); p.Status == http.StatusSeeOther && p.Location == "/account/profile?saved" {
		t.Fatal("saved without a session")
	}
	if u, _ := e.Store.GetUser(context.Background(), e.UserID); u.Name != "Amal H." {
		t.Fatalf("profile changed by a forged request: %+v", u)
	}
}
