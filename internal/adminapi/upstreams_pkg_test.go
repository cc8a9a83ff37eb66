package adminapi

import (
	"context"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// newUpstreamAPI is newAPI with an audit log and one upstream of the
// configuration file, "cfg".
func newUpstreamAPI(t *testing.T) (*API, http.Handler, *int) {
	t.Helper()
	a, _ := newAPI(t)
	a.Audit = &audit.Log{Store: a.Store, Log: slog.New(slog.DiscardHandler), Now: time.Now, Retention: time.Hour}
	a.Upstreams = []upstream.Config{{ID: "cfg", Name: map[string]string{"en": "Configured"}, Type: "google", ClientID: "c",
		ClientSecret: "config-secret"}}
	changed := 0
	a.UpstreamsChanged = func() { changed++ }
	return a, a.Handler(), &changed
}

func opCall(t *testing.T, h http.Handler, method, path, body string) (int, map[string]any, string) {
	t.Helper()
	r := httptest.NewRequest(method, path, strings.NewReader(body))
	r.Header.Set("Authorization", "Bearer "+adminToken)
	r.Header.Set(OperatorHeader, "nour")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	return rec.Code, decodeObj(rec.Body.String()), rec.Body.String()
}

func decodeObj(s string) map[string]any {
	var obj map[string]any
	_ = json.Unmarshal([]byte(s), &obj)
	return obj
}

const corpOIDC = `{"id":"corp","name":{"en":"Corp","ar":"كورب"},"type":"oidc","issuer":"https://login.corp.example","client_id":"bawwab","client_secret":"s3cret-value"}`

// TestUpstreamCreateErrors: bad bodies, bad URLs, taken ids and presets
// are answered as a client's settings are; no secret is ever echoed.
func TestUpstreamCreateErrors(t *testing.T) {
	_, h, _ := newUpstreamAPI(t)
	if st, _, body := opCall(t, h, "POST", "/admin/upstreams", corpOIDC); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	tests := []struct {
		name, body string
		status     int
		code, desc string
	}{
		{"not JSON", `{"id":`, 400, "invalid_request", "not the expected JSON"},
		{"unknown member", `{"id":"x","colour":"red"}`, 400, "invalid_request", "unknown field"},
		{"bad id", `{"id":"Not An Id","name":{"en":"X"},"type":"oidc","issuer":"https://x.example","client_id":"c"}`, 400, "invalid_request", "id must be"},
		{"no name", `{"id":"x","type":"oidc","issuer":"https://x.example","client_id":"c"}`, 400, "invalid_request", "English label"},
		{"bad type", `{"id":"x","name":{"en":"X"},"type":"saml","client_id":"c"}`, 400, "invalid_request", "must be oidc, oauth2"},
		{"no client_id", `{"id":"x","name":{"en":"X"},"type":"google"}`, 400, "invalid_request", "client_id is required"},
		{"relative issuer", `{"id":"x","name":{"en":"X"},"type":"oidc","issuer":"/login","client_id":"c"}`, 400, "invalid_request", "issuer must be an absolute"},
		{"http issuer", `{"id":"x","name":{"en":"X"},"type":"oidc","issuer":"http://login.x.example","client_id":"c"}`, 400, "invalid_request", "must be an https URL"},
		{"loopback issuer", `{"id":"x","name":{"en":"X"},"type":"oidc","issuer":"https://127.0.0.1:9","client_id":"c"}`, 400, "invalid_request", "must not name"},
		{"metadata token_url", `{"id":"x","name":{"en":"X"},"type":"oauth2","auth_url":"https://x.example/a","token_url":"https://169.254.169.254/t","userinfo_url":"https://x.example/u","client_id":"c","claims":{"subject":"id"}}`, 400, "invalid_request", "token_url must not name"},
		{"issuer with fragment", `{"id":"x","name":{"en":"X"},"type":"oidc","issuer":"https://x.example/#f","client_id":"c"}`, 400, "invalid_request", "fragment"},
		{"oauth2 without claims.subject", `{"id":"x","name":{"en":"X"},"type":"oauth2","auth_url":"https://x.example/a","token_url":"https://x.example/t","userinfo_url":"https://x.example/u","client_id":"c"}`, 400, "invalid_request", "claims.subject is required"},
		{"duplicate id", corpOIDC, 409, "conflict", "exists already"},
		{"id of the configuration file", `{"id":"cfg","name":{"en":"X"},"type":"google","client_id":"c"}`, 409, "conflict", "configuration file"},
		{"github preset", `{"id":"gh","name":{"en":"GitHub"},"type":"github","client_id":"c","client_secret":"gh-secret"}`, 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st, obj, body := opCall(t, h, "POST", "/admin/upstreams", tt.body)
			if st != tt.status || (tt.code != "" && (obj["error"] != tt.code || !strings.Contains(fmt.Sprint(obj["error_description"]), tt.desc))) {
				t.Fatalf("got %d %s, want %d %s %q", st, body, tt.status, tt.code, tt.desc)
			}
			if strings.Contains(body, "secret-value") || strings.Contains(body, "gh-secret") {
				t.Fatalf("the answer echoes a secret: %s", body)
			}
		})
	}
}

