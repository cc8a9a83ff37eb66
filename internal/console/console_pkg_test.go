package console

import (
	"context"
	"crypto/tls"
	"io/fs"
	"net"
	"net/http"
	"os"
	"path/filepath"
	"regexp"
	"testing"

	"github.com/bawwab/bawwab/internal/ui"
)

// TestMessages: every message key the console's templates and code name
// has a text in English and in Arabic.
func TestMessages(t *testing.T) {
	keyRE := regexp.MustCompile(`"(console\.[a-z_.]+)"`)
	keys := map[string]bool{"unavailable.message": true}
	err := fs.WalkDir(os.DirFS("."), ".", func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() || (filepath.Ext(path) != ".html" && filepath.Ext(path) != ".go") || path == "console_pkg_test.go" {
			return err
		}
		raw, err := os.ReadFile(path)
		for _, m := range keyRE.FindAllStringSubmatch(string(raw), -1) {
			keys[m[1]] = true
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
	if len(keys) < 50 {
		t.Fatalf("found only %d keys", len(keys))
	}
	for k := range keys {
		for _, lang := range ui.Languages {
			if got := ui.T(lang, k, 1, "x"); got == k || got == "" {
				t.Errorf("%s has no %s text", k, lang)
			}
		}
	}
}

// TestRedirectURI: the callback is offered at loopback IP addresses only,
// at the address and port of the listener that took the request, whatever
// the Host names.
func TestRedirectURI(t *testing.T) {
	v4 := &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8081}
	v6 := &net.TCPAddr{IP: net.IPv6loopback, Port: 8081}
	for _, c := range []struct {
		host  string
		local net.Addr
		want  string
	}{
		{"127.0.0.1:8081", v4, "http://127.0.0.1:8081/console/callback"},
		{"[::1]:8081", v6, "http://[::1]:8081/console/callback"},
		{"127.0.0.1:9999", v4, ""},
		{"[::1]:9999", v6, ""},
		{"[::1]:8081", v4, ""},
		{"127.0.0.1:8081", v6, ""},
		{"127.0.0.1:8081", nil, ""},
		{"localhost:8081", v4, ""},
		{"evil.example:8081", v4, ""},
		{"127.0.0.1", v4, ""},
		{"127.0.0.1.evil:80", v4, ""},
		{"[::ffff:127.0.0.1]:8081", v4, ""},
	} {
		r, _ := http.NewRequest("GET", "http://x/console/login", nil)
		r.Host = c.host
		if c.local != nil {
			r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, c.local))
		}
		if got := redirectURI(r); got != c.want {
			t.Errorf("Host %q at %v: %q, want %q", c.host, c.local, got, c.want)
		}
	}
	// Over TLS, the callback is https.
	r, _ := http.NewRequest("GET", "https://x/console/login", nil)
	r.Host, r.TLS = "127.0.0.1:8443", &tls.ConnectionState{}
	r = r.WithContext(context.WithValue(r.Context(), http.LocalAddrContextKey, &net.TCPAddr{IP: net.IPv4(127, 0, 0, 1), Port: 8443}))
	if got := redirectURI(r); got != "https://127.0.0.1:8443/console/callback" {
		t.Errorf("over TLS: %q", got)
	}
}
