// Package outbound makes the HTTP requests bawwab sends on a client's
// behalf, to URLs the client registered (a jwks_uri, a
// backchannel_logout_uri, a sector_identifier_uri). Such a URL is chosen by
// whoever registered the client, so each request is built against
// server-side request forgery (RFC 9700 §4.16 and OpenID Connect
// Dynamic Client Registration §9):
//
//   - the address is checked at connect time, on the IP the name resolved
//     to (a net.Dialer Control hook), so that DNS rebinding cannot slip an
//     internal address past a check made earlier: loopback, private,
//     link-local, unspecified, shared (CGNAT), multicast, documentation and
//     other special-purpose ranges are refused, also when written as
//     IPv4-mapped or otherwise embedded IPv6 addresses;
//   - no redirect is followed and no proxy from the environment is used;
//   - time and response size are capped;
//   - errors say only that the request failed: the detail (which would
//     map internal ports and services) goes to the log, never to the
//     client.
//
// The operator may allow listed hosts or networks ([Allow], from the
// insecure_outbound_allow setting), which tests and local development need
// for loopback servers. Nothing else a client registers is fetched by the
// server: client_uri, logo_uri, policy_uri and tos_uri are shown to the
// user as links and an image the browser loads, and a request_uri at
// /authorize only names a pushed request (RFC 9126).
package outbound

import (
	"context"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"net/url"
	"strings"
	"syscall"
	"time"
)

// Defaults of a [Client].
const (
	DefaultTimeout  = 5 * time.Second
	DefaultMaxBytes = 64 << 10
)

// Sentinel errors; errors.Is holds on the errors of a [Client]. Their text
// is all that may be shown to a client.
var (
	// ErrRefused: the URL or the address it resolved to is not one bawwab
	// calls (an internal address, a scheme other than https, a redirect).
	ErrRefused = errors.New("the client's URL is not one this server calls")
	// ErrFailed: the request was made and failed (no answer, an error
	// status, a body too large).
	ErrFailed = errors.New("the client's URL could not be fetched")
)

// Error is a failed outbound request. Its text is generic; Detail is for
// the log.
type Error struct {
	kind   error // ErrRefused or ErrFailed
	detail error
}

func (e *Error) Error() string { return e.kind.Error() }

// Unwrap lets errors.Is find the kind and the cause.
func (e *Error) Unwrap() []error { return []error{e.kind, e.detail} }

// Detail is what went wrong, for the log only: it may name internal
// addresses and ports.
func (e *Error) Detail() string { return e.detail.Error() }

func refused(format string, args ...any) *Error {
	return &Error{kind: ErrRefused, detail: fmt.Errorf(format, args...)}
}

func failed(err error) *Error { return &Error{kind: ErrFailed, detail: err} }

// Client sends requests to client-registered URLs. The zero value is not
// usable: call [New].
type Client struct {
	// Log receives the detail of every refused or failed request.
	Log *slog.Logger
	// Refused, when set, is told of every request refused for its address
	// (the audit log records these as attacks).
	Refused func(ctx context.Context, clientID, uri, detail string)

	allow    Allow
	timeout  time.Duration
	maxBytes int64
	http     *http.Client
}

// Allow lists what the operator allows despite the rules: host names
// (exact, case-insensitive) and networks. An allowed host or network may
// also be called over http.
type Allow struct {
	Hosts    []string
	Networks []netip.Prefix
}

// ParseAllow reads a list of host names, IP addresses and CIDR networks.
func ParseAllow(list []string) (Allow, error) {
	var a Allow
	for _, s := range list {
		s = strings.TrimSpace(s)
		switch {
		case s == "":
		case strings.Contains(s, "/"):
			p, err := netip.ParsePrefix(s)
			if err != nil {
				return a, fmt.Errorf("%q is not a network (CIDR)", s)
			}
			a.Networks = append(a.Networks, p.Masked())
		default:
			if ip, err := netip.ParseAddr(strings.Trim(s, "[]")); err == nil {
				a.Networks = append(a.Networks, netip.PrefixFrom(ip, ip.BitLen()))
				continue
			}
			if strings.ContainsAny(s, ":@ ") {
				return a, fmt.Errorf("%q is not a host name, an IP address or a network", s)
			}
			a.Hosts = append(a.Hosts, strings.ToLower(s))
		}
	}
	return a, nil
}

