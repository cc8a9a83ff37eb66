package e2e

import (
	"bufio"
	"context"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
)

// TestCLIHelpsTheOperator: admin commands list no server setting (only
// where the store or the admin API is); server settings are typed flags
// of serve and config check; user add's help fits one screen; a mistyped
// flag gets a suggestion; config check refuses what serve would; a driver
// error is explained; serve on an empty store says how to add a user and
// a client.
func TestCLIHelpsTheOperator(t *testing.T) {
	bin := buildBawwab(t)
	run := func(wantOK bool, args ...string) string {
		t.Helper()
		cmd := exec.Command(bin, args...)
		cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
		out, err := cmd.CombinedOutput()
		if (err == nil) != wantOK {
			t.Fatalf("bawwab %s: %v\n%s", strings.Join(args, " "), err, out)
		}
		return string(out)
	}
	allowed := map[string]bool{"admin-token": true, "data-dir": true, "database": true} // where the admin commands work
	for _, path := range [][]string{
		{"user", "add"}, {"user", "list"}, {"user", "delete"}, {"user", "password"},
		{"user", "factors"}, {"user", "reset-mfa"}, {"user", "disable"}, {"user", "enable"}, {"user", "resend-verification"}, {"user", "unlock"},
		{"user", "admin"}, {"client", "add"}, {"client", "update"}, {"client", "list"}, {"client", "delete"},
		{"upstream", "add"}, {"upstream", "update"}, {"upstream", "list"}, {"upstream", "disable"}, {"upstream", "enable"},
		{"upstream", "delete"}, {"upstream", "users"}, {"registration", "token", "create"}, {"registration", "token", "list"},
		{"registration", "token", "revoke"},
		{"grant", "list"}, {"grant", "revoke"}, {"grant", "revoke-all"},
		{"scope", "list"}, {"scope", "set"}, {"scope", "delete"}, {"keys", "list"}, {"keys", "rotate"},
		{"audit", "list"}, {"export"}, {"import"}, {"device-login"},
	} {
		help := run(true, append(path, "--help")...)
		for _, f := range config.Fields {
			if !allowed[f.Flag()] && strings.Contains(help, "--"+f.Flag()+" ") {
				t.Errorf("bawwab %s --help lists the server flag --%s", strings.Join(path, " "), f.Flag())
			}
		}
	}
	if help := run(true, "user", "add", "--help"); strings.Count(help, "\n") > 25 || strings.Count(help, "password-stdin") != 1 {
		t.Errorf("user add --help is %d lines (or documents --password-stdin more than once):\n%s", strings.Count(help, "\n"), help)
	}
	if help := run(true, "upstream", "add", "--help"); strings.Count(help, "\n") > 40 || !strings.Contains(help, "--preset") {
		t.Errorf("upstream add --help is %d lines (or lacks --preset):\n%s", strings.Count(help, "\n"), help)
	}
	for _, cmd := range [][]string{{"serve"}, {"config", "check"}} {
		help := run(true, append(cmd, "--help")...)
		for _, want := range []string{"--access-token-ttl duration", "--password-time int", "--listen string", "--audience strings"} {
			if !strings.Contains(help, want) {
				t.Errorf("bawwab %s --help lacks %q", strings.Join(cmd, " "), want)
			}
		}
	}

	if out := run(false, "user", "add", "--usernme", "x"); !strings.Contains(out, "did you mean --username?") {
		t.Errorf("mistyped flag:\n%s", out)
	}
	if out := run(false, "user", "list", "--listen", ":8080"); !strings.Contains(out, "server setting") {
		t.Errorf("server flag on an admin command:\n%s", out)
	}
	if out := run(false, "config", "check", "--access-token-ttl", "5"); !strings.Contains(out, "not a duration") {
		t.Errorf("untyped duration:\n%s", out)
	}
	if out := run(false, "config", "check", "--listen", "8080"); !strings.Contains(out, "must be host:port") {
		t.Errorf("config check --listen 8080:\n%s", out)
	}
	if out := run(false, "config", "check", "--listen", "no-such-host.invalid:8080"); !strings.Contains(out, "cannot be listened on") {
		t.Errorf("config check of an unresolvable listen host:\n%s", out)
	}
	if out := run(false, "user", "list", "--database", "postgres://bawwab@127.0.0.1:1/bawwab"); !strings.Contains(out, "is PostgreSQL running") {
		t.Errorf("refused database connection:\n%s", out)
	}

	// serve on an empty store says how to add a user and a client.
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	serve := exec.CommandContext(ctx, bin, "serve", "--data-dir", filepath.Join(t.TempDir(), "data"), "--listen", "127.0.0.1:0")
	serve.Env = append(os.Environ(), "BAWWAB_CONFIG=")
	stdout, err := serve.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := serve.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { _ = serve.Process.Kill(); _ = serve.Wait() }()
	var said strings.Builder
	for sc := bufio.NewScanner(stdout); sc.Scan(); {
		said.WriteString(sc.Text() + "\n")
		if strings.HasPrefix(sc.Text(), "bawwab serving") {
			break
		}
	}
	if !strings.Contains(said.String(), "bawwab user add --username") || !strings.Contains(said.String(), "bawwab client add") {
		t.Errorf("serve on an empty store:\n%s", said.String())
	}
}
