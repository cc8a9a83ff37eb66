package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/scope"
)

// TestBackchannelLogout: when a user signs out (or an operator resets the
// password), each client the user allowed that registered a back-channel
// logout URI receives a signed logout token.
func TestBackchannelLogout(t *testing.T) {
	e := start(t)
	got := make(chan string, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && r.Method == "POST" {
			got <- r.PostForm.Get("logout_token")
		}
	}))
	defer rp.Close()
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "feed", Name: "Feed", RedirectURIs: []string{"https://feed.example/cb"},
		Scopes: []string{"openid"}, BackchannelLogoutURI: rp.URL + "/logout", Outbound: e.Server.Outbound, IDTokenAlg: "PS256"}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.authorize(authRequest{ClientID: "feed", RedirectURI: "https://feed.example/cb", Scope: "openid", State: "s", Verifier: strings.Repeat("f", 43)})
	b.authorize(e.notesRequest("openid")) // notes registered no URI: it gets nothing

	receive := func(why string) backchannel.Claims {
		t.Helper()
		select {
		case raw := <-got:
			var c backchannel.Claims
			if h := jwtHeader(t, raw); h.Alg != "PS256" { // the client's ID token alg
				t.Fatalf("%s: logout token signed with %s", why, h.Alg)
			}
			if err := e.Server.Keys.Verify(context.Background(), raw, jwks.TypeLogout, &c); err != nil {
				t.Fatalf("%s: logout token does not verify: %v", why, err)
			}
			return c
		case <-time.After(5 * time.Second):
			t.Fatalf("%s: no logout token arrived", why)
		}
		return backchannel.Claims{}
	}
	acct := b.get("/account")
	if p := b.post("/logout", url.Values{"csrf_token": {csrfOf(t, acct)}}); p.Status != http.StatusSeeOther {
		t.Fatalf("logout: %d", p.Status)
	}
	c := receive("sign-out")
	if _, ok := c.Events[backchannel.Event]; !ok || c.Issuer != e.URL || c.Subject != e.UserID || !c.Audience.Contains("feed") || c.ID == "" {
		t.Fatalf("logout token: %+v", c)
	}
	if status, _ := e.adminCall("PUT", "/admin/users/"+e.UserID+"/password", adminToken, map[string]string{"password": "yet another passphrase"}, nil); status != 204 {
		t.Fatalf("set password: %d", status)
	}
	receive("password reset")
	select {
	case extra := <-got:
		t.Fatalf("an unexpected logout token: %s", extra)
	case <-time.After(200 * time.Millisecond):
	}
	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(meta, `"backchannel_logout_supported":true`) {
		t.Fatal("discovery lacks back-channel logout")
	}
}
