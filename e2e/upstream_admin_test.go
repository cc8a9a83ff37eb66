package e2e

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"os"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// operatorCall is an admin API request made by the operator "nour".
func (e *env) operatorCall(method, path string, body any) (int, map[string]any, string) {
	e.t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = bytes.NewReader(raw)
	}
	req, _ := http.NewRequest(method, e.AdminURL+path, r)
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set("Bawwab-Operator", "nour")
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var obj map[string]any
	_ = json.Unmarshal(raw, &obj)
	return resp.StatusCode, obj, string(raw)
}

// loginPageOf returns the login page of a new pending request on e.
func loginPageOf(e *env) string {
	b := e.browser()
	p := b.get(e.notesRequest("openid").url())
	return b.get(p.Location).Body
}

// TestUpstreamAddedByAdminAPI: an upstream added through the admin API
// appears on the login page of this node at once and of another node
// sharing the store within seconds, signs a person in (a just-in-time
// account, listed among the upstream's users, its login audited with the
// upstream), keeps its client secret sealed in the database file, and
// once disabled leaves the login page and has its callback refused, also
// for a browser that left for the upstream before.
func TestUpstreamAddedByAdminAPI(t *testing.T) {
	op := startFakeOP(t)
	dbFile := filepath.Join(t.TempDir(), "bawwab.db")
	store, err := sqlite.Open(context.Background(), dbFile)
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := startOn(t, store)
	other := startOn(t, store)
	if strings.Contains(loginPageOf(e), "upstream:corp") {
		t.Fatal("a button before the upstream was added")
	}
	loginPageOf(other) // the other node reads (and caches) the list without it

	c := op.Config("corp")
	const secret = "fake-secret"
	st, obj, body := e.operatorCall("POST", "/admin/upstreams", c)
	if st != http.StatusCreated || obj["client_secret_set"] != true || strings.Contains(body, secret) {
		t.Fatalf("add: %d %s", st, body)
	}
	if !strings.Contains(loginPageOf(e), `value="upstream:corp"`) {
		t.Fatal("the upstream added is not on this node's login page")
	}
	other.Clock.Advance(3 * time.Second) // past the other node's cache of the list
	if !strings.Contains(loginPageOf(other), `value="upstream:corp"`) {
		t.Fatal("the upstream added is not on the other node's login page")
	}

	// Sign in through it: a just-in-time account, with its login audited
	// under the upstream.
	b := e.browser()
	r := e.notesRequest("openid email")
	jane := upstreamUser{Username: "jane", Email: "jane@fake.example", EmailVerified: true}
	p, _ := b.upstreamLogin(op, r, "corp", jane)
	tr := b.finishDownstream(p, r)
	sub, _ := claimsOf(t, tr.IDToken)["sub"].(string)
	if tr.Status != http.StatusOK || sub == "" {
		t.Fatalf("sign-in through the upstream added: %d %s", tr.Status, tr.Description)
	}
	var users struct {
		Users []struct {
			UserID   string `json:"user_id"`
			Username string `json:"username"`
			Subject  string `json:"subject"`
		} `json:"users"`
	}
	st, _, body = e.operatorCall("GET", "/admin/upstreams/corp/users", nil)
	if err := json.Unmarshal([]byte(body), &users); st != 200 || err != nil || len(users.Users) != 1 ||
		users.Users[0].UserID != sub || users.Users[0].Username != "jane" || users.Users[0].Subject != "sub-jane" {
		t.Fatalf("users of the upstream: %d %s", st, body)
	}
	st, _, body = e.operatorCall("GET", "/admin/audit?type=login&upstream=corp", nil)
	if st != 200 || !strings.Contains(body, `"method=upstream:corp"`) || !strings.Contains(body, sub) {
		t.Fatalf("logins through the upstream in the audit log: %d %s", st, body)
	}
	st, _, body = e.operatorCall("GET", "/admin/audit?upstream=corp", nil)
	if st != 200 || !strings.Contains(body, `"type":"upstream_added"`) || !strings.Contains(body, "operator=nour") {
		t.Fatalf("the operator's change in the audit log: %d %s", st, body)
	}

	// The secret is sealed: not in the row, nor anywhere in the database
	// files.
	row, err := e.Store.GetUpstream(context.Background(), "corp")
	if err != nil || row.SecretSealed == "" || strings.Contains(row.Config+row.SecretSealed, secret) {
		t.Fatalf("stored upstream %+v %v", row, err)
	}
	assertNotInDatabase(t, dbFile, secret)

	// Disabled: no button on either node, and the callback of a browser
	// that left for the upstream before is refused.
	b2 := e.browser()
	r2 := e.notesRequest("openid")
	p = b2.get(r2.url())
	callback := op.SignIn(t, b2, b2.startUpstreamLogin(p.Location, "corp"), jane)
	if st, _, body := e.operatorCall("POST", "/admin/upstreams/corp/disable", nil); st != 200 {
		t.Fatalf("disable: %d %s", st, body)
	}
	if strings.Contains(loginPageOf(e), "upstream:corp") {
		t.Fatal("a disabled upstream is on this node's login page")
	}
	if p := b2.get(callback); p.Status != http.StatusNotFound {
		t.Fatalf("the callback of a disabled upstream: %d %s", p.Status, p.Location)
	}
	other.Clock.Advance(3 * time.Second)
	if strings.Contains(loginPageOf(other), "upstream:corp") {
		t.Fatal("a disabled upstream is on the other node's login page")
	}
	// Enabled again, its users sign in to the same account.
	if st, _, body := e.operatorCall("POST", "/admin/upstreams/corp/enable", nil); st != 200 {
		t.Fatalf("enable: %d %s", st, body)
	}
	b3 := e.browser()
	r3 := e.notesRequest("openid")
	p, _ = b3.upstreamLogin(op, r3, "corp", jane)
	if tr := b3.finishDownstream(p, r3); claimsOf(t, tr.IDToken)["sub"] != sub {
		t.Fatalf("after enable, sign-in as %v, want %s", claimsOf(t, tr.IDToken)["sub"], sub)
	}
}

