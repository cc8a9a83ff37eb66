package e2e

import (
	"bufio"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"html"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/testenv"
)

// The upstream OpenID Provider of the federation tests is an independent
// implementation, not bawwab: panva's oidc-provider from npm, run by Node.js
// with the small server in testdata/upstream-op. Its package-lock.json pins
// every package; npm ci installs them into node_modules there (as CI does)
// or, when that is absent, once per test run into the user's cache
// directory, keyed by the lock file, so that go test alone suffices.
//
// The upstream needs bawwab's callback URL among its client's redirect
// URIs, and bawwab needs the upstream's issuer: listen first, then start
// the upstream, then bawwab on that listener:
//
//	l := listen(t)
//	op := startNodeOP(t, nodeOPConfig{
//		Clients: []upstreamClient{{ID: "bawwab", Secret: secret,
//			RedirectURIs: []string{"http://" + l.Addr().String() + "/upstream/corp/callback"}}},
//		Accounts: []upstreamAccount{{Sub: "corp-amal", Email: "amal@example.com", EmailVerified: true}},
//	})
//	e := startNode(t, store, l, "", &clock{}, func(c *config.Config) { /* an upstream with op.Issuer */ })
//	callback := op.Login(t, browserClient, upstreamAuthorizeURL, "corp-amal")

// nodeOPConfig is what the upstream OP serves: its clients and the
// people who can sign in to it. Port 0 and an empty Issuer mean a free
// loopback port and http://127.0.0.1:PORT.
type nodeOPConfig struct {
	Port     int               `json:"port,omitempty"`
	Issuer   string            `json:"issuer,omitempty"`
	Clients  []upstreamClient  `json:"clients"`
	Accounts []upstreamAccount `json:"accounts"`
	// ScopeClaimsInIDToken puts the claims of the requested scopes (email,
	// name) into the ID token too; by default, as oidc-provider does, they
	// are only at the userinfo endpoint when an access token is issued.
	ScopeClaimsInIDToken bool `json:"-"`
}

// upstreamClient is one client registered at the upstream OP (bawwab is
// one). Secret empty makes a public client.
type upstreamClient struct {
	ID                   string   `json:"client_id"`
	Secret               string   `json:"client_secret,omitempty"`
	RedirectURIs         []string `json:"redirect_uris"`
	AuthMethod           string   `json:"token_endpoint_auth_method,omitempty"`
	BackchannelLogoutURI string   `json:"backchannel_logout_uri,omitempty"`
	// BackchannelLogoutSessionRequired puts sid into logout tokens.
	BackchannelLogoutSessionRequired bool `json:"backchannel_logout_session_required,omitempty"`
}

// upstreamAccount is a person at the upstream OP; Sub is also what the
// login form takes.
type upstreamAccount struct {
	Sub           string `json:"sub"`
	Email         string `json:"email,omitempty"`
	EmailVerified bool   `json:"email_verified"`
	Name          string `json:"name,omitempty"`
}

// nodeOP is a running upstream OP.
type nodeOP struct {
	// Issuer is its issuer identifier; discovery is at
	// Issuer + "/.well-known/openid-configuration".
	Issuer string
	// Log is what it wrote to standard error.
	Log *syncBuffer
}

// upstreamOPSrc is the directory of server.mjs and its package files.
const upstreamOPSrc = "testdata/upstream-op"

// upstreamOPMinNode is the oldest Node.js that oidc-provider 9 runs on.
var upstreamOPMinNode = [3]int{20, 19, 0}

var upstreamOPInstall struct {
	once        sync.Once
	node        string // the node binary
	dir         string // where node_modules and the server script are
	script      string
	missing     string // what is missing, when Node.js or npm is
	howToFix    string
	installErr  error
	installLogs string
}

