package e2e

import (
	"bufio"
	"io"
	"net"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"
)

// TestRequestLimits: oversized bodies and headers are refused with the
// right status, and a client that sends its headers slowly (slowloris) is
// cut off by the header timeout instead of holding a connection forever.
func TestRequestLimits(t *testing.T) {
	e := start(t)

	// A 1 MB token request body: invalid_request, not a 5xx, not a hang.
	big := url.Values{"grant_type": {"client_credentials"}, "scope": {strings.Repeat("a", 1<<20)}}
	r := e.token(big, "robot", e.RobotSecret)
	wantTokenError(t, r, 400, "invalid_request")

	// A 32 KB login form: refused before any work.
	b := e.browser()
	p := b.post("/login", url.Values{"x": {strings.Repeat("b", 32<<10)}})
	if p.Status != http.StatusBadRequest {
		t.Fatalf("oversized login form: %d", p.Status)
	}

	// 64 KB of headers: 431.
	req, _ := http.NewRequest("GET", e.URL+"/.well-known/openid-configuration", nil)
	for i := range 64 {
		req.Header.Set("X-Filler-"+strings.Repeat("x", i%5)+string(rune('a'+i%26))+string(rune('a'+i/26)), strings.Repeat("y", 1024))
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	if resp.StatusCode != http.StatusRequestHeaderFieldsTooLarge {
		t.Fatalf("64 KB of headers: %d", resp.StatusCode)
	}

	// Slowloris: one header byte every 300 ms never completes a request;
	// the server closes the connection after its header timeout (5 s).
	conn, err := net.Dial("tcp", strings.TrimPrefix(e.URL, "http://"))
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	if _, err := io.WriteString(conn, "GET /jwks.json HTTP/1.1\r\nHost: x\r\n"); err != nil {
		t.Fatal(err)
	}
	closed := make(chan time.Time, 1)
	go func() {
		_, _ = bufio.NewReader(conn).ReadString('\n') // returns when the server answers or closes
		closed <- time.Now()
	}()
	began := time.Now()
	for {
		select {
		case at := <-closed:
			if d := at.Sub(began); d > 8*time.Second {
				t.Fatalf("slow client held the connection for %v", d)
			}
			return
		case <-time.After(300 * time.Millisecond):
			if time.Since(began) > 10*time.Second {
				t.Fatal("the server never cut off a client sending one header byte every 300 ms")
			}
			_, _ = io.WriteString(conn, "X")
		}
	}
}
