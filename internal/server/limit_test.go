package server_test

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/server"
)

// TestLimitListener: with the cap reached by clients that keep their
// connections open, the next client gets 503 temporarily_unavailable with
// Connection: close at once (not a wait in the accept queue, not a reset);
// once a connection closes, a new one is served again.
func TestLimitListener(t *testing.T) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	srv := &http.Server{Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { _, _ = io.WriteString(w, "ok") })}
	go func() { _ = srv.Serve(server.LimitListener(l, 2, nil, nil)) }()
	defer srv.Close()
	addr := l.Addr().String()

	// get sends one request on a new connection and returns the response,
	// leaving the connection open (keep-alive) unless the server closes it.
	get := func() (*http.Response, net.Conn) {
		t.Helper()
		c, err := net.Dial("tcp", addr)
		if err != nil {
			t.Fatal(err)
		}
		_ = c.SetDeadline(time.Now().Add(10 * time.Second))
		fmt.Fprintf(c, "GET / HTTP/1.1\r\nHost: %s\r\n\r\n", addr)
		resp, err := http.ReadResponse(bufio.NewReader(c), nil)
		if err != nil {
			t.Fatalf("no response: %v", err)
		}
		return resp, c
	}
	var held []net.Conn
	for range 2 {
		resp, c := get()
		if resp.StatusCode != 200 {
			t.Fatalf("under the cap: %d", resp.StatusCode)
		}
		held = append(held, c)
	}
	start := time.Now()
	resp, c := get()
	var body struct{ Error string }
	_ = json.NewDecoder(resp.Body).Decode(&body)
	c.Close()
	if resp.StatusCode != http.StatusServiceUnavailable || body.Error != "temporarily_unavailable" || !resp.Close ||
		resp.Header.Get("Retry-After") == "" {
		t.Fatalf("past the cap: %d %+v close=%v", resp.StatusCode, body, resp.Close)
	}
	// Shed at once: a client queued behind the held connections would wait
	// for ever (they stay open), so the bound only leaves room for a loaded
	// machine.
	if d := time.Since(start); d > 5*time.Second {
		t.Fatalf("the shed client waited %v", d)
	}
	held[0].Close()
	deadline := time.Now().Add(10 * time.Second)
	for {
		resp, c := get()
		c.Close()
		if resp.StatusCode == 200 {
			break
		}
		if time.Now().After(deadline) {
			t.Fatal("a closed connection did not free its place")
		}
		time.Sleep(10 * time.Millisecond)
	}
}

// TestMaxConnections: the default cap leaves descriptors to spare under
// RLIMIT_NOFILE; a configured cap wins.
func TestMaxConnections(t *testing.T) {
	s := &server.Server{Config: config.Default()}
	def := s.MaxConnections()
	if def < 16 || def >= server.DescriptorLimit() && server.DescriptorLimit() > 0 {
		t.Fatalf("default cap %d with a descriptor limit of %d", def, server.DescriptorLimit())
	}
	s.Config.MaxConnections = 7
	if got := s.MaxConnections(); got != 7 {
		t.Fatalf("configured cap: %d", got)
	}
}
