package server

import (
	"io"
	"log/slog"
	"net"
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// shedResponse is what a connection past the cap receives before it is
// closed: a complete HTTP/1.1 response, so that the client (or the load
// balancer in front) sees 503 at once and retries, rather than waiting in
// the kernel's accept queue or seeing a reset.
const shedResponse = "HTTP/1.1 503 Service Unavailable\r\n" +
	"Content-Type: application/json\r\n" +
	"Retry-After: 1\r\n" +
	"Connection: close\r\n" +
	"Content-Length: 96\r\n" +
	"\r\n" +
	`{"error":"temporarily_unavailable","error_description":"the server is at its connection limit"}` + "\n"

// LimitListener caps the connections of l open at once at max. A
// connection past the cap is answered 503 with Connection: close and
// closed by a goroutine of its own; when too many of those run too, the
// connection is closed at once. The cap keeps descriptors for the store,
// outbound requests and logs, so that the process never runs out of them
// (EMFILE) however many clients connect.
// onShed, when not nil, is called for each connection refused (metrics).
func LimitListener(l net.Listener, max int, log *slog.Logger, onShed func()) net.Listener {
	return &limitListener{Listener: l, max: int64(max), sheddingMax: int64(min(64, max/8+8)), log: log, onShed: onShed}
}

type limitListener struct {
	net.Listener
	max, sheddingMax int64
	open, shedding   atomic.Int64
	log              *slog.Logger
	lastLog          atomic.Int64 // unix seconds of the last "shedding" log line
	onShed           func()
}

func (l *limitListener) Accept() (net.Conn, error) {
	for {
		c, err := l.Listener.Accept()
		if err != nil {
			return nil, err
		}
		if l.open.Add(1) <= l.max {
			return &countedConn{Conn: c, l: l}, nil
		}
		l.open.Add(-1)
		l.shed(c)
	}
}

// shed answers c 503 and closes it. The response is written at once: a
// fresh socket's send buffer takes it without blocking. Closing a socket
// with unread input resets it, which can destroy the response before the
// client reads it, so the request is read and discarded first: by a
// goroutine that waits for the client to finish (for up to half a second),
// or, when too many of those run already, by what has arrived within a
// millisecond.
func (l *limitListener) shed(c net.Conn) {
	if l.onShed != nil {
		l.onShed()
	}
	if now := time.Now().Unix(); l.lastLog.Swap(now) < now-10 && l.log != nil {
		l.log.Warn("connection limit reached: new connections get 503", "max_connections", l.max)
	}
	_ = c.SetWriteDeadline(time.Now().Add(50 * time.Millisecond))
	if _, err := io.WriteString(c, shedResponse); err != nil {
		c.Close()
		return
	}
	if cw, ok := c.(interface{ CloseWrite() error }); ok {
		_ = cw.CloseWrite()
	}
	if l.shedding.Add(1) > l.sheddingMax {
		l.shedding.Add(-1)
		_ = c.SetReadDeadline(time.Now().Add(time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
		c.Close()
		return
	}
	go func() {
		defer l.shedding.Add(-1)
		defer c.Close()
		_ = c.SetReadDeadline(time.Now().Add(500 * time.Millisecond))
		_, _ = io.Copy(io.Discard, io.LimitReader(c, 64<<10))
	}()
}

// countedConn gives its place back to the listener when closed.
type countedConn struct {
	net.Conn
	l    *limitListener
	once sync.Once
}

func (c *countedConn) Close() error {
	c.once.Do(func() { c.l.open.Add(-1) })
	return c.Conn.Close()
}

// MaxConnections is the cap on the public listener's open connections:
// max_connections when set, otherwise what the descriptor limit leaves
// after the store's connections and a reserve (a quarter of the limit, at
// most 256) for the admin API, outbound requests (back-channel logout,
// jwks_uri), connections being shed, logs and the like.
func (s *Server) MaxConnections() int {
	if s.Config.MaxConnections > 0 {
		return s.Config.MaxConnections
	}
	limit := descriptorLimit()
	if limit <= 0 {
		return 4096
	}
	store := s.storeFiles
	if store <= 0 {
		store = s.Config.DatabaseMaxConns
		if store <= 0 {
			store = 4 * runtime.GOMAXPROCS(0)
		}
	}
	return max(16, limit-store-adminConnections-min(256, limit/4))
}
