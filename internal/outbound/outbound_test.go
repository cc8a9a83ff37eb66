package outbound

import (
	"context"
	"encoding/binary"
	"errors"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"
)

func TestSpecial(t *testing.T) {
	for _, tt := range []struct {
		ip   string
		want bool // refused
	}{
		{"127.0.0.1", true},
		{"127.255.0.9", true},
		{"10.1.2.3", true},
		{"172.16.0.1", true},
		{"172.31.255.255", true},
		{"172.32.0.1", false},
		{"192.168.1.1", true},
		{"169.254.169.254", true}, // cloud metadata
		{"100.64.0.1", true},
		{"100.128.0.1", false},
		{"0.0.0.0", true},
		{"0.1.2.3", true},
		{"224.0.0.1", true},
		{"255.255.255.255", true},
		{"192.0.2.10", true},
		{"198.18.0.1", true},
		{"8.8.8.8", false},
		{"93.184.215.14", false},
		{"::", true},
		{"::1", true},
		{"::ffff:127.0.0.1", true},
		{"::ffff:10.0.0.1", true},
		{"::ffff:8.8.8.8", false},
		{"::127.0.0.1", true}, // IPv4-compatible
		{"64:ff9b::7f00:1", true},
		{"::ffff:0:7f00:1", true}, // IPv4-translated
		{"2002:7f00:1::1", true},
		{"2001:0:4136:e378::1", true}, // Teredo
		{"2001:db8::1", true},
		{"fc00::1", true},
		{"fd12:3456::1", true},
		{"fe80::1", true},
		{"fe80::1%eth0", true},
		{"ff02::1", true},
		{"2606:4700:4700::1111", false},
	} {
		t.Run(tt.ip, func(t *testing.T) {
			if got := Special(netip.MustParseAddr(tt.ip)) != ""; got != tt.want {
				t.Errorf("Special(%s) refused = %v, want %v", tt.ip, got, tt.want)
			}
		})
	}
}

func TestCheckURL(t *testing.T) {
	allow, err := ParseAllow([]string{"127.0.0.1/32", "dev.internal", "::1"})
	if err != nil {
		t.Fatal(err)
	}
	strict, open := New(Options{}), New(Options{Allow: allow})
	for _, tt := range []struct {
		name, url      string
		strict, opened bool // accepted
	}{
		{"https name", "https://rp.example/jwks", true, true},
		{"http name", "http://rp.example/jwks", false, false},
		{"http loopback", "http://127.0.0.1:8081/admin/users", false, true},
		{"http other loopback", "http://127.0.0.2/", false, false},
		{"https loopback", "https://127.0.0.1/", false, true},
		{"https private", "https://10.0.0.1/", false, false},
		{"https metadata", "https://169.254.169.254/latest/meta-data", false, false},
		{"https mapped loopback", "https://[::ffff:127.0.0.1]/", false, true},
		{"https v6 loopback", "https://[::1]/", false, true},
		{"allowed host over http", "http://dev.internal:9000/x", false, true},
		{"allowed host, other case", "http://DEV.internal/x", false, true},
		{"decimal IP is a name", "https://2130706433/", true, true}, // resolved, then checked at connect
		{"user info", "https://user@rp.example/", false, false},
		{"fragment", "https://rp.example/#", false, false},
		{"relative", "/jwks", false, false},
		{"file", "file:///etc/passwd", false, false},
		{"gopher", "gopher://rp.example/", false, false},
		{"opaque", "https:rp.example", false, false},
		{"localhost", "https://localhost/jwks", false, false},
		{"a .localhost name", "https://keys.LOCALHOST./jwks", false, false},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := strict.CheckURL(tt.url) == nil; got != tt.strict {
				t.Errorf("strict: CheckURL(%s) accepted = %v, want %v", tt.url, got, tt.strict)
			}
			if got := open.CheckURL(tt.url) == nil; got != tt.opened {
				t.Errorf("allowing loopback: CheckURL(%s) accepted = %v, want %v", tt.url, got, tt.opened)
			}
		})
	}
}

