package e2e

import (
	"bytes"
	"context"
	"encoding/base64"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
	"github.com/bawwab/bawwab/internal/testenv"
)

// TestRestartAfterKill runs the bawwab binary under load, kills it with
// SIGKILL, starts it again and checks that nothing a client was given was
// lost: every access token returned is still active, every grant is
// still in the store, and the last refresh token of every chain still
// refreshes. It runs on SQLite and on PostgreSQL.
func TestRestartAfterKill(t *testing.T) {
	bin := buildBawwab(t)
	t.Run("sqlite", func(t *testing.T) {
		dir := t.TempDir()
		store, err := sqlite.Open(context.Background(), filepath.Join(dir, "bawwab.db"))
		if err != nil {
			t.Fatal(err)
		}
		seed(t, store, notesSecretForTests, robotSecretForTests)
		store.Close() // the binary is the only writer, as in production
		testRestart(t, bin, []string{"--data-dir", dir}, func() storage.Storage {
			s, err := sqlite.Open(context.Background(), filepath.Join(dir, "bawwab.db"))
			if err != nil {
				t.Fatal(err)
			}
			return s
		})
	})
	t.Run("postgres", func(t *testing.T) {
		dsn, schema := testenv.PostgresSchema(t)
		open := func() storage.Storage {
			s, err := postgres.Open(context.Background(), dsn, postgres.Options{SearchPath: schema})
			if err != nil {
				t.Fatal(err)
			}
			return s
		}
		store := open()
		seed(t, store, notesSecretForTests, robotSecretForTests)
		store.Close()
		u, _ := url.Parse(dsn)
		q := u.Query()
		q.Set("search_path", schema)
		u.RawQuery = q.Encode()
		testRestart(t, bin, []string{"--database", u.String()}, open)
	})
}

// bawwabBuild is cmd/bawwab, compiled by the first test that needs it and
// shared (read-only) by the others: linking it again per test cost more
// than most tests themselves.
var bawwabBuild struct {
	once     sync.Once
	dir, bin string
	err      error
}

// buildBawwab compiles cmd/bawwab once per test binary run.
func buildBawwab(t *testing.T) string {
	t.Helper()
	b := &bawwabBuild
	b.once.Do(func() {
		goTool, err := exec.LookPath("go")
		if err != nil {
			b.err = fmt.Errorf("the go command is needed to build bawwab: %w", err)
			return
		}
		if b.dir, b.err = os.MkdirTemp("", "bawwab-e2e-"); b.err != nil {
			return
		}
		b.bin = filepath.Join(b.dir, "bawwab")
		if out, err := exec.Command(goTool, "build", "-o", b.bin, "../cmd/bawwab").CombinedOutput(); err != nil {
			b.err = fmt.Errorf("go build: %v\n%s", err, out)
		}
	})
	if b.err != nil {
		t.Fatal(b.err)
	}
	return b.bin
}

// cli runs the built bawwab binary as an operator would, with env added
// to this process's environment and no configuration file.
type cli struct {
	t   *testing.T
	bin string
	env []string
}

// newCLI builds bawwab (once) and returns its runner.
func newCLI(t *testing.T, env ...string) *cli {
	return &cli{t: t, bin: buildBawwab(t), env: append([]string{"BAWWAB_CONFIG="}, env...)}
}

// run runs bawwab with args, failing the test unless it exits with
// success exactly when wantOK; it returns what bawwab wrote.
func (c *cli) run(wantOK bool, args ...string) string {
	c.t.Helper()
	return c.runIn("", wantOK, args...)
}

