package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestCLI runs the bawwab binary's admin commands against a running
// server's admin API (--server) and against a store directly, and checks
// that each did what it says: both paths are the one admin API.
func TestCLI(t *testing.T) {
	bin := buildBawwab(t)
	e := start(t)
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=", "BAWWAB_ADMIN_TOKEN="+adminToken)
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("bawwab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	remote := func(args ...string) []string { return append(args, "--server", e.AdminURL) }

	// Remote: add a client, see it, use it.
	var created struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	out := run(true, remote("client", "add", "--id", "cron", "--grant-type", "client_credentials", "--scope", "files.read", "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("client add -o json: %v\n%s", err, out)
	}
	if tok := e.token(map[string][]string{"grant_type": {"client_credentials"}}, "cron", created.Secret); tok.Status != 200 {
		t.Fatalf("the client added by the CLI cannot get a token: %d %s", tok.Status, tok.Description)
	}
	if out := run(true, remote("client", "list")...); !strings.Contains(out, "cron") || !strings.Contains(out, "CLIENT_ID") {
		t.Fatalf("client list:\n%s", out)
	}
	kid := strings.Fields(run(true, remote("keys", "rotate")...))[3]
	if e.Server.Keys.ActiveKID() != strings.TrimSuffix(kid, ";") {
		t.Fatalf("keys rotate over the API: server signs with %s, CLI said %s", e.Server.Keys.ActiveKID(), kid)
	}
	if out := run(true, remote("audit", "list", "--type", "token_issued")...); !strings.Contains(out, "EVENT") {
		t.Fatalf("audit list:\n%s", out)
	}

	// Mistakes are explained, with a non-zero exit.
	if out := run(false, remote("client", "add", "--redirect-uri", "http://evil.example/cb")...); !strings.Contains(out, "redirect URI") {
		t.Fatalf("bad redirect URI:\n%s", out)
	}
	if out := run(false, "client", "list", "--server", e.AdminURL, "--admin-token", "wrong-token-wrong-token-wrong-token"); !strings.Contains(out, "admin token") {
		t.Fatalf("wrong admin token:\n%s", out)
	}
	if out := run(false, remote("client", "list", "-o", "yaml")...); !strings.Contains(out, "table or json") {
		t.Fatalf("bad --output:\n%s", out)
	}

	// Local: the same commands on a store of its own.
	dir := t.TempDir()
	run(true, "user", "add", "--username", "rania", "--password", "a long and unusual phrase", "--data-dir", dir)
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !strings.Contains(out, `"username": "rania"`) {
		t.Fatalf("local user list:\n%s", out)
	}
	if out := run(false, "user", "add", "--username", "x", "--password", "password1", "--data-dir", dir); !strings.Contains(out, "breached") {
		t.Fatalf("breached password:\n%s", out)
	}
}