func (a Allow) host(h string) bool {
	h = strings.ToLower(strings.TrimSuffix(h, "."))
	for _, x := range a.Hosts {
		if x == h {
			return true
		}
	}
	return false
}

func (a Allow) ip(ip netip.Addr) bool {
	for _, n := range a.Networks {
		if n.Contains(ip) || n.Contains(ip.Unmap()) {
			return true
		}
	}
	return false
}

// Options tune a [Client]; zero values take the defaults.
type Options struct {
	Allow    Allow
	Timeout  time.Duration
	MaxBytes int64
	// Resolver resolves host names (tests); nil is the system's.
	Resolver *net.Resolver
}

// New returns a client with the operator's allow list.
func New(o Options) *Client {
	c := &Client{allow: o.Allow, timeout: o.Timeout, maxBytes: o.MaxBytes, Log: slog.New(slog.DiscardHandler)}
	if c.timeout <= 0 {
		c.timeout = DefaultTimeout
	}
	if c.maxBytes <= 0 {
		c.maxBytes = DefaultMaxBytes
	}
	checked := &net.Dialer{Timeout: c.timeout, Resolver: o.Resolver, ControlContext: c.control}
	trusted := &net.Dialer{Timeout: c.timeout, Resolver: o.Resolver}
	tr := &http.Transport{
		Proxy: nil, // a proxy would connect for us, past the address check
		DialContext: func(ctx context.Context, network, addr string) (net.Conn, error) {
			if host, _, err := net.SplitHostPort(addr); err == nil && c.allow.host(host) {
				return trusted.DialContext(ctx, network, addr)
			}
			return checked.DialContext(ctx, network, addr)
		},
		TLSHandshakeTimeout:    c.timeout,
		ResponseHeaderTimeout:  c.timeout,
		MaxResponseHeaderBytes: 16 << 10,
		MaxIdleConnsPerHost:    2,
		IdleConnTimeout:        30 * time.Second,
		ForceAttemptHTTP2:      true,
	}
	c.http = &http.Client{Transport: tr, Timeout: c.timeout,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
	return c
}

// control runs after name resolution, before the connection is made: the
// address is the IP that will be connected to.
func (c *Client) control(_ context.Context, network, address string, _ syscall.RawConn) error {
	ap, err := netip.ParseAddrPort(address)
	if err != nil {
		return refused("dial %s %q: not an IP address", network, address)
	}
	if ip := ap.Addr().WithZone(""); !c.allow.ip(ip) {
		if why := Special(ip); why != "" {
			return refused("%s is %s", ip, why)
		}
	}
	return nil
}

// CheckURL checks a URL a client registers for bawwab to call: absolute,
// https (http only on an allowed host or network), with no user info or
// fragment, and not naming an internal IP address outright (a name that
// resolves to one is refused when called). Its error says what to change.
func (c *Client) CheckURL(raw string) error {
	u, err := parseCallURL(raw)
	if err != nil {
		return err
	}
	allowed := c.allowed(u.Hostname())
	switch {
	case u.Scheme == "https":
	case u.Scheme == "http" && allowed:
	default:
		return errors.New("must be an https URL")
	}
	if allowed {
		return nil
	}
	return checkPublicHost(u.Hostname())
}

// parseCallURL parses a URL bawwab is to call: absolute, with a host, and
// without user info or fragment ('#' anywhere, even an empty fragment).
func parseCallURL(raw string) (*url.URL, error) {
	u, err := url.Parse(raw)
	if err != nil || !u.IsAbs() || u.Hostname() == "" || u.Opaque != "" {
		return nil, errors.New("must be an absolute https URL")
	}
	if u.User != nil || u.Fragment != "" || strings.Contains(raw, "#") {
		return nil, errors.New("must have no user name, password or fragment")
	}
	return u, nil
}

// checkPublicHost refuses a host that names an internal address outright:
// a special-purpose IP literal, or localhost and its subdomains (RFC 6761
// §6.3). A name that resolves to an internal address is refused at dial.
func checkPublicHost(host string) error {
	if ip, err := netip.ParseAddr(host); err == nil {
		if why := Special(ip.WithZone("")); why != "" {
			return fmt.Errorf("must not name %s", why)
		}
	}
	if h := strings.ToLower(strings.TrimSuffix(host, ".")); h == "localhost" || strings.HasSuffix(h, ".localhost") {
		return errors.New("must not name a loopback host (RFC 6761 §6.3)")
	}
	return nil
}

// allowed reports whether host (a name or an IP literal) is on the
// operator's list.
func (c *Client) allowed(host string) bool {
	if c.allow.host(host) {
		return true
	}
	ip, err := netip.ParseAddr(host)
	return err == nil && c.allow.ip(ip.WithZone(""))
}

// Get fetches uri for the client and returns the body of a 200 answer.
func (c *Client) Get(ctx context.Context, clientID, uri string) ([]byte, error) {
	req, err := c.request(ctx, "GET", uri, nil)
	if err != nil {
		return nil, c.report(ctx, clientID, uri, err)
	}
	req.Header.Set("Accept", "application/json")
	body, err := c.do(req, http.StatusOK)
	return body, c.report(ctx, clientID, uri, err)
}

// PostForm posts form to uri for the client; a 200 or 204 answer is
// success.
func (c *Client) PostForm(ctx context.Context, clientID, uri string, form url.Values) error {
	req, err := c.request(ctx, "POST", uri, strings.NewReader(form.Encode()))
	if err != nil {
		return c.report(ctx, clientID, uri, err)
	}
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	_, err = c.do(req, http.StatusOK, http.StatusNoContent)
	return c.report(ctx, clientID, uri, err)
}

func (c *Client) request(ctx context.Context, method, uri string, body io.Reader) (*http.Request, error) {
	if err := c.CheckURL(uri); err != nil {
		return nil, refused("%s: %v", uri, err)
	}
	req, err := http.NewRequestWithContext(ctx, method, uri, body)
	if err != nil {
		return nil, refused("%s: %v", uri, err)
	}
	req.Header.Set("User-Agent", "bawwab")
	return req, nil
}

func (c *Client) do(req *http.Request, ok ...int) ([]byte, error) {
	ctx, cancel := context.WithTimeout(req.Context(), c.timeout)
	defer cancel()
	resp, err := c.http.Do(req.WithContext(ctx))
	if err != nil {
		var e *Error
		if errors.As(err, &e) {
			return nil, e
		}
		return nil, failed(err)
	}
	defer resp.Body.Close()
	body, err := io.ReadAll(io.LimitReader(resp.Body, c.maxBytes+1))
	switch {
	case resp.StatusCode >= 300 && resp.StatusCode < 400:
		return nil, refused("answered %s (to %q): redirects are not followed", resp.Status, resp.Header.Get("Location"))
	case !contains(ok, resp.StatusCode):
		return nil, failed(fmt.Errorf("answered %s", resp.Status))
	case err != nil:
		return nil, failed(fmt.Errorf("reading the answer: %w", err))
	case int64(len(body)) > c.maxBytes:
		return nil, failed(fmt.Errorf("the answer is larger than %d bytes", c.maxBytes))
	}
	return body, nil
}

func contains(list []int, n int) bool {
	for _, x := range list {
		if x == n {
			return true
		}
	}
	return false
}

// report logs a failure with its detail and returns it.
func (c *Client) report(ctx context.Context, clientID, uri string, err error) error {
	if err == nil {
		return nil
	}
	var e *Error
	if !errors.As(err, &e) {
		e = failed(err)
	}
	c.Log.WarnContext(ctx, "outbound request failed", "client_id", clientID, "url", uri, "refused", errors.Is(e, ErrRefused), "err", e.Detail())
	if errors.Is(e, ErrRefused) && c.Refused != nil {
		c.Refused(ctx, clientID, uri, e.Detail())
	}
	return e
}

// special are the address ranges bawwab never calls for a client (RFC 6890
// and the IANA special-purpose registries), with what they are.
var special = []struct {
	prefix netip.Prefix
	what   string
}{
	{netip.MustParsePrefix("0.0.0.0/8"), "an unspecified (this-network) address"},
	{netip.MustParsePrefix("10.0.0.0/8"), "a private address"},
	{netip.MustParsePrefix("100.64.0.0/10"), "a shared (carrier-grade NAT) address"},
	{netip.MustParsePrefix("127.0.0.0/8"), "a loopback address"},
	{netip.MustParsePrefix("169.254.0.0/16"), "a link-local address"},
	{netip.MustParsePrefix("172.16.0.0/12"), "a private address"},
	{netip.MustParsePrefix("192.0.0.0/24"), "an IETF protocol address"},
	{netip.MustParsePrefix("192.0.2.0/24"), "a documentation address"},
	{netip.MustParsePrefix("192.88.99.0/24"), "a 6to4 relay address"},
	{netip.MustParsePrefix("192.168.0.0/16"), "a private address"},
	{netip.MustParsePrefix("198.18.0.0/15"), "a benchmarking address"},
	{netip.MustParsePrefix("198.51.100.0/24"), "a documentation address"},
	{netip.MustParsePrefix("203.0.113.0/24"), "a documentation address"},
	{netip.MustParsePrefix("224.0.0.0/4"), "a multicast address"},
	{netip.MustParsePrefix("240.0.0.0/4"), "a reserved or broadcast address"},
	{netip.MustParsePrefix("::/96"), "an unspecified, loopback or IPv4-compatible address"},
	{netip.MustParsePrefix("::ffff:0:0:0/96"), "an IPv4-translated address"},
	{netip.MustParsePrefix("64:ff9b::/96"), "a NAT64 address"},
	{netip.MustParsePrefix("64:ff9b:1::/48"), "a NAT64 address"},
	{netip.MustParsePrefix("100::/64"), "a discard address"},
	{netip.MustParsePrefix("2001::/23"), "an IETF protocol address (Teredo and others)"},
	{netip.MustParsePrefix("2001:db8::/32"), "a documentation address"},
	{netip.MustParsePrefix("2002::/16"), "a 6to4 address"},
	{netip.MustParsePrefix("3fff::/20"), "a documentation address"},
	{netip.MustParsePrefix("fc00::/7"), "a unique local (private) address"},
	{netip.MustParsePrefix("fe80::/10"), "a link-local address"},
	{netip.MustParsePrefix("fec0::/10"), "a site-local address"},
	{netip.MustParsePrefix("ff00::/8"), "a multicast address"},
}

// Special says what kind of special-purpose address ip is ("a loopback
// address"), or "" for an ordinary public address. IPv4-mapped IPv6
// addresses are judged as the IPv4 address they carry.
func Special(ip netip.Addr) string {
	if !ip.IsValid() {
		return "not an address"
	}
	ip = ip.WithZone("").Unmap()
	for _, s := range special {
		if s.prefix.Contains(ip) {
			return s.what
		}
	}
	return ""
}

// HTTPClient is an http.Client under the same rules, for libraries that
// send requests of their own (an upstream identity provider's discovery,
// token and userinfo requests, package upstream): every URL passes
// CheckURL, every address the dial check, no redirect is followed, and an
// answer is cut after the size limit.
func (c *Client) HTTPClient() *http.Client {
	return &http.Client{Timeout: c.timeout, Transport: checkedTransport{c},
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type checkedTransport struct{ c *Client }

func (t checkedTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	if err := t.c.CheckURL(req.URL.String()); err != nil {
		if req.Body != nil {
			_ = req.Body.Close()
		}
		return nil, refused("%s: %v", req.URL, err)
	}
	resp, err := t.c.http.Transport.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	resp.Body = limitedBody{Reader: io.LimitReader(resp.Body, t.c.maxBytes), Closer: resp.Body}
	return resp, nil
}

type limitedBody struct {
	io.Reader
	io.Closer
}
