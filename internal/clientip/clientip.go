// Package clientip decides which address a request comes from, for
// throttling and the audit log. By default that is the socket's peer and
// forwarding headers are ignored, since any client can write them; behind a
// TLS-terminating proxy, the proxy's networks are declared trusted
// (trusted_proxies) and the address it reports in X-Forwarded-For is used.
package clientip

import (
	"context"
	"net"
	"net/http"
	"net/netip"
	"strings"
)

// Resolver finds the client address of requests.
type Resolver struct {
	// Trusted are the networks of proxies whose X-Forwarded-For is believed.
	Trusted []netip.Prefix
}

// Resolve returns the client address of r: the peer, or, while the peer
// is a trusted proxy, the next address to the left in X-Forwarded-For.
func (res Resolver) Resolve(r *http.Request) string {
	addr := peer(r)
	if len(res.Trusted) == 0 {
		return addr
	}
	hops := strings.Split(strings.Join(r.Header.Values("X-Forwarded-For"), ","), ",")
	for i := len(hops) - 1; i >= 0 && res.trusted(addr); i-- {
		hop := strings.TrimSpace(hops[i])
		if _, err := netip.ParseAddr(hop); err != nil {
			break // a malformed hop: stop at the last address we can vouch for
		}
		addr = hop
	}
	return addr
}

func (res Resolver) trusted(addr string) bool {
	a, err := netip.ParseAddr(addr)
	if err != nil {
		return false
	}
	a = a.Unmap()
	for _, p := range res.Trusted {
		if p.Contains(a) {
			return true
		}
	}
	return false
}

func peer(r *http.Request) string {
	host, _, err := net.SplitHostPort(r.RemoteAddr)
	if err != nil {
		return r.RemoteAddr
	}
	return host
}

type key struct{}

// With returns ctx carrying the client address.
func With(ctx context.Context, addr string) context.Context {
	return context.WithValue(ctx, key{}, addr)
}

// FromContext returns the client address carried by ctx, if any.
func FromContext(ctx context.Context) string {
	addr, _ := ctx.Value(key{}).(string)
	return addr
}

// Of returns the client address of r: the one the server resolved for it,
// or else the socket's peer.
func Of(r *http.Request) string {
	if addr := FromContext(r.Context()); addr != "" {
		return addr
	}
	return peer(r)
}

// Network returns the network that addr is throttled as: an IPv4 address
// (IPv4-mapped IPv6 addresses included) stands for itself, and an IPv6
// address for its /64. One IPv6 subscriber commonly holds a whole /64 (RFC
// 6177, RFC 7421) and may pick any address in it, so counting per address
// would give each of them 2^64 budgets. Zones are dropped. What is not an
// address is returned unchanged.
func Network(addr string) string {
	a, err := netip.ParseAddr(addr)
	if err != nil || a.Is4() {
		return addr // ParseAddr takes IPv4 in its one canonical form only
	}
	a = a.Unmap().WithZone("")
	if a.Is4() {
		return a.String()
	}
	return netip.PrefixFrom(a, 64).Masked().String()
}

// ParsePrefixes parses comma-separated networks (CIDR, or single addresses).
func ParsePrefixes(list []string) ([]netip.Prefix, error) {
	var out []netip.Prefix
	for _, s := range list {
		if s = strings.TrimSpace(s); s == "" {
			continue
		}
		if !strings.Contains(s, "/") {
			a, err := netip.ParseAddr(s)
			if err != nil {
				return nil, err
			}
			out = append(out, netip.PrefixFrom(a, a.BitLen()))
			continue
		}
		p, err := netip.ParsePrefix(s)
		if err != nil {
			return nil, err
		}
		out = append(out, p.Masked())
	}
	return out, nil
}
