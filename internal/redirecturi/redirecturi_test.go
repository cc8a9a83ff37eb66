package redirecturi

import (
	"net/url"
	"slices"
	"strings"
	"testing"
)

// TestMatch: exact match only (RFC 9700 §4.1.3), save the port of
// a loopback IP (RFC 8252 §7.3). Each row is an open-redirect attempt.
func TestMatch(t *testing.T) {
	reg := []string{"https://notes.example/callback", "http://127.0.0.1/cb", "com.example.app:/oauth"}
	for got, want := range map[string]bool{
		"https://notes.example/callback":          true,
		"https://notes.example/callback/":         false, // suffix
		"https://notes.example/callback/../evil":  false, // path traversal
		"https://notes.example/callback?x=1":      false, // extra query
		"https://notes.example/callback#frag":     false, // fragment
		"https://notes.example.evil.com/callback": false, // host suffix
		"https://notes.example@evil.com/callback": false, // userinfo
		"https://evil.com@notes.example/callback": false, // userinfo
		"https://NOTES.example/callback":          false, // different case host
		"https://notes.example/%63allback":        false, // encoded characters
		"https://xn--nots-9oa.example/callback":   false, // IDN look-alike
		"https://notës.example/callback":          false, // IDN
		"http://notes.example/callback":           false, // downgrade
		"http://127.0.0.1:49152/cb":               true,  // loopback, any port
		"http://127.0.0.1:49152/cb/../x":          false,
		"http://127.0.0.1:49152/cb?x=1":           false,
		"http://127.0.0.1:49152/cb#x":             false,
		"http://127.0.0.1:49152/cb#":              false, // empty fragment: net/url drops it
		"https://notes.example/callback#":         false, // empty fragment
		"https://notes.example/callback?#":        false,
		"http://user@127.0.0.1:49152/cb":          false,
		"http://localhost:49152/cb":               false, // RFC 8252 §8.3
		"http://[::1]:49152/cb":                   false, // another loopback host than registered
		"https://127.0.0.1:49152/cb":              false,
		"com.example.app:/oauth":                  true,
		"com.example.app:/oauth2":                 false,
		"":                                        false,
	} {
		if Match(reg, got) != want {
			t.Errorf("Match(%q) = %v, want %v", got, !want, want)
		}
	}
	// https at a loopback IP: any port when registered without one, the
	// scheme kept; a registered port is matched exactly.
	tls := []string{"https://127.0.0.1/console/callback", "https://[::1]:8443/cb"}
	for got, want := range map[string]bool{
		"https://127.0.0.1:8443/console/callback":      true,
		"https://127.0.0.1/console/callback":           true,
		"http://127.0.0.1:8443/console/callback":       false, // downgrade
		"https://127.0.0.1:8443/console/callback?x=1":  false,
		"https://127.0.0.1:8443/console/callback#":     false,
		"https://127.0.0.1:8443/console/callback/../x": false,
		"https://[::1]:8443/console/callback":          false, // another loopback host than registered
		"https://localhost:8443/console/callback":      false,
		"https://u@127.0.0.1:8443/console/callback":    false,
		"https://[::1]:8443/cb":                        true,
		"https://[::1]:9443/cb":                        false, // the registered port only
	} {
		if Match(tls, got) != want {
			t.Errorf("Match(%q) = %v, want %v", got, !want, want)
		}
	}
	// Registered before fragments were refused: still no match.
	for _, u := range []string{"https://legacy.example/cb#", "http://127.0.0.1/cb#"} {
		if Match([]string{u}, u) {
			t.Errorf("Match matched the registered fragment URI %q", u)
		}
	}
}

// TestValid: what may be registered (RFC 6749 §3.1.2, RFC 8252
// §7.1, §7.3, §8.3).
func TestValid(t *testing.T) {
	tests := []struct {
		uri  string
		want bool
	}{
		{"https://a.example/cb", true},
		{"https://a.example/cb?x=1", true},
		{"https://a.example/cb%23x", true}, // an escaped '#' is part of the path
		{"http://127.0.0.1/cb", true},
		{"http://[::1]/cb", true},
		{"http://localhost/cb", true},
		{"com.example.app:/oauth", true},
		{"https://a.example/cb#", false}, // empty fragment
		{"https://a.example/cb#x", false},
		{"https://a.example/cb?x=1#", false},
		{"https://a.example/#/cb", false},
		{"http://127.0.0.1/cb#", false},
		{"com.example.app:/oauth#", false},
		{"#", false},
		{"https://user@a.example/cb", false},
		{"http://a.example/cb", false},
		{"/cb", false},
		{"https:///cb", false},
		{"javascript:alert(1)", false},
		{"data:text/html,x", false},
		{"myapp:/cb", false}, // private-use schemes are reverse domain names
		{"", false},
	}
	for _, tt := range tests {
		t.Run(tt.uri, func(t *testing.T) {
			if got := Valid(tt.uri); got != tt.want {
				t.Fatalf("Valid(%q) = %v, want %v", tt.uri, got, tt.want)
			}
		})
	}
}

// FuzzMatch: a redirect URI matches only when it equals the
// registered one, or differs from a registered loopback IP URI in the port
// alone.
func FuzzMatch(f *testing.F) {
	for _, s := range [][2]string{{"https://a.example/cb", "https://a.example/cb"}, {"http://127.0.0.1/cb", "http://127.0.0.1:8080/cb"},
		{"http://[::1]/cb", "http://[::1]:1/cb"}, {"https://a.example/cb", "https://a.example/cb#x"}, {"https://a.example/cb#", "https://a.example/cb#"}, {"http://127.0.0.1/cb", "http://127.0.0.1:1/cb#"}, {"http://127.0.0.1/cb", "http://127.0.0.1:1/cb?q"}} {
		f.Add(s[0], s[1])
	}
	f.Fuzz(func(t *testing.T, registered, got string) {
		if !Match([]string{registered}, got) {
			return
		}
		if strings.Contains(got, "#") {
			t.Fatalf("%q matched though it has a fragment", got)
		}
		if got == registered {
			return
		}
		r, err1 := url.Parse(registered)
		g, err2 := url.Parse(got)
		if err1 != nil || err2 != nil {
			t.Fatalf("%q matched %q though one does not parse", got, registered)
		}
		if !sameButPort(r, g) {
			t.Fatalf("%q matched registered %q", got, registered)
		}
	})
}

// sameButPort reports whether g differs from the registered loopback IP
// redirect r in its port alone (RFC 8252 §7.3): the fuzz oracle, written
// apart from the code it checks.
func sameButPort(r, g *url.URL) bool {
	return !slices.Contains([]bool{
		r.Scheme == "http", g.Scheme == "http", isLoopbackIP(r.Hostname()), r.Hostname() == g.Hostname(),
		r.EscapedPath() == g.EscapedPath(), r.RawQuery == g.RawQuery, g.User == nil, g.Fragment == "", g.Opaque == "", r.Opaque == "",
	}, false)
}

// TestWithQuery: the registered URI's own query is kept (RFC 6749 §3.1.2).
func TestWithQuery(t *testing.T) {
	for _, tt := range []struct{ uri, want string }{
		{"https://app.example/bye", "https://app.example/bye?state=s"},
		{"https://app.example/bye?x=1", "https://app.example/bye?x=1&state=s"},
	} {
		if got := WithQuery(tt.uri, url.Values{"state": {"s"}}); got != tt.want {
			t.Errorf("WithQuery(%q) = %q, want %q", tt.uri, got, tt.want)
		}
	}
}
