package loadtest

import (
	"bytes"
	"context"
	"fmt"
	"net"
	"net/http"
	"os"
	"os/exec"
	"strconv"
	"strings"
	"time"
)

// Server is a bawwab process started for a load run, so that its memory is
// measured apart from the load generator's.
type Server struct {
	URL string
	// ColdStart is the time from exec to the first answered request.
	ColdStart time.Duration
	cmd       *exec.Cmd
	out       bytes.Buffer
}

// StartServer runs `bin serve` with args on a free loopback port and waits
// until it answers.
func StartServer(ctx context.Context, bin string, args ...string) (*Server, error) {
	l, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return nil, err
	}
	addr := l.Addr().String()
	l.Close()
	s := &Server{URL: "http://" + addr}
	s.cmd = exec.Command(bin, append([]string{"serve", "--listen", addr, "--issuer", s.URL, "--log-level", "error"}, args...)...)
	s.cmd.Stdout, s.cmd.Stderr = &s.out, &s.out
	s.cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
	start := time.Now()
	if err := s.cmd.Start(); err != nil {
		return nil, err
	}
	for {
		resp, err := http.Get(s.URL + "/healthz")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				s.ColdStart = time.Since(start)
				return s, nil
			}
		}
		if time.Since(start) > 30*time.Second || ctx.Err() != nil {
			s.Stop()
			return nil, fmt.Errorf("server did not answer on %s: %v\n%s", addr, err, s.out.String())
		}
		time.Sleep(time.Millisecond)
	}
}

// RSS reads the server's resident set size from /proc (Linux).
func (s *Server) RSS() (int64, error) {
	raw, err := os.ReadFile(fmt.Sprintf("/proc/%d/status", s.cmd.Process.Pid))
	if err != nil {
		return 0, err
	}
	for line := range strings.Lines(string(raw)) {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSuffix(strings.TrimSpace(rest), " kB"), 10, 64)
			return kb << 10, err
		}
	}
	return 0, fmt.Errorf("no VmRSS in /proc/%d/status", s.cmd.Process.Pid)
}

// Stop ends the server.
func (s *Server) Stop() {
	_ = s.cmd.Process.Signal(os.Interrupt)
	done := make(chan struct{})
	go func() { _ = s.cmd.Wait(); close(done) }()
	select {
	case <-done:
	case <-time.After(5 * time.Second):
		_ = s.cmd.Process.Kill()
		<-done
	}
}
