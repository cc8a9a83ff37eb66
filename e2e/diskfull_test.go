package e2e

import (
	"context"
	"errors"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/testenv"
)

// smallDisk mounts a tmpfs of the given size for the test and unmounts it
// afterwards, or skips when mounting is not allowed (not root, or a
// container without CAP_SYS_ADMIN).
func smallDisk(t *testing.T, size string) string {
	t.Helper()
	dir := t.TempDir()
	if out, err := exec.Command("mount", "-t", "tmpfs", "-o", "size="+size, "tmpfs", dir).CombinedOutput(); err != nil {
		testenv.Missing(t, "a small file system", "run as root where mount -t tmpfs is allowed: "+strings.TrimSpace(string(out)))
	}
	t.Cleanup(func() {
		if out, err := exec.Command("umount", dir).CombinedOutput(); err != nil {
			t.Errorf("umount %s: %v %s", dir, err, out)
		}
	})
	return dir
}

// fill writes a file until the file system is full.
func fill(t *testing.T, path string) {
	t.Helper()
	f, err := os.Create(path)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	chunk := make([]byte, 16<<10)
	for {
		if _, err := f.Write(chunk); err != nil {
			if !errors.Is(err, syscall.ENOSPC) {
				t.Fatalf("filling the disk: %v", err)
			}
			return
		}
	}
}

// waitReady polls /readyz until it answers want, for up to ten seconds.
func waitReady(t *testing.T, e *env, want int, why string) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for {
		status, _, body := getBody(t, e.URL+"/readyz")
		if status == want {
			return
		}
		if time.Now().After(deadline) {
			t.Fatalf("%s: /readyz still answers %d %q, want %d", why, status, body, want)
		}
		time.Sleep(100 * time.Millisecond)
	}
}

// TestDiskFull: SQLite on a file system that fills up. Token requests that
// must write get 503 temporarily_unavailable (never 500), /readyz fails
// within a few probe intervals, and once space is freed the server is
// ready again and serves the refresh chain it had, without a restart; the
// database passes PRAGMA integrity_check.
func TestDiskFull(t *testing.T) {
	dir := smallDisk(t, "3m")
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(dir, "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	e := startOn(t, store)
	r := e.notesRequest("openid offline_access")
	tok := e.redeem(e.browser().authorize(r, "openid", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "code redemption", tok.Description)
	rt := tok.RefreshToken
	waitReady(t, e, http.StatusOK, "before the disk fills")

	filler := filepath.Join(dir, "filler")
	fill(t, filler)
	// Writes fail once SQLite's WAL needs room it cannot get; keep writing
	// until they do.
	unavailable := 0
	for i := 0; i < 300 && unavailable < 3; i++ {
		res := e.refresh(rt)
		switch {
		case res.Status == http.StatusOK:
			rt = res.RefreshToken
		case res.Status == http.StatusServiceUnavailable && res.Error == "temporarily_unavailable":
			if res.Header.Get("Retry-After") == "" {
				t.Fatal("503 without Retry-After")
			}
			unavailable++
		default:
			t.Fatalf("refresh on a full disk: %d %s %s", res.Status, res.Error, res.Description)
		}
		cc := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
		if cc.Status != http.StatusOK && cc.Status != http.StatusServiceUnavailable {
			t.Fatalf("client_credentials on a full disk: %d %s", cc.Status, cc.Description)
		}
	}
	if unavailable == 0 {
		t.Fatal("the disk is full but every refresh succeeded")
	}
	waitReady(t, e, http.StatusServiceUnavailable, "disk full")
	if !strings.Contains(e.Logs.String(), "store cannot commit") {
		t.Error("the failing write probe was not logged")
	}
	if _, _, m := getBody(t, e.URL+"/metrics"); !strings.Contains(m, "\nbawwab_store_commits 0\n") {
		t.Error("/metrics does not show the store failing to commit")
	}

	if err := os.Remove(filler); err != nil {
		t.Fatal(err)
	}
	waitReady(t, e, http.StatusOK, "space freed")
	res := e.refresh(rt)
	wantStatus(t, res.Status, 200, "refresh after recovery", res.Description)
	if !strings.Contains(e.Logs.String(), "store commits again") {
		t.Error("the recovery was not logged")
	}
	if _, _, m := getBody(t, e.URL+"/metrics"); !strings.Contains(m, "\nbawwab_store_commits 1\n") {
		t.Error("/metrics does not show the store committing again")
	}
	var check string
	if err := store.DB().QueryRowContext(ctx, "PRAGMA integrity_check").Scan(&check); err != nil || check != "ok" {
		t.Fatalf("integrity_check = %q, %v", check, err)
	}
}