// TestUpstreamLifecycle: get, update (the secret kept unless given,
// provider-naming settings fixed), disable, enable, list, delete; the
// configured upstream is listed read-only; nothing answers a secret; the
// stored secret is sealed; every change is audited with the operator.
func TestUpstreamLifecycle(t *testing.T) {
	a, h, changed := newUpstreamAPI(t)
	ctx := context.Background()
	st, obj, body := opCall(t, h, "POST", "/admin/upstreams", corpOIDC)
	if st != 201 || obj["client_secret_set"] != true || obj["source"] != "api" || obj["read_only"] != false || obj["enabled"] != true {
		t.Fatalf("create: %d %s", st, body)
	}
	row, err := a.Store.GetUpstream(ctx, "corp")
	if err != nil || row.SecretSealed == "" || strings.Contains(row.Config+row.SecretSealed, "s3cret-value") {
		t.Fatalf("stored row %+v %v: the secret must be sealed", row, err)
	}
	sealer, _ := upstream.SecretSealer(ctx, a.Store)
	if c, err := upstream.Decode(*row, sealer); err != nil || c.ClientSecret != "s3cret-value" {
		t.Fatalf("the sealed secret opens to %q, %v", c.ClientSecret, err)
	}
	moved := *row
	moved.ID = "other"
	if _, err := upstream.Decode(moved, sealer); err == nil {
		t.Fatal("a sealed secret copied to another upstream's row opened")
	}

	steps := []struct {
		name, method, path, body string
		status                   int
		check                    func(map[string]any) bool
	}{
		{"get", "GET", "/admin/upstreams/corp", "", 200, func(o map[string]any) bool { return o["issuer"] == "https://login.corp.example" }},
		{"update keeps the secret", "PUT", "/admin/upstreams/corp",
			`{"name":{"en":"Corp 2"},"type":"oidc","issuer":"https://login.corp.example","client_id":"bawwab2"}`, 200,
			func(o map[string]any) bool { return o["client_secret_set"] == true && o["client_id"] == "bawwab2" }},
		{"issuer cannot change", "PUT", "/admin/upstreams/corp",
			`{"name":{"en":"Corp"},"type":"oidc","issuer":"https://evil.example","client_id":"c"}`, 400, nil},
		{"type cannot change", "PUT", "/admin/upstreams/corp", `{"name":{"en":"Corp"},"type":"google","client_id":"c"}`, 400, nil},
		{"id cannot change", "PUT", "/admin/upstreams/corp",
			`{"id":"other","name":{"en":"Corp"},"type":"oidc","issuer":"https://login.corp.example","client_id":"c"}`, 400, nil},
		{"bad JSON on update", "PUT", "/admin/upstreams/corp", `[`, 400, nil},
		{"update unknown", "PUT", "/admin/upstreams/nosuch", corpOIDC, 404, nil},
		{"disable", "POST", "/admin/upstreams/corp/disable", "", 200, func(o map[string]any) bool { return o["enabled"] == false }},
		{"update keeps disabled", "PUT", "/admin/upstreams/corp",
			`{"name":{"en":"Corp 3"},"type":"oidc","issuer":"https://login.corp.example","client_id":"bawwab2","client_secret":"new-secret-value"}`, 200,
			func(o map[string]any) bool { return o["enabled"] == false }},
		{"enable", "POST", "/admin/upstreams/corp/enable", "", 200, func(o map[string]any) bool { return o["enabled"] == true }},
		{"configured: get", "GET", "/admin/upstreams/cfg", "", 200,
			func(o map[string]any) bool {
				return o["read_only"] == true && o["source"] == "config" && o["client_secret_set"] == true
			}},
		{"configured: update", "PUT", "/admin/upstreams/cfg", `{"name":{"en":"X"},"type":"google","client_id":"c"}`, 409,
			func(o map[string]any) bool { return o["error"] == "read_only" }},
		{"configured: disable", "POST", "/admin/upstreams/cfg/disable", "", 409, nil},
		{"configured: delete", "DELETE", "/admin/upstreams/cfg", "", 409, nil},
		{"configured: users", "GET", "/admin/upstreams/cfg/users", "", 200, nil},
		{"users of unknown", "GET", "/admin/upstreams/nosuch/users", "", 404, nil},
		{"users: bad limit", "GET", "/admin/upstreams/corp/users?limit=0", "", 400, nil},
		{"delete", "DELETE", "/admin/upstreams/corp", "", 204, nil},
		{"deleted", "GET", "/admin/upstreams/corp", "", 404, nil},
		{"delete again", "DELETE", "/admin/upstreams/corp", "", 404, nil},
	}
	for _, s := range steps {
		st, obj, body := opCall(t, h, s.method, s.path, s.body)
		if st != s.status || (s.check != nil && !s.check(obj)) {
			t.Fatalf("%s: %d %s, want %d", s.name, st, body, s.status)
		}
		if strings.Contains(body, "secret-value") || strings.Contains(body, "config-secret") {
			t.Fatalf("%s: the answer echoes a secret: %s", s.name, body)
		}
	}
	st, _, body = opCall(t, h, "GET", "/admin/upstreams", "")
	if st != 200 || !strings.Contains(body, `"id":"cfg"`) || strings.Contains(body, `"id":"corp"`) || strings.Contains(body, "secret-value") {
		t.Fatalf("list: %d %s", st, body)
	}
	if *changed != 6 { // create, 2 updates, disable, enable, delete
		t.Fatalf("the registry was told of %d changes, want 6", *changed)
	}
	events, err := a.Store.ListAuditEvents(ctx, storage.AuditFilter{Limit: 50})
	if err != nil {
		t.Fatal(err)
	}
	want := map[string]bool{audit.UpstreamAdded: false, audit.UpstreamUpdated: false, audit.UpstreamDisabled: false,
		audit.UpstreamEnabled: false, audit.UpstreamDeleted: false}
	for _, e := range events {
		if _, ok := want[e.Type]; ok && strings.Contains(e.Detail, "operator=nour") && strings.Contains(e.Detail, "upstream=corp") {
			want[e.Type] = true
		}
	}
	for typ, seen := range want {
		if !seen {
			t.Errorf("no %s event naming the operator and the upstream", typ)
		}
	}
}

