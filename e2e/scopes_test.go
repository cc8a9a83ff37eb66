package e2e

import (
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// TestScopeCatalog: an operator adds a scope with its English and Arabic
// text, a client asks for it, users read exactly that text on the consent
// screen; a scope in use cannot be deleted.
func TestScopeCatalog(t *testing.T) {
	e := start(t)
	call := func(method, path string, body any) (int, string) {
		t.Helper()
		return e.adminCall(method, path, adminToken, body, nil)
	}
	status, body := call("PUT", "/admin/scopes/calendar.read", map[string]any{"sensitive": true,
		"description": map[string]string{"en": "See your calendar", "ar": "الاطلاع على تقويمك"}})
	if status != 201 || !strings.Contains(body, `"sensitive":true`) {
		t.Fatalf("create scope: %d %s", status, body)
	}
	status, body = call("POST", "/admin/clients", map[string]any{"client_id": "planner", "name": "Planner",
		"redirect_uris": []string{"https://planner.example/cb"}, "scopes": []string{"openid", "calendar.read"}})
	if status != 201 {
		t.Fatalf("client with the new scope: %d %s", status, body)
	}

	r := authRequest{ClientID: "planner", RedirectURI: "https://planner.example/cb", Scope: "openid calendar.read", State: "s",
		Verifier: strings.Repeat("v", 43)}
	b := e.browser()
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	consentURL := p.Location
	page := b.get(consentURL)
	if !strings.Contains(page.Body, "See your calendar") || !strings.Contains(page.Body, `class="scope sensitive"`) {
		t.Fatalf("consent page lacks the new scope's text or flag: %s", page.Body)
	}
	if ar := b.get(consentURL + "&lang=ar"); !strings.Contains(ar.Body, "الاطلاع على تقويمك") {
		t.Fatal("Arabic consent page lacks the scope's Arabic text")
	}
	// An edit is seen at once on this node.
	if status, body := call("PUT", "/admin/scopes/calendar.read", map[string]any{"description": map[string]string{"en": "Read your calendar"}}); status != 200 {
		t.Fatalf("replace scope: %d %s", status, body)
	}
	if page := b.get(consentURL + "&lang=en"); !strings.Contains(page.Body, "Read your calendar") || strings.Contains(page.Body, `class="scope sensitive"`) {
		t.Fatalf("consent page after the edit: %s", page.Body)
	}

	for name, tc := range map[string]struct {
		path   string
		body   map[string]any
		status int
	}{
		"no English":       {"/admin/scopes/x", map[string]any{"description": map[string]string{"ar": "س"}}, 400},
		"unknown language": {"/admin/scopes/x", map[string]any{"description": map[string]string{"en": "x", "fr": "x"}}, 400},
		"unknown claim":    {"/admin/scopes/x", map[string]any{"description": map[string]string{"en": "x"}, "claims": []string{"ssn"}}, 400},
		"bad name":         {"/admin/scopes/" + url.PathEscape(`a"b`), map[string]any{"description": map[string]string{"en": "x"}}, 400},
	} {
		if status, body := call("PUT", tc.path, tc.body); status != tc.status {
			t.Errorf("%s: %d %s", name, status, body)
		}
	}
	if status, body := call("DELETE", "/admin/scopes/calendar.read", nil); status != http.StatusConflict || !strings.Contains(body, "planner") {
		t.Fatalf("delete a scope in use: %d %s", status, body)
	}
	if status, _ := call("DELETE", "/admin/scopes/openid", nil); status != 400 {
		t.Fatalf("delete openid: %d", status)
	}
	call("DELETE", "/admin/clients/planner", nil)
	if status, body := call("DELETE", "/admin/scopes/calendar.read", nil); status != 204 {
		t.Fatalf("delete an unused scope: %d %s", status, body)
	}
	if _, body := call("GET", "/admin/scopes", nil); strings.Contains(body, "calendar.read") {
		t.Fatal("deleted scope still listed")
	}
	if p := e.browser().get(r.url()); p.Status != http.StatusBadRequest {
		t.Fatalf("request for a deleted client and scope: %d", p.Status)
	}
}