// assertNotInDatabase fails when text is in any file of the SQLite
// database at path (the database, its journal and WAL).
func assertNotInDatabase(t *testing.T, path, text string) {
	t.Helper()
	files, _ := filepath.Glob(path + "*")
	if len(files) == 0 {
		t.Fatalf("no database files at %s", path)
	}
	for _, f := range files {
		raw, err := os.ReadFile(f)
		if err != nil {
			t.Fatal(err)
		}
		if bytes.Contains(raw, []byte(text)) {
			t.Fatalf("%q is in the database file %s in clear", text, filepath.Base(f))
		}
	}
}

// TestUpstreamConfiguredReadOnly: an upstream of the configuration file
// is listed by the admin API, read-only, without its secret; its id
// cannot be taken by the API.
func TestUpstreamConfiguredReadOnly(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	st, _, body := e.operatorCall("GET", "/admin/upstreams", nil)
	if st != 200 || !strings.Contains(body, `"source":"config"`) || !strings.Contains(body, `"read_only":true`) || strings.Contains(body, "fake-secret") {
		t.Fatalf("list: %d %s", st, body)
	}
	for _, c := range []struct{ method, path string }{{"PUT", "/admin/upstreams/fake"}, {"DELETE", "/admin/upstreams/fake"},
		{"POST", "/admin/upstreams/fake/disable"}} {
		if st, obj, body := e.operatorCall(c.method, c.path, op.Config("fake")); st != http.StatusConflict || obj["error"] != "read_only" {
			t.Fatalf("%s %s: %d %s", c.method, c.path, st, body)
		}
	}
	if st, _, body := e.operatorCall("POST", "/admin/upstreams", op.Config("fake")); st != http.StatusConflict {
		t.Fatalf("adding the configured id: %d %s", st, body)
	}
	if !strings.Contains(loginPageOf(e), `value="upstream:fake"`) {
		t.Fatal("the configured upstream left the login page")
	}
}

