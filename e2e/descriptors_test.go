package e2e

import (
	"context"
	"encoding/json"
	"net"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/testenv"
)

// TestDescriptorLimit runs the bawwab binary with a descriptor limit of
// 200 and opens 300 idle connections to it. Past the cap derived from the
// limit, new clients get 503 temporarily_unavailable at once (not a wait
// in the accept queue); a client already connected still gets tokens,
// which need the store; once the idle connections go, new clients are
// served again; the process never runs out of descriptors.
func TestDescriptorLimit(t *testing.T) {
	prlimit, err := exec.LookPath("prlimit")
	if err != nil {
		testenv.Missing(t, "prlimit", "install util-linux")
	}
	bin := buildBawwab(t)
	dir := t.TempDir()
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	seed(t, store, notesSecretForTests, robotSecretForTests)
	store.Close()
	// bawwab binds a port of its own choosing and says which: no port is
	// closed by the test and hoped to be free again.
	out := &syncBuffer{}
	cmd := exec.Command(prlimit, "--nofile=200:200", "--", bin, "serve", "--listen", "127.0.0.1:0", "--issuer", "http://127.0.0.1",
		"--data-dir", dir, "--log-level", "warn")
	cmd.Stdout, cmd.Stderr = out, out
	cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { _ = cmd.Process.Kill(); _ = cmd.Wait() })
	serving := regexp.MustCompile(`bawwab serving \S+ on http://(\S+)`)
	var addr string
	for deadline := time.Now().Add(20 * time.Second); addr == ""; time.Sleep(20 * time.Millisecond) {
		if m := serving.FindStringSubmatch(out.String()); m != nil {
			addr = m[1]
		} else if time.Now().After(deadline) {
			t.Fatalf("bawwab did not say where it serves:\n%s", out)
		}
	}
	base := "http://" + addr
	tokenReq := func(c *http.Client) (int, string) {
		t.Helper()
		req, _ := http.NewRequest("POST", base+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"},
			"scope": {"files.read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("robot", robotSecretForTests)
		resp, err := c.Do(req)
		if err != nil {
			return 0, err.Error()
		}
		defer resp.Body.Close()
		var body struct{ Error string }
		_ = json.NewDecoder(resp.Body).Decode(&body)
		return resp.StatusCode, body.Error
	}
	connected := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 1}, Timeout: 5 * time.Second}
	deadline := time.Now().Add(20 * time.Second)
	for {
		if status, _ := tokenReq(connected); status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("bawwab did not come up:\n%s", out)
		}
		time.Sleep(20 * time.Millisecond)
	}

	var idle []net.Conn
	defer func() {
		for _, c := range idle {
			c.Close()
		}
	}()
	for range 300 {
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatalf("dial: %v", err)
		}
		idle = append(idle, c)
	}
	fresh := func() *http.Client {
		return &http.Client{Transport: &http.Transport{DisableKeepAlives: true}, Timeout: 5 * time.Second}
	}
	start := time.Now()
	status, code := tokenReq(fresh())
	if status != http.StatusServiceUnavailable || code != "temporarily_unavailable" {
		t.Fatalf("a new client at the cap: %d %s", status, code)
	}
	if d := time.Since(start); d > 2*time.Second {
		t.Fatalf("a new client at the cap waited %v", d)
	}
	for range 5 {
		if status, code := tokenReq(connected); status != 200 {
			t.Fatalf("a connected client at the cap: %d %s\n%s", status, code, out)
		}
	}
	for _, c := range idle {
		c.Close()
	}
	idle = nil
	deadline = time.Now().Add(5 * time.Second)
	for {
		status, code := tokenReq(fresh())
		if status == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatalf("a new client after the idle ones left: %d %s", status, code)
		}
		time.Sleep(50 * time.Millisecond)
	}
	if strings.Contains(out.String(), "too many open files") {
		t.Fatalf("the process ran out of descriptors:\n%s", out)
	}
}