// startNodeOP starts the upstream OP with cfg and stops it when t ends.
// Without Node.js (or npm, where node_modules is not installed yet) it
// skips t, or fails it under BAWWAB_REQUIRE_ALL=1.
func startNodeOP(t *testing.T, cfg nodeOPConfig) *nodeOP {
	t.Helper()
	in := &upstreamOPInstall
	in.once.Do(installUpstreamOP)
	if in.missing != "" {
		testenv.Missing(t, in.missing, in.howToFix)
	}
	if in.installErr != nil {
		// Offline, npm cannot fetch the packages: as missing as Node.js.
		testenv.Missing(t, "the upstream OP's npm packages", fmt.Sprintf("run npm ci in e2e/%s where the npm registry is reachable (%v)\n%s",
			upstreamOPSrc, in.installErr, in.installLogs))
	}
	conf := struct {
		nodeOPConfig
		Conform bool `json:"conform_id_token_claims"`
	}{cfg, !cfg.ScopeClaimsInIDToken}
	b, err := json.Marshal(conf)
	if err != nil {
		t.Fatal(err)
	}
	path := filepath.Join(t.TempDir(), "upstream-op.json")
	if err := os.WriteFile(path, b, 0o600); err != nil {
		t.Fatal(err)
	}
	return runUpstreamOP(t, in.node, in.script, path)
}

// runUpstreamOP runs the server script with the config file at path and
// waits for it to say it is ready.
func runUpstreamOP(t *testing.T, node, script, path string) *nodeOP {
	t.Helper()
	op := &nodeOP{Log: &syncBuffer{}}
	cmd := exec.Command(node, script, path)
	cmd.Stderr = op.Log
	stdin, err := cmd.StdinPipe() // closed when the test process ends: the server then exits
	if err != nil {
		t.Fatal(err)
	}
	stdout, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() {
		stdin.Close()
		_ = cmd.Process.Kill()
		_ = cmd.Wait()
		if t.Failed() {
			t.Logf("upstream OP's log:\n%s", op.Log.String())
		}
	})
	ready := make(chan string, 1)
	go func() {
		s := bufio.NewScanner(stdout)
		for s.Scan() {
			if issuer, ok := strings.CutPrefix(s.Text(), "ready "); ok {
				ready <- issuer
			}
		}
		close(ready)
	}()
	select {
	case issuer, ok := <-ready:
		if !ok {
			t.Fatalf("the upstream OP exited before it was ready:\n%s", op.Log.String())
		}
		op.Issuer = issuer
	case <-time.After(30 * time.Second):
		t.Fatalf("the upstream OP was not ready within 30s:\n%s", op.Log.String())
	}
	return op
}

// installUpstreamOP finds Node.js and the installed packages, installing
// them into the cache when they are not in the source directory.
func installUpstreamOP() {
	in := &upstreamOPInstall
	node, err := exec.LookPath("node")
	if err != nil {
		in.missing, in.howToFix = "Node.js", "install Node.js 20.19 or later and npm"
		return
	}
	if v, ok := upstreamNodeVersion(node); !ok {
		in.missing, in.howToFix = "Node.js 20.19 or later", fmt.Sprintf("%s is %s; install a newer one", node, v)
		return
	}
	in.node = node
	src, err := filepath.Abs(upstreamOPSrc)
	if err != nil {
		in.installErr = err
		return
	}
	// go test caches a passing result until a file the test read changes:
	// reading the files that Node.js runs makes their changes count.
	for _, f := range []string{"server.mjs", "package.json", "package-lock.json"} {
		if _, err := os.ReadFile(filepath.Join(src, f)); err != nil {
			in.installErr = err
			return
		}
	}
	if upstreamOPInstalled(src) {
		in.dir, in.script = src, filepath.Join(src, "server.mjs")
		return
	}
	npm, err := exec.LookPath("npm")
	if err != nil {
		in.missing, in.howToFix = "npm", "install npm, or run npm ci in e2e/"+upstreamOPSrc
		return
	}
	in.dir, in.installLogs, in.installErr = npmCI(npm, src)
	if in.installErr == nil {
		in.script, in.installErr = copyUpstreamOPScript(filepath.Join(src, "server.mjs"), in.dir)
	}
}

// upstreamNodeVersion reports node's version and whether it is new enough.
func upstreamNodeVersion(node string) (string, bool) {
	out, err := exec.Command(node, "--version").Output()
	if err != nil {
		return "unknown", false
	}
	v := strings.TrimSpace(string(out))
	return v, upstreamNodeVersionOK(v)
}

// upstreamNodeVersionOK reports whether v, as node --version prints it, is
// upstreamOPMinNode or later.
func upstreamNodeVersionOK(v string) bool {
	var have [3]int
	if n, _ := fmt.Sscanf(v, "v%d.%d.%d", &have[0], &have[1], &have[2]); n != 3 {
		return false
	}
	for i, want := range upstreamOPMinNode {
		if have[i] != want {
			return have[i] > want
		}
	}
	return true
}