// TestUpstreamCLI: bawwab upstream add, list, users, disable, enable and
// delete, through a running server's admin API and on the store.
func TestUpstreamCLI(t *testing.T) {
	op := startGitHubOP(t)
	e := start(t)
	admin := newCLI(t, "BAWWAB_ADMIN_TOKEN="+adminToken, "BAWWAB_OPERATOR=cli-operator")
	run := func(wantOK bool, stdin string, args ...string) string {
		t.Helper()
		return admin.runIn(stdin, wantOK, append(args, "--server", e.AdminURL)...)
	}
	c := op.Config("gh")
	out := run(true, "gh-secret\n", "upstream", "add", "--id", "gh", "--preset", "github", "--name", "GitHub", "--name-ar", "جيت هب",
		"--client-id", c.ClientID, "--client-secret-file", "-", "--auth-url", c.AuthURL, "--token-url", c.TokenURL,
		"--userinfo-url", c.UserinfoURL, "--emails-url", c.EmailsURL)
	if !strings.Contains(out, "set (sealed)") || strings.Contains(out, "gh-secret") {
		t.Fatalf("upstream add:\n%s", out)
	}
	if out := run(false, "", "upstream", "add", "--id", "bad", "--preset", "gitlab", "--client-id", "x", "--name", "X"); !strings.Contains(out, "google or github") {
		t.Fatalf("unknown preset:\n%s", out)
	}
	if out := run(false, "", "upstream", "add", "--id", "bad", "--type", "oidc", "--oidc-issuer", "http://login.example", "--client-id", "x", "--name", "X"); !strings.Contains(out, "https") {
		t.Fatalf("an http issuer:\n%s", out)
	}
	if out := run(true, "", "upstream", "list"); !strings.Contains(out, "gh") || !strings.Contains(out, "GitHub") || !strings.Contains(out, "api") {
		t.Fatalf("upstream list:\n%s", out)
	}
	// A sign-in through it, then its users.
	b := e.browser()
	r := e.notesRequest("openid email")
	p, _ := b.upstreamLogin(op, r, "gh", upstreamUser{Username: "octo", Email: "octo@gh.example", EmailVerified: true})
	if tr := b.finishDownstream(p, r); tr.Status != http.StatusOK {
		t.Fatalf("sign-in through the upstream the CLI added: %d %s", tr.Status, tr.Description)
	}
	if out := run(true, "", "upstream", "users", "gh"); !strings.Contains(out, "octo") {
		t.Fatalf("upstream users:\n%s", out)
	}
	if out := run(true, "", "upstream", "update", "gh", "--name", "GitHub Enterprise"); !strings.Contains(out, "GitHub Enterprise") || !strings.Contains(out, "set (sealed)") {
		t.Fatalf("upstream update:\n%s", out)
	}
	if out := run(true, "", "upstream", "disable", "gh"); !strings.Contains(out, "false") {
		t.Fatalf("upstream disable:\n%s", out)
	}
	if strings.Contains(loginPageOf(e), "upstream:gh") {
		t.Fatal("disabled by the CLI, the upstream is still on the login page")
	}
	run(true, "", "upstream", "enable", "gh")
	events, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: "upstream_disabled"})
	if len(events) != 1 || !strings.Contains(events[0].Detail, "operator=cli-operator") {
		t.Fatalf("the CLI's change in the audit log: %+v", events)
	}
	if out := run(true, "", "upstream", "delete", "gh"); !strings.Contains(out, "deleted") {
		t.Fatalf("upstream delete:\n%s", out)
	}
	if l, _ := e.Store.ListUpstreamUsers(context.Background(), "gh", "", 10); len(l) != 0 {
		t.Fatalf("links of a deleted upstream stay: %+v", l)
	}

	// On the store itself, without a server; the secret from a file.
	dir := t.TempDir()
	secretFile := filepath.Join(dir, "secret.txt")
	if err := os.WriteFile(secretFile, []byte("google-secret-value\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	operator := newCLI(t, "BAWWAB_OPERATOR=cli-operator")
	local := func(wantOK bool, args ...string) string {
		t.Helper()
		return operator.run(wantOK, append(args, "--data-dir", dir)...)
	}
	local(true, "upstream", "add", "--id", "google", "--preset", "google", "--name", "Google", "--client-id", "x.apps.googleusercontent.com",
		"--client-secret-file", secretFile)
	if out := local(true, "upstream", "list", "-o", "json"); !strings.Contains(out, `"issuer": "https://accounts.google.com"`) &&
		!strings.Contains(out, `"type": "google"`) || strings.Contains(out, "google-secret-value") {
		t.Fatalf("local upstream list:\n%s", out)
	}
	if out := local(false, "upstream", "update", "google", "--oidc-issuer", "https://evil.example"); !strings.Contains(out, "issuer cannot change") {
		t.Fatalf("local update of the issuer:\n%s", out)
	}
	if out := local(true, "audit", "list", "--upstream", "google"); !strings.Contains(out, "upstream_added") {
		t.Fatalf("local audit list --upstream:\n%s", out)
	}
}

// TestUpstreamAccountSetsPassword: a just-in-time account, which has no
// password, sets one on the Security page without a current password
// but only within minutes of signing in; it then signs in with it, and a
// second "first" password is refused.
func TestUpstreamAccountSetsPassword(t *testing.T) {
	op := startFakeOP(t)
	e := startWithUpstream(t, op, "fake")
	signIn := func(name string) *browser {
		t.Helper()
		b := e.browser()
		r := e.notesRequest("openid")
		p, _ := b.upstreamLogin(op, r, "fake", upstreamUser{Username: name, Email: name + "@fake.example", EmailVerified: true})
		b.finishDownstream(p, r)
		return b
	}
	passwordOf := func(name string) string {
		u, err := e.Store.GetUserByUsername(context.Background(), name)
		if err != nil {
			t.Fatal(err)
		}
		return u.PasswordHash
	}
	const pw = "violet harbour ninety"
	b := signIn("noor")
	sec := b.get("/account/security")
	if !strings.Contains(sec.Body, `id="set-password"`) || strings.Contains(sec.Body, `id="pw-current"`) {
		t.Fatalf("security page of an account without a password: %s", sec.Body)
	}
	tests := []struct {
		name, next, confirm string
		status              int
	}{
		{"mismatch", pw, pw + "x", http.StatusBadRequest},
		{"weak", "noor", "noor", http.StatusBadRequest},
		{"set", pw, pw, http.StatusSeeOther},
		// Now it has one: the form asks for it, and a second first password is refused.
		{"again without the current one", "another long password", "another long password", http.StatusUnauthorized},
	}
	for _, tt := range tests {
		p := b.post("/account/security/password", url.Values{"csrf_token": {csrfOf(t, sec)}, "new": {tt.next}, "confirm": {tt.confirm}})
		if p.Status != tt.status {
			t.Fatalf("%s: %d %s", tt.name, p.Status, p.Body)
		}
		if tt.name == "weak" && passwordOf("noor") != "" {
			t.Fatal("a refused password was set")
		}
	}
	nb := e.browser()
	lp := nb.get("/login")
	if p := nb.post("/login", url.Values{"csrf_token": {csrfOf(t, lp)}, "username": {"noor"}, "password": {pw}}); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-in with the password set: %d %s", p.Status, p.Body)
	}
	if auditCount(t, e, "password_changed", mustUserID(t, e, "noor")) != 1 {
		t.Error("the first password is not in the audit log")
	}

	// A sign-in older than five minutes must be made again first.
	b = signIn("sami")
	sec = b.get("/account/security")
	e.Clock.Advance(6 * time.Minute)
	if sec := b.get("/account/security"); !strings.Contains(sec.Body, `id="password-fresh"`) || strings.Contains(sec.Body, `id="set-password"`) {
		t.Fatalf("security page after a stale sign-in: %s", sec.Body)
	}
	if p := b.post("/account/security/password", url.Values{"csrf_token": {csrfOf(t, sec)}, "new": {pw}, "confirm": {pw}}); p.Status != http.StatusForbidden || passwordOf("sami") != "" {
		t.Fatalf("a password set on a stale sign-in: %d", p.Status)
	}
}

