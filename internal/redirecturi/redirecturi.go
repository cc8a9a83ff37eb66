// Package redirecturi holds the redirect URI rules shared by the
// authorization endpoint and every way of registering a client: which URIs
// may be registered (RFC 6749 §3.1.2, RFC 8252 §7) and how a request's
// redirect_uri is compared with them (RFC 9700 §4.1.3, RFC 8252 §7.3).
package redirecturi

import (
	"net"
	"net/url"
	"strings"
)

// Match reports whether got is one of the registered redirect URIs,
// compared as exact strings (RFC 9700 §4.1.3), with one exception: a
// registered loopback IP redirect (http://127.0.0.1/... or http://[::1]/...)
// matches on any port, for native apps (RFC 8252 §7.3). An https loopback
// IP redirect registered without a port does too (the admin console over
// TLS): a program on another port gets the redirect only with a
// certificate the browser trusts. "localhost" gets no such exception (RFC
// 8252 §8.3).
//
// A URI with a '#' anywhere never matches, even one registered before
// registration refused them: RFC 6749 §3.1.2 forbids a fragment, and
// net/url drops an empty one ("…/cb#"), so it is refused by its text.
func Match(registered []string, got string) bool {
	if strings.Contains(got, "#") {
		return false
	}
	for _, r := range registered {
		if r == got {
			return true
		}
	}
	return matchLoopbackPort(registered, got)
}

// matchLoopbackPort reports whether got is an http loopback IP redirect
// that differs from a registered one in its port alone (RFC 8252 §7.3), or
// an https one whose registered URI names no port.
func matchLoopbackPort(registered []string, got string) bool {
	g := loopbackURL(got)
	if g == nil || g.Fragment != "" || g.RawFragment != "" {
		return false
	}
	for _, r := range registered {
		u := loopbackURL(r)
		if u == nil || u.Scheme != g.Scheme || u.Scheme == "https" && u.Port() != "" {
			continue
		}
		if u.Hostname() == g.Hostname() && u.EscapedPath() == g.EscapedPath() && u.RawQuery == g.RawQuery {
			return true
		}
	}
	return false
}

// loopbackURL parses raw as an http or https URL at a loopback IP address
// without credentials; nil when it is not one.
func loopbackURL(raw string) *url.URL {
	u, err := url.Parse(raw)
	if err != nil || (u.Scheme != "http" && u.Scheme != "https") || u.User != nil || !isLoopbackIP(u.Hostname()) {
		return nil
	}
	return u
}

func isLoopbackIP(host string) bool {
	ip := net.ParseIP(host)
	return ip != nil && ip.IsLoopback() && (host == "127.0.0.1" || host == "::1")
}

// Valid reports whether u may be registered: an absolute URI without
// fragment (RFC 6749 §3.1.2: no '#' at all, not even an empty fragment),
// https, or http only for loopback hosts, or a private-use scheme of a
// native app (RFC 8252 §7.1).
func Valid(u string) bool {
	if strings.Contains(u, "#") {
		return false
	}
	p, err := url.Parse(u)
	if err != nil || !p.IsAbs() || p.User != nil {
		return false
	}
	switch p.Scheme {
	case "https":
		return p.Host != ""
	case "http":
		h := p.Hostname()
		return isLoopbackIP(h) || h == "localhost"
	case "javascript", "data", "file", "vbscript":
		return false
	}
	// Private-use scheme: reverse domain name, with a dot (RFC 8252 §7.1).
	for _, c := range p.Scheme {
		if c == '.' {
			return true
		}
	}
	return false
}

// WithQuery is uri with q added to its query, what is there kept: the
// redirect to a client's registered URI, which may carry a query of its
// own (RFC 6749 §3.1.2, "MUST retain" it).
func WithQuery(uri string, q url.Values) string {
	u, err := url.Parse(uri)
	if err != nil {
		return uri
	}
	if u.RawQuery != "" {
		u.RawQuery += "&" + q.Encode()
	} else {
		u.RawQuery = q.Encode()
	}
	return u.String()
}