func upstreamOPInstalled(dir string) bool {
	_, err := os.Stat(filepath.Join(dir, "node_modules", "oidc-provider", "package.json"))
	return err == nil
}

// npmCI installs the packages of the package files in src into a directory
// of the user's cache named by their hash, unless they are there already,
// and returns that directory and npm's output.
func npmCI(npm, src string) (dir, logs string, err error) {
	h := sha256.New()
	files := []string{"package.json", "package-lock.json"}
	for _, f := range files {
		b, err := os.ReadFile(filepath.Join(src, f))
		if err != nil {
			return "", "", err
		}
		fmt.Fprintf(h, "%s %d\n", f, len(b))
		h.Write(b)
	}
	cache, err := os.UserCacheDir()
	if err != nil {
		cache = os.TempDir()
	}
	dir = filepath.Join(cache, "bawwab-e2e", "upstream-op-"+hex.EncodeToString(h.Sum(nil))[:16])
	if upstreamOPInstalled(dir) {
		return dir, "", nil
	}
	if err := os.MkdirAll(filepath.Dir(dir), 0o755); err != nil {
		return "", "", err
	}
	tmp, err := os.MkdirTemp(filepath.Dir(dir), "install-")
	if err != nil {
		return "", "", err
	}
	defer os.RemoveAll(tmp)
	for _, f := range files {
		if err := copyUpstreamOPFile(filepath.Join(src, f), filepath.Join(tmp, f)); err != nil {
			return "", "", err
		}
	}
	cmd := exec.Command(npm, "ci", "--ignore-scripts", "--no-audit", "--no-fund")
	cmd.Dir = tmp
	out, err := cmd.CombinedOutput()
	if err != nil {
		return "", string(out), fmt.Errorf("npm ci in %s: %w", tmp, err)
	}
	// Another test process may have finished first: its directory is as good.
	if err := os.Rename(tmp, dir); err != nil && !upstreamOPInstalled(dir) {
		return "", string(out), err
	}
	return dir, string(out), nil
}

// copyUpstreamOPScript copies the file at src into dir under a name made
// of its hash, so that concurrent test runs never overwrite a script
// another one is running.
func copyUpstreamOPScript(src, dir string) (string, error) {
	b, err := os.ReadFile(src)
	if err != nil {
		return "", err
	}
	sum := sha256.Sum256(b)
	dst := filepath.Join(dir, "server-"+hex.EncodeToString(sum[:8])+".mjs")
	if _, err := os.Stat(dst); err == nil {
		return dst, nil
	}
	tmp := dst + ".tmp" + strconv.Itoa(os.Getpid())
	if err := os.WriteFile(tmp, b, 0o644); err != nil {
		return "", err
	}
	return dst, os.Rename(tmp, dst)
}

func copyUpstreamOPFile(src, dst string) error {
	b, err := os.ReadFile(src)
	if err != nil {
		return err
	}
	return os.WriteFile(dst, b, 0o644)
}

// Login signs account in at the upstream OP, as a person would in a
// browser: it requests authorizeURL (an authorization request to the
// upstream OP, such as the one bawwab redirects to), follows the upstream's
// redirects, posts its login form (login=account) and, consent being
// automatic, returns the redirect the upstream sends to the client's
// callback, without requesting it. client must have a cookie jar; like a
// browser, it keeps the upstream's session, so a second sign-in with the
// same jar skips the form and signs in whoever signed in first.
func (op *nodeOP) Login(t *testing.T, client *http.Client, authorizeURL, account string) (callbackURL string) {
	t.Helper()
	return op.interact(t, client, authorizeURL, url.Values{"login": {account}})
}

// Refuse is Login where the person cancels at the login form: the callback
// gets error=access_denied.
func (op *nodeOP) Refuse(t *testing.T, client *http.Client, authorizeURL string) (callbackURL string) {
	t.Helper()
	return op.interact(t, client, authorizeURL, url.Values{"abort": {"1"}})
}

var upstreamFormAction = regexp.MustCompile(`<form method="post" action="([^"]+)"`)

