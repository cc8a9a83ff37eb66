package e2e

import (
	"bufio"
	"context"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestOrderlyShutdown: what bawwab serve does on SIGTERM (Run returning,
// then the store closing). A request whose body is still arriving and a
// back-channel logout delivery to a slow client are both under way when
// the shutdown begins; Run returns only after the request was answered
// and the delivery done, and after the store closes nothing logs an error
// (no background job still uses it).
func TestOrderlyShutdown(t *testing.T) {
	ctx := context.Background()
	store, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	l, al := listen(t), listen(t)
	base := "http://" + l.Addr().String()
	cfg := config.Default()
	cfg.Issuer, cfg.AdminToken = base, adminToken
	cfg.InsecureOutboundAllow = []string{"127.0.0.1"} // the relying party below listens on loopback
	logs := &syncBuffer{}
	srv, err := server.New(ctx, cfg, store, slog.New(slog.NewJSONHandler(logs, nil)), server.Options{Password: &testPassword})
	if err != nil {
		t.Fatal(err)
	}
	userID := seed(t, store, notesSecretForTests, robotSecretForTests)

	var delivered atomic.Bool
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		time.Sleep(time.Second) // a slow relying party
		delivered.Store(true)
	}))
	defer rp.Close()
	if _, err := admin.AddClient(ctx, store, admin.ClientSpec{ID: "feed", Name: "Feed", RedirectURIs: []string{"https://feed.example/cb"},
		Scopes: []string{"openid"}, BackchannelLogoutURI: rp.URL + "/logout", Outbound: srv.Outbound}, scope.Default()); err != nil {
		t.Fatal(err)
	}

	runCtx, sigterm := context.WithCancel(ctx)
	ran := make(chan error, 1)
	var returned atomic.Bool
	go func() { err := srv.Run(runCtx, l, al); returned.Store(true); ran <- err }()

	// The user allowed feed, which will hear of the password reset.
	e := &env{t: t, URL: base, AdminURL: "http://" + al.Addr().String(), Store: store, NotesSecret: notesSecretForTests,
		RobotSecret: robotSecretForTests, UserID: userID, Clock: &clock{}, Logs: logs}
	e.browser().authorize(authRequest{ClientID: "feed", RedirectURI: "https://feed.example/cb", Scope: "openid", State: "s",
		Verifier: strings.Repeat("f", 43)})

	// A token request whose body arrives slowly.
	conn, err := net.Dial("tcp", l.Addr().String())
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	body := url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}.Encode()
	fmt.Fprintf(conn, "POST /token HTTP/1.1\r\nHost: %s\r\nContent-Type: application/x-www-form-urlencoded\r\nContent-Length: %d\r\n"+
		"Authorization: Basic %s\r\n\r\n%s", l.Addr(), len(body), basic("robot", robotSecretForTests), body[:5])
	time.Sleep(100 * time.Millisecond) // the server is reading the body

	// A delivery under way.
	if status, _ := e.adminCall("PUT", "/admin/users/"+userID+"/password", adminToken, map[string]string{"password": "yet another passphrase"}, nil); status != 204 {
		t.Fatalf("set password: %d", status)
	}

	sigterm()
	// The listener closes promptly; a loaded machine may take a moment.
	for deadline := time.Now().Add(10 * time.Second); ; time.Sleep(50 * time.Millisecond) {
		c, err := net.DialTimeout("tcp", l.Addr().String(), time.Second)
		if err != nil {
			break
		}
		c.Close()
		if time.Now().After(deadline) {
			t.Fatal("the listener still accepts connections 10 s after SIGTERM")
		}
	}
	if returned.Load() {
		t.Fatal("Run returned while a request was in flight")
	}
	if _, err := io.WriteString(conn, body[5:]); err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatalf("the request in flight got no response: %v", err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusOK {
		t.Fatalf("the request in flight: %d", resp.StatusCode)
	}

	select {
	case err := <-ran:
		if err != nil {
			t.Fatalf("Run: %v", err)
		}
	case <-time.After(15 * time.Second):
		t.Fatal("Run did not return")
	}
	if !delivered.Load() {
		t.Fatal("Run returned before the back-channel logout was delivered")
	}
	store.Close()
	time.Sleep(2500 * time.Millisecond) // a probe interval and more: a job still running would log
	if s := logs.String(); strings.Contains(s, "closed") || strings.Contains(s, `"level":"ERROR"`) {
		t.Fatalf("the store was used after it closed:\n%s", s)
	}
}

func basic(user, pass string) string {
	req, _ := http.NewRequest("GET", "/", nil)
	req.SetBasicAuth(user, pass)
	return strings.TrimPrefix(req.Header.Get("Authorization"), "Basic ")
}