// runIn is run with stdin as the standard input.
func (c *cli) runIn(stdin string, wantOK bool, args ...string) string {
	c.t.Helper()
	cmd := exec.Command(c.bin, args...)
	cmd.Env = append(os.Environ(), c.env...)
	cmd.Stdin = strings.NewReader(stdin)
	out, err := cmd.CombinedOutput()
	if (err == nil) != wantOK {
		c.t.Fatalf("bawwab %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// removeBawwabBuild removes the shared build once every test has run.
func removeBawwabBuild() {
	if bawwabBuild.dir != "" {
		os.RemoveAll(bawwabBuild.dir)
	}
}

// proc is a bawwab subprocess.
type proc struct {
	cmd    *exec.Cmd
	out    *bytes.Buffer
	exited chan struct{} // closed once the process has exited
}

// startProc starts bawwab serving issuer (the relay's URL) on a loopback
// port of its own and waits until it answers. The port is found by
// listening on :0 and closing, so another process may take it before
// bawwab binds it: then bawwab exits, and startProc tries a new port.
func startProc(t *testing.T, bin, issuer string, args []string) (*proc, string) {
	t.Helper()
	for try := 0; ; try++ {
		l := listen(t)
		addr := l.Addr().String()
		l.Close()
		p, err := tryProc(t, bin, addr, issuer, args)
		if err == nil {
			return p, addr
		}
		if !errors.Is(err, errAddrTaken) || try == 4 {
			t.Fatal(err)
		}
		t.Logf("%s was taken before bawwab could bind it; trying another port", addr)
	}
}

var errAddrTaken = errors.New("address already in use")

func tryProc(t *testing.T, bin, addr, issuer string, args []string) (*proc, error) {
	t.Helper()
	args = append([]string{"serve", "--listen", addr, "--issuer", issuer, "--log-level", "warn"}, args...)
	p := &proc{cmd: exec.Command(bin, args...), out: &bytes.Buffer{}, exited: make(chan struct{})}
	p.cmd.Stdout, p.cmd.Stderr = p.out, p.out
	p.cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
	if err := p.cmd.Start(); err != nil {
		t.Fatal(err)
	}
	go func() { _ = p.cmd.Wait(); close(p.exited) }()
	t.Cleanup(func() { _ = p.cmd.Process.Kill(); <-p.exited })
	deadline := time.Now().Add(20 * time.Second)
	for {
		resp, err := http.Get("http://" + addr + "/.well-known/openid-configuration")
		if err == nil {
			resp.Body.Close()
			if resp.StatusCode == 200 {
				return p, nil
			}
		}
		select {
		case <-p.exited: // the output is complete and no longer written
			if strings.Contains(p.out.String(), "address already in use") {
				return nil, fmt.Errorf("%s: %w", addr, errAddrTaken)
			}
			return nil, fmt.Errorf("bawwab exited before serving on %s:\n%s", addr, p.out)
		default:
		}
		if time.Now().After(deadline) {
			return nil, fmt.Errorf("bawwab did not come up on %s: %v", addr, err)
		}
		time.Sleep(20 * time.Millisecond)
	}
}

func (p *proc) kill(t *testing.T) {
	t.Helper()
	if err := p.cmd.Process.Signal(syscall.SIGKILL); err != nil {
		t.Fatal(err)
	}
	<-p.exited
}

// relay is the one address clients call, a listener the test holds for
// its whole life, forwarding each connection to the node of the moment:
// a restarted node may come up on another port, and no address is ever
// closed and then reused (which another process could take in between).
type relay struct {
	l       net.Listener
	mu      sync.Mutex
	backend string
	conns   map[net.Conn]bool
}

func newRelay(t *testing.T) *relay {
	t.Helper()
	r := &relay{l: listen(t), conns: map[net.Conn]bool{}}
	go func() {
		for {
			c, err := r.l.Accept()
			if err != nil {
				return
			}
			go r.pipe(c)
		}
	}()
	t.Cleanup(func() {
		r.l.Close()
		r.mu.Lock()
		defer r.mu.Unlock()
		for c := range r.conns {
			c.Close()
		}
	})
	return r
}

func (r *relay) url() string { return "http://" + r.l.Addr().String() }

func (r *relay) setBackend(addr string) {
	r.mu.Lock()
	r.backend = addr
	r.mu.Unlock()
}

func (r *relay) track(c net.Conn, add bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if add {
		r.conns[c] = true
	} else {
		delete(r.conns, c)
	}
}

// pipe forwards c to the backend until either side closes: a killed
// node's connections end, and their clients see no answer.
func (r *relay) pipe(c net.Conn) {
	r.mu.Lock()
	backend := r.backend
	r.mu.Unlock()
	b, err := net.Dial("tcp", backend)
	if err != nil {
		c.Close()
		return
	}
	r.track(c, true)
	r.track(b, true)
	defer func() { c.Close(); b.Close(); r.track(c, false); r.track(b, false) }()
	done := make(chan struct{})
	go func() { _, _ = io.Copy(b, c); b.Close(); close(done) }()
	_, _ = io.Copy(c, b)
	c.Close()
	<-done
}

// issued is what one client was given by one token response.
type issued struct {
	access, refresh string
}

func testRestart(t *testing.T, bin string, args []string, open func() storage.Storage) {
	front := newRelay(t)
	base := front.url()
	node, addr := startProc(t, bin, base, args)
	front.setBackend(addr)

	const workers = 6
	var (
		mu       sync.Mutex
		received []issued // every successful token response, in order per chain
		chains   = map[int]int{}
		failures int
		answered []error // failures the server answered: none expected
	)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for w := range workers {
		wg.Go(func() {
			c := newFlowClient(base)
			for chain := 0; ; chain++ {
				select {
				case <-stop:
					return
				default:
				}
				// One chain: a code flow, then refreshes. On any error the
				// client drops the chain, as a client whose request failed
				// would, and starts a new one.
				tok, err := c.codeFlow()
				for err == nil {
					mu.Lock()
					received = append(received, tok)
					chains[w*1_000_000+chain] = len(received) - 1
					mu.Unlock()
					select {
					case <-stop:
						return
					default:
					}
					tok, err = c.refresh(tok.refresh)
				}
				mu.Lock()
				failures++
				var transport *url.Error
				if errors.As(err, &transport) {
					// No answer: if the node died after committing a
					// rotation, the client never saw the new refresh token
					// and its last one is spent. That chain is ambiguous.
					delete(chains, w*1_000_000+chain)
				} else {
					answered = append(answered, err)
				}
				mu.Unlock()
				time.Sleep(10 * time.Millisecond)
			}
		})
	}
	count := func() int { mu.Lock(); defer mu.Unlock(); return len(received) }
	waitFor := func(n int) {
		deadline := time.Now().Add(30 * time.Second)
		for count() < n {
			if time.Now().After(deadline) {
				t.Fatalf("load stalled at %d token responses (%d failures)\n%s", count(), failures, node.out)
			}
			time.Sleep(5 * time.Millisecond)
		}
	}
	waitFor(100)
	node.kill(t)
	killedAt := count()
	time.Sleep(100 * time.Millisecond)
	node, addr = startProc(t, bin, base, args)
	front.setBackend(addr)
	waitFor(killedAt + 100)
	close(stop)
	wg.Wait()
	t.Logf("%d token responses, %d before the kill, %d requests without an answer, %d chains to check", len(received), killedAt, failures, len(chains))
	if len(answered) > 0 {
		t.Fatalf("%d requests answered with an error, first: %v\n%s", len(answered), answered[0], node.out)
	}
	if len(chains) < workers {
		t.Fatalf("only %d chains left to check", len(chains))
	}

	// Everything a client received is still good, on the restarted node.
	store := open()
	defer store.Close()
	ctx := context.Background()
	checker := newFlowClient(base)
	for i, tok := range received {
		in, err := checker.introspect(tok.access)
		if err != nil {
			t.Fatal(err)
		}
		if in["active"] != true {
			t.Fatalf("access token %d of %d inactive after the restart: %v", i, len(received), in)
		}
		gid := grantOf(t, tok.access)
		if g, err := store.GetGrant(ctx, gid); err != nil || !g.RevokedAt.IsZero() {
			t.Fatalf("grant %s of token %d: %v %+v", gid, i, err, g)
		}
	}
	for _, last := range chains {
		if _, err := checker.refresh(received[last].refresh); err != nil {
			t.Fatalf("last refresh token of a chain no longer refreshes: %v", err)
		}
	}
}

// grantOf reads the gid claim of a JWT access token (already verified by
// introspection).
func grantOf(t *testing.T, jwt string) string {
	t.Helper()
	parts := strings.Split(jwt, ".")
	var claims struct {
		GID string `json:"gid"`
	}
	payload, err := base64.RawURLEncoding.DecodeString(parts[1])
	if err != nil || json.Unmarshal(payload, &claims) != nil || claims.GID == "" {
		t.Fatalf("access token without gid: %s", payload)
	}
	return claims.GID
}

// flowClient is a browser and a confidential client (Notes) in one, whose
// methods return errors instead of failing the test, for load goroutines.
type flowClient struct {
	base string
	hc   *http.Client
}

const (
	notesSecretForTests = "notes-secret-for-tests-0123456789"
	robotSecretForTests = "robot-secret-for-tests-0123456789"
)

func newFlowClient(base string) *flowClient {
	jar, _ := cookiejar.New(nil)
	return &flowClient{base: base, hc: &http.Client{Jar: jar, Timeout: 10 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}}
}

func (c *flowClient) send(method, path string, form url.Values, basic bool) (int, http.Header, string, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, c.base+path, body)
	if err != nil {
		return 0, nil, "", err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if basic {
		req.SetBasicAuth("notes", notesSecretForTests)
	}
	resp, err := c.hc.Do(req)
	if err != nil {
		return 0, nil, "", err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header, string(b), err
}

var reqRE = regexp.MustCompile(`name="req" value="([^"]+)"`)

// codeFlow runs authorize, login and consent when asked, and redeems the code.
func (c *flowClient) codeFlow() (issued, error) {
	r := authRequest{ClientID: "notes", RedirectURI: notesRedirect, Scope: "openid email offline_access", State: "s",
		Verifier: strings.Repeat("v", 43)}
	status, h, body, err := c.send("GET", r.url(), nil, false)
	for range 5 {
		if err != nil {
			return issued{}, err
		}
		loc := h.Get("Location")
		switch {
		case status != http.StatusFound && status != http.StatusSeeOther:
			return issued{}, fmt.Errorf("authorize: %d %s", status, body)
		case strings.HasPrefix(loc, "/login") || strings.HasPrefix(loc, "/consent"):
			st, hd, page, gerr := c.send("GET", loc, nil, false)
			if gerr != nil {
				return issued{}, gerr
			}
			if st != http.StatusOK { // e.g. consent remembered meanwhile: a redirect
				status, h, body = st, hd, page
				continue
			}
			csrf, req := csrfRE.FindStringSubmatch(page), reqRE.FindStringSubmatch(page)
			if csrf == nil || req == nil {
				return issued{}, fmt.Errorf("no form at %s: %s", loc, page)
			}
			form := url.Values{"csrf_token": {csrf[1]}, "req": {req[1]}}
			path := "/consent"
			if strings.HasPrefix(loc, "/login") {
				path = "/login"
				form.Set("username", userName)
				form.Set("password", userPassword)
			} else {
				form["scope"] = []string{"email", "offline_access"}
				form.Set("action", "allow")
			}
			status, h, body, err = c.send("POST", path, form, false)
		case strings.HasPrefix(loc, notesRedirect):
			u, _ := url.Parse(loc)
			return c.token(url.Values{"grant_type": {"authorization_code"}, "code": {u.Query().Get("code")},
				"redirect_uri": {notesRedirect}, "code_verifier": {r.Verifier}})
		default:
			return issued{}, fmt.Errorf("authorize: redirect to %q", loc)
		}
	}
	return issued{}, errors.New("authorize: too many steps")
}

func (c *flowClient) refresh(rt string) (issued, error) {
	return c.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
}

func (c *flowClient) token(form url.Values) (issued, error) {
	status, _, body, err := c.send("POST", "/token", form, true)
	if err != nil {
		return issued{}, err
	}
	var r tokenResult
	if err := json.Unmarshal([]byte(body), &r); err != nil || status != 200 {
		return issued{}, fmt.Errorf("token: %d %s", status, body)
	}
	return issued{access: r.AccessToken, refresh: r.RefreshToken}, nil
}

func (c *flowClient) introspect(tok string) (map[string]any, error) {
	status, _, body, err := c.send("POST", "/introspect", url.Values{"token": {tok}}, true)
	if err != nil {
		return nil, err
	}
	var m map[string]any
	if err := json.Unmarshal([]byte(body), &m); err != nil || status != 200 {
		return nil, fmt.Errorf("introspect: %d %s", status, body)
	}
	return m, nil
}