func TestParseAllow(t *testing.T) {
	for _, tt := range []struct {
		in      []string
		wantErr bool
	}{
		{[]string{"127.0.0.0/8", "::1", "localhost", " "}, false},
		{[]string{"10.0.0.0/33"}, true},
		{[]string{"user@host"}, true},
		{[]string{"host:80"}, true},
	} {
		if _, err := ParseAllow(tt.in); (err != nil) != tt.wantErr {
			t.Errorf("ParseAllow(%q): %v, want error %v", tt.in, err, tt.wantErr)
		}
	}
}

// server counts the requests it receives.
func server(t *testing.T, h http.HandlerFunc) (*httptest.Server, *atomic.Int32) {
	var n atomic.Int32
	s := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) { n.Add(1); h(w, r) }))
	t.Cleanup(s.Close)
	return s, &n
}

func loopback(t *testing.T) Allow {
	a, err := ParseAllow([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	return a
}

func TestGet(t *testing.T) {
	ctx := context.Background()
	ok, okHits := server(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(`{"keys":[]}`)) })
	big, _ := server(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte(strings.Repeat("x", 2048))) })
	denied, _ := server(t, func(w http.ResponseWriter, _ *http.Request) {
		http.Error(w, "secret internal detail", http.StatusUnauthorized)
	})
	slow, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		select {
		case <-r.Context().Done():
		case <-time.After(5 * time.Second):
		}
	})
	target, targetHits := server(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("inside")) })
	redirect, _ := server(t, func(w http.ResponseWriter, r *http.Request) {
		http.Redirect(w, r, target.URL+"/admin", http.StatusFound)
	})
	tlsSrv := httptest.NewTLSServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) { targetHits.Add(1) }))
	t.Cleanup(tlsSrv.Close)
	// localhost is refused by name; TestRebinding covers other names.
	rebind := strings.Replace(tlsSrv.URL, "127.0.0.1", "localhost", 1)

	strict := New(Options{})
	allowed := New(Options{Allow: loopback(t), MaxBytes: 1024, Timeout: 300 * time.Millisecond})
	for _, tt := range []struct {
		name    string
		c       *Client
		url     string
		wantErr error
	}{
		{"loopback allowed", allowed, ok.URL, nil},
		{"loopback refused by default", strict, ok.URL, ErrRefused},
		{"localhost refused", strict, rebind, ErrRefused},
		{"redirect not followed", allowed, redirect.URL, ErrRefused},
		{"too large", allowed, big.URL, ErrFailed},
		{"error status", allowed, denied.URL, ErrFailed},
		{"too slow", allowed, slow.URL, ErrFailed},
		{"nothing listening", allowed, "http://127.0.0.1:1/", ErrFailed},
	} {
		t.Run(tt.name, func(t *testing.T) {
			body, err := tt.c.Get(ctx, "c1", tt.url)
			if !errors.Is(err, tt.wantErr) || (tt.wantErr == nil) != (err == nil) {
				t.Fatalf("Get(%s): %v, want %v", tt.url, err, tt.wantErr)
			}
			if err != nil {
				if msg := err.Error(); msg != ErrRefused.Error() && msg != ErrFailed.Error() {
					t.Errorf("error text %q is not generic", msg)
				}
			} else if string(body) != `{"keys":[]}` {
				t.Errorf("body %q", body)
			}
		})
	}
	if okHits.Load() != 1 {
		t.Errorf("the loopback server got %d requests, want 1 (only the allowed one)", okHits.Load())
	}
	if targetHits.Load() != 0 {
		t.Errorf("a refused address received %d requests", targetHits.Load())
	}
}

func TestPostForm(t *testing.T) {
	var got atomic.Value
	rp, hits := server(t, func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got.Store(r.PostForm.Get("logout_token"))
	})
	var refusedFor atomic.Value
	strict := New(Options{})
	strict.Refused = func(_ context.Context, clientID, _, _ string) { refusedFor.Store(clientID) }
	if err := strict.PostForm(context.Background(), "feed", rp.URL, url.Values{"logout_token": {"t"}}); !errors.Is(err, ErrRefused) {
		t.Fatalf("post to loopback: %v, want refused", err)
	}
	if hits.Load() != 0 || refusedFor.Load() != "feed" {
		t.Fatalf("refused post: %d requests arrived, refusal reported for %v", hits.Load(), refusedFor.Load())
	}
	if err := New(Options{Allow: loopback(t)}).PostForm(context.Background(), "feed", rp.URL, url.Values{"logout_token": {"t"}}); err != nil {
		t.Fatal(err)
	}
	if got.Load() != "t" {
		t.Fatalf("form not delivered: %v", got.Load())
	}
}

