package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestConsoleUpstreams: an operator adds an upstream identity provider
// from the console, its client secret sealed by the admin API and never
// shown again (not on the list, not beside a refused form); a refused
// upstream (an issuer at an internal address) is shown beside the form;
// the upstream is disabled and enabled again, audited under the
// operator's name; its linked users are listed; without the CSRF token
// nothing changes.
func TestConsoleUpstreams(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	csrf := consoleToken(t, e, b)
	ctx := context.Background()
	const secret = "upstream-s3cret-value-0123456789"
	form := url.Values{"csrf_token": {csrf}, "id": {"corp"}, "type": {"oidc"}, "name_en": {"Corp"}, "name_ar": {"الشركة"},
		"issuer": {"https://login.corp.example"}, "client_id": {"bawwab"}, "client_secret": {secret}, "scopes": {"openid email"}}

	bad := url.Values{}
	for k, v := range form {
		bad[k] = v
	}
	bad.Set("issuer", "https://169.254.169.254/")
	if p := b.post(e.AdminURL+"/console/upstreams", bad); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `id="error"`) ||
		strings.Contains(p.Body, secret) || !strings.Contains(p.Body, `value="bawwab"`) {
		t.Fatalf("internal issuer: %d %s", p.Status, p.Body)
	}
	forged := url.Values{}
	for k, v := range form {
		forged[k] = v
	}
	forged.Del("csrf_token")
	if p := b.post(e.AdminURL+"/console/upstreams", forged); p.Status != http.StatusForbidden {
		t.Fatalf("add without CSRF token: %d", p.Status)
	}
	if _, err := e.Store.GetUpstream(ctx, "corp"); err == nil {
		t.Fatal("a refused or forged form added the upstream")
	}

	if p := b.post(e.AdminURL+"/console/upstreams", form); p.Status != http.StatusSeeOther {
		t.Fatalf("add: %d %s", p.Status, p.Body)
	}
	row, err := e.Store.GetUpstream(ctx, "corp")
	if err != nil || row.SecretSealed == "" || strings.Contains(row.Config, secret) || !row.Enabled {
		t.Fatalf("stored upstream: %v %+v", err, row)
	}
	list := b.get(e.AdminURL + "/console/upstreams?lang=ar")
	if !strings.Contains(list.Body, `id="upstream-corp"`) || !strings.Contains(list.Body, "الشركة") || strings.Contains(list.Body, secret) {
		t.Fatalf("upstreams page: %s", list.Body)
	}

	if p := b.post(e.AdminURL+"/console/upstreams/corp/enabled", url.Values{"enabled": {"off"}}); p.Status != http.StatusForbidden {
		t.Fatalf("disable without CSRF token: %d", p.Status)
	}
	if p := b.post(e.AdminURL+"/console/upstreams/corp/enabled", url.Values{"csrf_token": {csrf}, "enabled": {"off"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("disable: %d %s", p.Status, p.Body)
	}
	if row, _ := e.Store.GetUpstream(ctx, "corp"); row.Enabled {
		t.Fatal("the upstream is still enabled")
	}
	if evs := auditOf(t, e, audit.UpstreamDisabled); len(evs) != 1 || !strings.Contains(evs[0].Detail, "operator="+userName+" (console)") {
		t.Fatalf("disable audit: %+v", evs)
	}
	if p := b.post(e.AdminURL+"/console/upstreams/corp/enabled", url.Values{"csrf_token": {csrf}, "enabled": {"on"}}); p.Status != http.StatusSeeOther {
		t.Fatalf("enable: %d %s", p.Status, p.Body)
	}

	if err := e.Store.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: "corp", Subject: "corp-sub-1", UserID: e.UserID,
		Email: "amal@corp.example", CreatedAt: e.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	users := b.get(e.AdminURL + "/console/upstreams/corp/users")
	if users.Status != http.StatusOK || !strings.Contains(users.Body, `id="linked-`+userName+`"`) || !strings.Contains(users.Body, "corp-sub-1") {
		t.Fatalf("upstream users: %d %s", users.Status, users.Body)
	}
	if p := b.get(e.AdminURL + "/console/upstreams/nothing/users"); p.Status != http.StatusNotFound {
		t.Fatalf("users of no upstream: %d", p.Status)
	}
}