// interact follows the upstream's pages from authorizeURL, posting form to
// its login form, until a redirect leaves the upstream.
func (op *nodeOP) interact(t *testing.T, client *http.Client, authorizeURL string, form url.Values) string {
	t.Helper()
	if client.Jar == nil {
		t.Fatal("nodeOP.Login needs a client with a cookie jar")
	}
	if !op.owns(authorizeURL) {
		t.Fatalf("%s is not an authorization request to the upstream OP %s", authorizeURL, op.Issuer)
	}
	c := *client
	c.CheckRedirect = func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }
	next, post := authorizeURL, url.Values(nil)
	for range 10 {
		status, loc, body := upstreamRequest(t, &c, next, post)
		switch {
		case status >= 300 && status < 400 && !op.owns(loc):
			return loc
		case status >= 300 && status < 400:
			next, post = loc, nil
		case status == http.StatusOK && post == nil && upstreamFormAction.MatchString(body):
			action := html.UnescapeString(upstreamFormAction.FindStringSubmatch(body)[1])
			next, post = resolveUpstreamURL(t, next, action), form
		default:
			t.Fatalf("upstream OP at %s answered %d:\n%s", next, status, body)
		}
	}
	t.Fatalf("the upstream OP did not redirect to the client within 10 requests from %s", authorizeURL)
	return ""
}

// upstreamRequest GETs target, or POSTs form to it, and returns the status,
// the absolute Location and the body.
func upstreamRequest(t *testing.T, c *http.Client, target string, form url.Values) (int, string, string) {
	t.Helper()
	var resp *http.Response
	var err error
	if form == nil {
		resp, err = c.Get(target)
	} else {
		resp, err = c.Post(target, "application/x-www-form-urlencoded", strings.NewReader(form.Encode()))
	}
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(io.LimitReader(resp.Body, 1<<20))
	loc := ""
	if l := resp.Header.Get("Location"); l != "" {
		loc = resolveUpstreamURL(t, target, l)
	}
	return resp.StatusCode, loc, string(bytes.TrimSpace(body))
}

func resolveUpstreamURL(t *testing.T, base, ref string) string {
	t.Helper()
	b, err := url.Parse(base)
	if err != nil {
		t.Fatal(err)
	}
	r, err := url.Parse(ref)
	if err != nil {
		t.Fatalf("bad URL %q: %v", ref, err)
	}
	return b.ResolveReference(r).String()
}

// owns reports whether u is on the upstream OP's origin.
func (op *nodeOP) owns(u string) bool {
	a, err1 := url.Parse(u)
	b, err2 := url.Parse(op.Issuer)
	return err1 == nil && err2 == nil && a.Scheme == b.Scheme && a.Host == b.Host
}

var (
	upstreamLogoutAction = regexp.MustCompile(`<form id="op.logoutForm" method="post" action="([^"]+)">`)
	upstreamLogoutXSRF   = regexp.MustCompile(`<input type="hidden" name="xsrf" value="([^"]+)"/>`)
)

// Logout signs out at the upstream OP whoever signed in with client's
// cookie jar, as the person would on the upstream's sign-out page. Before
// it answers, the upstream posts a logout token (OpenID Connect Back-Channel
// Logout) to the BackchannelLogoutURI of each client the person signed in
// to, and it has a session no more: the next Login shows the form again.
func (op *nodeOP) Logout(t *testing.T, client *http.Client) {
	t.Helper()
	c := noRedirects(&http.Client{Jar: client.Jar, Transport: client.Transport})
	status, _, body := upstreamRequest(t, c, op.Issuer+"/session/end", nil)
	action, xsrf := upstreamLogoutAction.FindStringSubmatch(body), upstreamLogoutXSRF.FindStringSubmatch(body)
	if status != http.StatusOK || action == nil || xsrf == nil {
		t.Fatalf("upstream OP's sign-out page: %d\n%s", status, body)
	}
	target := resolveUpstreamURL(t, op.Issuer, html.UnescapeString(action[1]))
	status, loc, body := upstreamRequest(t, c, target, url.Values{"xsrf": {html.UnescapeString(xsrf[1])}, "logout": {"yes"}})
	if status/100 != 3 || !op.owns(loc) {
		t.Fatalf("upstream OP's sign-out: %d %s\n%s", status, loc, body)
	}
}
