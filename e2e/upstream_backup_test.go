package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"testing"

	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// TestBackupUpstreamsToPostgres: an upstream added through the API and
// the account made by a sign-in through it, exported from SQLite and
// imported into PostgreSQL whose store holds the same
// upstream-secret-seal key, go on working: the person signs in through
// the upstream to the same account (its link came along), and no second
// account is made. Imported into a store with another key, the upstream
// arrives disabled without its secret (upstream_secrets_skipped), the
// links still there; imported twice, nothing is added twice.
func TestBackupUpstreamsToPostgres(t *testing.T) {
	ctx := context.Background()
	op := startFakeOP(t)
	src := start(t)
	if st, _, body := src.operatorCall("POST", "/admin/upstreams", op.Config("corp")); st != http.StatusCreated {
		t.Fatalf("add: %d %s", st, body)
	}
	jane := upstreamUser{Username: "jane", Email: "jane@fake.example", EmailVerified: true}
	signIn := func(e *env) string {
		t.Helper()
		r := e.notesRequest("openid")
		b := e.browser()
		p, _ := b.upstreamLogin(op, r, "corp", jane)
		sub, _ := claimsOf(t, b.finishDownstream(p, r).IDToken)["sub"].(string)
		return sub
	}
	sub := signIn(src)
	status, raw := jsonCall(t, "GET", src.AdminURL+"/admin/export", adminToken, nil)
	if status != 200 || sub == "" {
		t.Fatalf("export: %d %s", status, raw)
	}
	var backup map[string]any
	_ = json.Unmarshal(raw, &backup)

	dsn, schema := testenv.PostgresSchema(t)
	store, err := postgres.Open(ctx, dsn, postgres.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := src.Store.Secret(ctx, "upstream-secret-seal", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Secret(ctx, "upstream-secret-seal", key); err != nil {
		t.Fatal(err)
	}
	dst := startOn(t, store)
	var imported map[string]any
	if status, out := dst.adminCall("POST", "/admin/import", adminToken, backup, &imported); status != 200 || imported["upstreams_added"] != 1.0 ||
		imported["upstream_links_added"] != 1.0 || imported["upstream_secrets_skipped"] != 0.0 {
		t.Fatalf("import: %d %s", status, out)
	}
	if st, obj, body := dst.operatorCall("GET", "/admin/upstreams/corp", nil); st != 200 || obj["enabled"] != true || obj["client_secret_set"] != true {
		t.Fatalf("the upstream after the import: %d %s", st, body)
	}
	before := countUsers(t, dst)
	if got := signIn(dst); got != sub {
		t.Fatalf("signed in as %q after the import, want %q", got, sub)
	}
	if countUsers(t, dst) != before {
		t.Fatal("the sign-in after the import made another account")
	}
	if status, out := dst.adminCall("POST", "/admin/import", adminToken, backup, &imported); status != 200 || imported["upstreams_skipped"] != 1.0 ||
		imported["upstreams_added"] != 0.0 || imported["upstream_links_added"] != 0.0 {
		t.Fatalf("second import: %d %s", status, out)
	}

	other := start(t) // a store with an upstream-secret-seal key of its own
	if status, out := other.adminCall("POST", "/admin/import", adminToken, backup, &imported); status != 200 || imported["upstreams_added"] != 1.0 ||
		imported["upstream_secrets_skipped"] != 1.0 || imported["upstream_links_added"] != 1.0 {
		t.Fatalf("import under another key: %d %s", status, out)
	}
	if st, obj, body := other.operatorCall("GET", "/admin/upstreams/corp", nil); st != 200 || obj["enabled"] != false || obj["client_secret_set"] != false {
		t.Fatalf("the upstream under another key: %d %s", st, body)
	}
	if l := linkOf(t, other, "corp", "sub-jane"); l == nil || l.UserID != sub {
		t.Fatalf("jane's link under another key: %+v", l)
	}
}
