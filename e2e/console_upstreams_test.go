package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// TestConsoleUpstreams: an operator adds an upstream identity provider
// from the console, its client secret sealed by the admin API and never
// shown again (not on the list, not beside a refused form); a refused
// upstream (an issuer at an internal address) is shown beside the form;
// the upstream is disabled and enabled again, audited under the
// operator's name; its linked users are listed; its settings are edited
// (consoleEditUpstream); without the CSRF token nothing changes.
func TestConsoleUpstreams(t *testing.T) {
	e := startWith(t, func(cfg *config.Config) {
		cfg.Upstreams = []upstream.Config{{ID: "filed", Name: map[string]string{"en": "Filed"}, Type: upstream.TypeOIDC,
			Issuer: "https://login.filed.example", ClientID: "bawwab", ClientSecret: "filed-secret"}}
	})
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
	consoleEditUpstream(t, e, b, csrf, secret)
}

// consoleEditUpstream: the edit page of upstream corp (whose secret is
// secret) holds its settings but never its secret; saved, every setting
// reaches the admin API, audited under the operator's name; an empty
// secret keeps the stored one and a typed one replaces it; a refused
// change (another issuer, a bad icon) is shown beside the form and
// changes nothing; an upstream of the configuration file is shown
// read-only and refused; without the CSRF token nothing changes.
func consoleEditUpstream(t *testing.T, e *env, b *browser, csrf, secret string) {
	t.Helper()
	ctx := context.Background()
	storedSecret := func() string {
		t.Helper()
		sealer, err := upstream.SecretSealer(ctx, e.Store)
		if err != nil {
			t.Fatal(err)
		}
		row, err := e.Store.GetUpstream(ctx, "corp")
		if err != nil {
			t.Fatal(err)
		}
		c, err := upstream.Decode(*row, sealer)
		if err != nil {
			t.Fatal(err)
		}
		return c.ClientSecret
	}
	apiView := func(id string) adminapi.Upstream {
		t.Helper()
		var v adminapi.Upstream
		if status, body := e.adminCall("GET", "/admin/upstreams/"+id, adminToken, nil, &v); status != http.StatusOK {
			t.Fatalf("GET upstream %s: %d %s", id, status, body)
		}
		return v
	}

	p := b.get(e.AdminURL + "/console/upstreams/corp?lang=en")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="edit-upstream"`) || !strings.Contains(p.Body, `value="bawwab"`) ||
		strings.Contains(p.Body, secret) || !strings.Contains(p.Body, "Leave empty to keep the current secret") {
		t.Fatalf("edit page: %d %s", p.Status, p.Body)
	}
	if list := b.get(e.AdminURL + "/console/upstreams"); !strings.Contains(list.Body, `id="edit-upstream-corp" href="/console/upstreams/corp"`) {
		t.Fatalf("no edit link on the list: %s", list.Body)
	}
	edit := url.Values{"csrf_token": {csrf}, "name_en": {"Corp SSO"}, "name_ar": {"دخول الشركة"}, "issuer": {"https://login.corp.example"},
		"client_id": {"bawwab-2"}, "client_secret": {""}, "scopes": {"openid email profile"}, "allowed_domains": {"corp.example corp.test"},
		"icon": {"github"}, "claim_email": {"mail"}, "claim_name": {"display_name"}, "enabled": {"on"}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for k, v := range edit {
			f[k] = v
		}
		if v == "" {
			f.Del(k)
		} else {
			f.Set(k, v)
		}
		return f
	}

	if p := b.post(e.AdminURL+"/console/upstreams/corp", with("csrf_token", "")); p.Status != http.StatusForbidden {
		t.Fatalf("edit without CSRF token: %d", p.Status)
	}
	if v := apiView("corp"); v.ClientID != "bawwab" || v.Label("en") != "Corp" {
		t.Fatalf("a forged form changed the upstream: %+v", v)
	}

	if p := b.post(e.AdminURL+"/console/upstreams/corp", edit); p.Status != http.StatusSeeOther {
		t.Fatalf("edit: %d %s", p.Status, p.Body)
	}
	v := apiView("corp")
	if v.Label("en") != "Corp SSO" || v.Label("ar") != "دخول الشركة" || v.ClientID != "bawwab-2" || strings.Join(v.Scopes, " ") != "openid email profile" ||
		strings.Join(v.AllowedDomains, " ") != "corp.example corp.test" || v.Icon != "github" || v.Claims.Email != "mail" ||
		v.Claims.Name != "display_name" || v.CreatesAccounts() || !v.Enabled || !v.ClientSecretSet {
		t.Fatalf("the API after the edit: %+v", v)
	}
	if got := storedSecret(); got != secret {
		t.Fatalf("an empty secret field changed the secret to %q", got)
	}
	if evs := auditOf(t, e, audit.UpstreamUpdated); len(evs) != 1 || !strings.Contains(evs[0].Detail, "operator="+userName+" (console)") {
		t.Fatalf("edit audit: %+v", evs)
	}

	const next = "upstream-n3w-secret-0123456789ab"
	if p := b.post(e.AdminURL+"/console/upstreams/corp", with("client_secret", next)); p.Status != http.StatusSeeOther {
		t.Fatalf("new secret: %d %s", p.Status, p.Body)
	}
	if got := storedSecret(); got != next {
		t.Fatalf("the typed secret was not stored: %q", got)
	}

	for _, bad := range []struct{ field, value, want string }{
		{"issuer", "https://login.other.example", "issuer cannot change"},
		{"icon", "javascript:alert(1)", "icon must be"},
		{"allowed_domains", "corp.example amal@corp.example", "is not a domain"},
		{"name_en", "", "English label"},
	} {
		f := with(bad.field, bad.value)
		f.Set("client_secret", "typed-but-refused-secret-0123456789")
		f.Set("client_id", "refused-client")
		p := b.post(e.AdminURL+"/console/upstreams/corp", f)
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `id="error"`) || !strings.Contains(p.Body, bad.want) ||
			!strings.Contains(p.Body, `value="refused-client"`) || strings.Contains(p.Body, "typed-but-refused") {
			t.Fatalf("%s %q: %d %s", bad.field, bad.value, p.Status, p.Body)
		}
		if v := apiView("corp"); v.ClientID != "bawwab-2" || storedSecret() != next {
			t.Fatalf("a refused edit (%s) changed the upstream: %+v", bad.field, v)
		}
	}

	p = b.get(e.AdminURL + "/console/upstreams/filed")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="read-only"`) || strings.Contains(p.Body, `id="save-upstream"`) ||
		strings.Contains(p.Body, "filed-secret") {
		t.Fatalf("config upstream page: %d %s", p.Status, p.Body)
	}
	p = b.post(e.AdminURL+"/console/upstreams/filed", url.Values{"csrf_token": {csrf}, "name_en": {"Changed"}, "issuer": {"https://login.filed.example"},
		"client_id": {"other"}, "enabled": {"on"}})
	if p.Status != http.StatusConflict || !strings.Contains(p.Body, "configuration file") {
		t.Fatalf("edit of a config upstream: %d %s", p.Status, p.Body)
	}
	if v := apiView("filed"); v.Label("en") != "Filed" || v.ClientID != "bawwab" {
		t.Fatalf("a config upstream changed: %+v", v)
	}
	if p := b.get(e.AdminURL + "/console/upstreams/nothing"); p.Status != http.StatusNotFound {
		t.Fatalf("edit page of no upstream: %d", p.Status)
	}
}
