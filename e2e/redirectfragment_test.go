package e2e

import (
	"context"
	"net/http"
	"net/url"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestRedirectURIFragment (RFC 6749 §3.1.2: "The endpoint URI MUST NOT
// include a fragment component"): a redirect URI with a '#' anywhere,
// even an empty fragment, is refused at registration, by admin, by
// import, and at /authorize and /end_session even if stored before.
func TestRedirectURIFragment(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	bad := []string{"https://a.example/cb#", "https://a.example/cb#x", "https://a.example/cb?q=1#", "http://127.0.0.1/cb#", "com.example.app:/cb#",
		"https://a.example/#/cb"}
	for _, u := range bad {
		if reg := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{u}}); reg.Status != 400 || reg.Error != "invalid_redirect_uri" {
			t.Errorf("registration took %q: %d %s", u, reg.Status, reg.Error)
		}
		if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "frag", RedirectURIs: []string{u}}, scope.Default()); err == nil {
			t.Errorf("admin took %q", u)
			_ = e.Store.DeleteClient(ctx, "frag", time.Now())
		}
		if status, body := e.adminCall("POST", "/admin/clients", adminToken, map[string]any{"client_id": "frag2", "redirect_uris": []string{u}}, nil); status != 400 {
			t.Errorf("admin API took %q: %d %s", u, status, body)
			_ = e.Store.DeleteClient(ctx, "frag2", time.Now())
		}
		if status, body := e.adminCall("POST", "/admin/import", adminToken, map[string]any{"version": 1, "clients": []map[string]any{{
			"client_id": "frag3", "public": true, "redirect_uris": []string{u}}}}, nil); status != 400 {
			t.Errorf("import took %q: %d %s", u, status, body)
			_ = e.Store.DeleteClient(ctx, "frag3", time.Now())
		}
	}
	// Registration may not replace a good URI with one either.
	reg := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{"https://a.example/cb"}})
	if reg.Status != 201 {
		t.Fatalf("register: %+v", reg)
	}
	if upd := e.register("PUT", reg.RegistrationClientURI, reg.RegistrationAccessToken, map[string]any{"client_id": reg.ClientID,
		"redirect_uris": []string{"https://a.example/cb#"}}); upd.Status != 400 {
		t.Errorf("registration update took an empty fragment: %+v", upd)
	}

	// A client stored with such URIs before this rule, and clients with
	// good ones asked for an added '#'.
	if err := e.Store.CreateClient(ctx, storage.Client{ID: "legacy", Name: "Legacy", RedirectURIs: []string{"https://legacy.example/cb#", "http://127.0.0.1/cb#"},
		GrantTypes: []string{"authorization_code"}, Scopes: []string{"openid"}, SecretHash: storage.Hash("s"), CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	for name, r := range map[string]authRequest{
		"stored empty fragment":    {ClientID: "legacy", RedirectURI: "https://legacy.example/cb#"},
		"stored loopback fragment": {ClientID: "legacy", RedirectURI: "http://127.0.0.1:5555/cb#"},
		"empty fragment added":     {ClientID: "notes", RedirectURI: notesRedirect + "#"},
		"loopback, fragment added": {ClientID: "cli", RedirectURI: "http://127.0.0.1:5555/callback#"},
		"loopback, any fragment":   {ClientID: "cli", RedirectURI: "http://127.0.0.1:5555/callback#x"},
	} {
		r.Scope, r.State, r.Verifier = "openid", "s", "v-0123456789-0123456789-0123456789-0123456789"
		if p := e.browser().get(r.url()); p.Status != http.StatusBadRequest || p.Location != "" {
			t.Errorf("%s: /authorize answered %d %s", name, p.Status, p.Location)
		}
	}
	if p := e.browser().get("/end_session?" + url.Values{"client_id": {"legacy"}, "post_logout_redirect_uri": {"https://legacy.example/cb#"}}.Encode()); p.Status != http.StatusBadRequest {
		t.Errorf("end_session took a fragment post_logout_redirect_uri: %d", p.Status)
	}
}
