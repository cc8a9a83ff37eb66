package clientip

import (
	"net/http/httptest"
	"testing"
)

func TestResolve(t *testing.T) {
	trusted, err := ParsePrefixes([]string{"10.0.0.0/8", "192.0.2.1"})
	if err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, peer, xff string
		trust           bool
		want            string
	}{
		{"no proxies trusted: header ignored", "203.0.113.9:5000", "198.51.100.1", false, "203.0.113.9"},
		{"untrusted peer: header ignored", "203.0.113.9:5000", "198.51.100.1", true, "203.0.113.9"},
		{"trusted proxy", "10.1.2.3:5000", "198.51.100.1", true, "198.51.100.1"},
		{"chain of trusted proxies", "10.1.2.3:5000", "198.51.100.1, 192.0.2.1, 10.9.9.9", true, "198.51.100.1"},
		{"client-written hops left of the first untrusted are ignored", "10.1.2.3:5000", "6.6.6.6, 198.51.100.1", true, "198.51.100.1"},
		{"malformed hop stops the walk", "10.1.2.3:5000", "198.51.100.1, garbage", true, "10.1.2.3"},
		{"no header", "10.1.2.3:5000", "", true, "10.1.2.3"},
		{"IPv6 peer", "[2001:db8::1]:443", "198.51.100.1", true, "2001:db8::1"},
	} {
		r := httptest.NewRequest("GET", "/", nil)
		r.RemoteAddr = tc.peer
		if tc.xff != "" {
			r.Header.Set("X-Forwarded-For", tc.xff)
		}
		res := Resolver{}
		if tc.trust {
			res.Trusted = trusted
		}
		if got := res.Resolve(r); got != tc.want {
			t.Errorf("%s: %s, want %s", tc.name, got, tc.want)
		}
	}
	if _, err := ParsePrefixes([]string{"10.0.0.0/33"}); err == nil {
		t.Error("bad prefix accepted")
	}
}

func TestNetwork(t *testing.T) {
	for _, tc := range []struct{ name, addr, want string }{
		{"IPv4 stands for itself", "192.0.2.7", "192.0.2.7"},
		{"IPv4-mapped IPv6 is IPv4", "::ffff:192.0.2.7", "192.0.2.7"},
		{"IPv6 is its /64", "2001:db8:1:2:aaaa:bbbb:cccc:dddd", "2001:db8:1:2::/64"},
		{"another address in the same /64", "2001:db8:1:2::1", "2001:db8:1:2::/64"},
		{"the next /64 is another network", "2001:db8:1:3::1", "2001:db8:1:3::/64"},
		{"case and zeros do not matter", "2001:DB8:1:2:0:0:0:1", "2001:db8:1:2::/64"},
		{"zone dropped", "fe80::1%eth0", "fe80::/64"},
		{"loopback", "::1", "::/64"},
		{"not an address", "pipe", "pipe"},
	} {
		if got := Network(tc.addr); got != tc.want {
			t.Errorf("%s: Network(%q) = %q, want %q", tc.name, tc.addr, got, tc.want)
		}
	}
}