// fakeDNS is a resolver that answers every A query with ip and every other
// query with no record: a name whose owner points it inward after it
// passed the URL checks (DNS rebinding).
func fakeDNS(ip [4]byte) *net.Resolver {
	return &net.Resolver{PreferGo: true, Dial: func(context.Context, string, string) (net.Conn, error) {
		client, server := net.Pipe()
		go func() {
			defer server.Close()
			for {
				var size [2]byte
				if _, err := io.ReadFull(server, size[:]); err != nil {
					return
				}
				q := make([]byte, binary.BigEndian.Uint16(size[:]))
				if _, err := io.ReadFull(server, q); err != nil || len(q) < 12 {
					return
				}
				end := 12
				for end < len(q) && q[end] != 0 {
					end += int(q[end]) + 1
				}
				end += 5 // the root label, QTYPE, QCLASS
				if end > len(q) {
					return
				}
				qtype := binary.BigEndian.Uint16(q[end-4:])
				resp := append([]byte{q[0], q[1], 0x81, 0x80, 0, 1, 0, 0, 0, 0, 0, 0}, q[12:end]...)
				if qtype == 1 { // A
					resp[7] = 1
					resp = append(resp, 0xc0, 12, 0, 1, 0, 1, 0, 0, 0, 60, 0, 4, ip[0], ip[1], ip[2], ip[3])
				}
				out := binary.BigEndian.AppendUint16(nil, uint16(len(resp)))
				if _, err := server.Write(append(out, resp...)); err != nil {
					return
				}
			}
		}()
		return client, nil
	}}
}

// TestRebinding: a name that passes CheckURL and then resolves to an
// internal address is refused when connecting, before any byte is sent;
// the same name resolving to a public address is dialled.
func TestRebinding(t *testing.T) {
	srv, hits := server(t, func(w http.ResponseWriter, _ *http.Request) { _, _ = w.Write([]byte("inside")) })
	_, port, _ := net.SplitHostPort(srv.Listener.Addr().String())
	uri := "https://rebind.example:" + port + "/jwks"
	for _, tt := range []struct {
		name string
		ip   [4]byte
		want error
	}{
		{"resolves to loopback", [4]byte{127, 0, 0, 1}, ErrRefused},
		{"resolves to the metadata service", [4]byte{169, 254, 169, 254}, ErrRefused},
		{"resolves to a private address", [4]byte{10, 0, 0, 1}, ErrRefused},
		{"resolves to a public address", [4]byte{192, 0, 2, 1}, ErrRefused}, // documentation range: refused as well
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := New(Options{Resolver: fakeDNS(tt.ip), Timeout: time.Second})
			if err := c.CheckURL(uri); err != nil {
				t.Fatalf("CheckURL(%s): %v; the name must pass the URL check", uri, err)
			}
			_, err := c.Get(context.Background(), "c1", uri)
			var e *Error
			if !errors.Is(err, tt.want) || !errors.As(err, &e) || !strings.Contains(e.Detail(), "address") {
				t.Fatalf("Get: %v, want %v at connect", err, tt.want)
			}
		})
	}
	if hits.Load() != 0 {
		t.Fatalf("the loopback server got %d requests", hits.Load())
	}
	// The resolver is really used: allowing loopback, the name reaches it
	// (over https, which the plain server refuses: any answer but a
	// refusal proves the connection was made).
	allowed := New(Options{Resolver: fakeDNS([4]byte{127, 0, 0, 1}), Allow: loopback(t), Timeout: time.Second})
	_, err := allowed.Get(context.Background(), "c1", uri)
	var e *Error
	if !errors.As(err, &e) || !errors.Is(err, ErrFailed) || !strings.Contains(e.Detail(), "HTTP response to HTTPS client") {
		t.Fatalf("allowed rebinding name: %v, want the plain server's answer to a TLS handshake", err)
	}
}