func mustUserID(t *testing.T, e *env, name string) string {
	t.Helper()
	u, err := e.Store.GetUserByUsername(context.Background(), name)
	if err != nil {
		t.Fatal(err)
	}
	return u.ID
}

// TestUpstreamAdminOnCluster: on nodes sharing only a PostgreSQL database,
// an upstream added on one node signs people in on another, and disabled
// there leaves the first node's login page.
func TestUpstreamAdminOnCluster(t *testing.T) {
	nodes := startCluster(t, 2)
	n1, n2 := nodes[0], nodes[1]
	op := startFakeOP(t)
	if st, _, body := n1.operatorCall("POST", "/admin/upstreams", op.Config("corp")); st != http.StatusCreated {
		t.Fatalf("add on node 1: %d %s", st, body)
	}
	n2.Clock.Advance(3 * time.Second) // the nodes share the clock: past every node's cache
	b := n2.browser()
	r := n2.notesRequest("openid")
	p, _ := b.upstreamLogin(op, r, "corp", upstreamUser{Username: "lina", Email: "lina@fake.example", EmailVerified: true})
	if tr := b.finishDownstream(p, r); tr.Status != http.StatusOK {
		t.Fatalf("sign-in on node 2 through the upstream added on node 1: %d %s", tr.Status, tr.Description)
	}
	if st, _, body := n2.operatorCall("POST", "/admin/upstreams/corp/disable", nil); st != http.StatusOK {
		t.Fatalf("disable on node 2: %d %s", st, body)
	}
	n1.Clock.Advance(3 * time.Second)
	if strings.Contains(loginPageOf(n1), "upstream:corp") {
		t.Fatal("disabled on node 2, the upstream is still on node 1's login page")
	}
}