// TestUpstreamUsersPages: an upstream's users come a page at a time, with
// their usernames, and a deleted upstream takes its links along.
func TestUpstreamUsersPages(t *testing.T) {
	a, h, _ := newUpstreamAPI(t)
	ctx := context.Background()
	if st, _, body := opCall(t, h, "POST", "/admin/upstreams", corpOIDC); st != 201 {
		t.Fatalf("create: %d %s", st, body)
	}
	for i := range 3 {
		id := fmt.Sprintf("u%d", i)
		if err := a.Store.CreateUpstreamUser(ctx, storage.User{ID: id, Username: "user" + id, CreatedAt: time.Now()},
			storage.UpstreamLink{Upstream: "corp", Subject: "sub-" + id, Email: id + "@corp.example", CreatedAt: time.Now()}); err != nil {
			t.Fatal(err)
		}
	}
	st, obj, body := opCall(t, h, "GET", "/admin/upstreams/corp/users?limit=2", "")
	if st != 200 || obj["next"] != "u1" || !strings.Contains(body, `"username":"useru0"`) || !strings.Contains(body, `"subject":"sub-u1"`) {
		t.Fatalf("page 1: %d %s", st, body)
	}
	st, obj, body = opCall(t, h, "GET", "/admin/upstreams/corp/users?limit=2&after=u1", "")
	if st != 200 || obj["next"] != nil || !strings.Contains(body, `"user_id":"u2"`) || strings.Contains(body, `"u1"`) {
		t.Fatalf("page 2: %d %s", st, body)
	}
	opCall(t, h, "DELETE", "/admin/upstreams/corp", "")
	if _, err := a.Store.GetUpstreamLink(ctx, "corp", "sub-u0"); err == nil {
		t.Fatal("the links of a deleted upstream stay")
	}
}

// TestUpstreamOrphanLinks: an id whose links outlived their upstream (one
// removed from the configuration file) is refused, since the new upstream
// may be another provider whose subjects would open those accounts; with
// adopt_links=true the operator says it is the same one.
func TestUpstreamOrphanLinks(t *testing.T) {
	a, h, _ := newUpstreamAPI(t)
	ctx := context.Background()
	if err := a.Store.CreateUpstreamUser(ctx, storage.User{ID: "u1", Username: "old", CreatedAt: time.Now()},
		storage.UpstreamLink{Upstream: "corp", Subject: "123", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	tests := []struct {
		name, query string
		status      int
	}{
		{"links of an earlier upstream", "", http.StatusConflict},
		{"adopt_links=false", "?adopt_links=false", http.StatusConflict},
		{"adopt_links=true", "?adopt_links=true", http.StatusCreated},
	}
	for _, tt := range tests {
		st, obj, body := opCall(t, h, "POST", "/admin/upstreams"+tt.query, corpOIDC)
		if st != tt.status || (st == http.StatusConflict && !strings.Contains(fmt.Sprint(obj["error_description"]), "adopt_links")) {
			t.Fatalf("%s: %d %s", tt.name, st, body)
		}
	}
	if l, err := a.Store.GetUpstreamLink(ctx, "corp", "123"); err != nil || l.UserID != "u1" {
		t.Fatalf("the adopted link: %+v %v", l, err)
	}
}
