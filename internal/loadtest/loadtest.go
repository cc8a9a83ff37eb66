// Package loadtest drives realistic request mixes against a running bawwab
// over real HTTP with keep-alive and N concurrent workers, and measures
// throughput, latency percentiles, errors and the server's memory. The
// `bawwab bench` command wraps it.
package loadtest

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"slices"
	"strings"
	"sync"
	"text/tabwriter"
	"time"

	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/ids"
	"github.com/bawwab/bawwab/internal/token"
)

// Target is the server under load and the accounts the scenarios use.
type Target struct {
	URL          string // base URL, e.g. http://127.0.0.1:8080
	ClientID     string // a confidential client with authorization_code, refresh_token and client_credentials
	ClientSecret string
	RedirectURI  string // registered for the client
	Scope        string // scope for client_credentials, e.g. files.read
	Username     string
	Password     string
	// RSS, when set, reports the server's resident memory in bytes.
	RSS func() (int64, error)
}

// Options shape one run.
type Options struct {
	Workers  int
	Duration time.Duration
	// Rate caps the total operations a second; zero runs flat out.
	Rate int
}

// Result is the measurement of one scenario.
type Result struct {
	Scenario   string  `json:"scenario"`
	Unit       string  `json:"unit"` // what one operation is: a request or a whole flow
	Workers    int     `json:"workers"`
	Seconds    float64 `json:"seconds"`
	Count      int     `json:"count"`
	Errors     int     `json:"errors"`
	PerSecond  float64 `json:"per_second"`
	P50ms      float64 `json:"p50_ms"`
	P90ms      float64 `json:"p90_ms"`
	P99ms      float64 `json:"p99_ms"`
	Maxms      float64 `json:"max_ms"`
	MaxRSSMB   float64 `json:"max_rss_mb,omitempty"`
	FirstError string  `json:"first_error,omitempty"`
}

// Scenarios lists the mixes by name, in the order "all" runs them.
var Scenarios = []string{"client_credentials", "introspect_jwt", "introspect_opaque", "flow_login", "flow_session", "refresh"}

// Run runs one scenario.
func Run(ctx context.Context, t Target, name string, o Options) (Result, error) {
	s, ok := scenarios[name]
	if !ok {
		return Result{}, fmt.Errorf("unknown scenario %q (known: %s)", name, strings.Join(Scenarios, ", "))
	}
	o.Workers = max(o.Workers, 1)
	tr := &http.Transport{MaxIdleConns: 2 * o.Workers, MaxIdleConnsPerHost: 2 * o.Workers, DisableCompression: true}
	defer tr.CloseIdleConnections()
	setup := newWorker(t, tr)
	op, err := s.setup(setup)
	if err != nil {
		return Result{}, fmt.Errorf("%s: setup: %w", name, err)
	}

	var tl tally
	ctx, cancel := context.WithTimeout(ctx, o.Duration)
	defer cancel()
	start := time.Now()
	maxRSS := sampleRSS(ctx, t)
	var wg sync.WaitGroup
	for w := range o.Workers {
		wg.Go(func() { tl.add(repeat(ctx, newWorker(t, tr), op, o, w, start, &tl)) })
	}
	wg.Wait()
	elapsed := time.Since(start)
	cancel()
	r := tl.result(name, s.unit, o.Workers, elapsed)
	r.MaxRSSMB = float64(maxRSS()) / (1 << 20)
	return r, nil
}

// tally collects the workers' latencies and errors.
type tally struct {
	mu        sync.Mutex
	latencies []time.Duration
	errs      int
	firstErr  error
}

func (tl *tally) fail(err error) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.errs++
	if tl.firstErr == nil {
		tl.firstErr = err
	}
}

func (tl *tally) add(latencies []time.Duration) {
	tl.mu.Lock()
	defer tl.mu.Unlock()
	tl.latencies = append(tl.latencies, latencies...)
}

// result summarizes the run: throughput and latency percentiles.
func (tl *tally) result(name, unit string, workers int, elapsed time.Duration) Result {
	latencies := tl.latencies
	slices.Sort(latencies)
	r := Result{Scenario: name, Unit: unit, Workers: workers, Seconds: elapsed.Seconds(), Count: len(latencies), Errors: tl.errs,
		PerSecond: float64(len(latencies)) / elapsed.Seconds()}
	if n := len(latencies); n > 0 {
		ms := func(d time.Duration) float64 { return float64(d.Microseconds()) / 1000 }
		at := func(q float64) time.Duration { return latencies[min(n-1, int(q*float64(n)))] }
		r.P50ms, r.P90ms, r.P99ms, r.Maxms = ms(at(.50)), ms(at(.90)), ms(at(.99)), ms(latencies[n-1])
	}
	if tl.firstErr != nil {
		r.FirstError = tl.firstErr.Error()
	}
	return r
}

// sampleRSS samples the server's memory every 50ms until ctx ends; the
// function it returns waits for that and returns the largest sample.
func sampleRSS(ctx context.Context, t Target) func() int64 {
	var maxRSS int64
	done := make(chan struct{})
	go func() {
		defer close(done)
		tick := time.NewTicker(50 * time.Millisecond)
		defer tick.Stop()
		for {
			if t.RSS != nil {
				if n, err := t.RSS(); err == nil {
					maxRSS = max(maxRSS, n)
				}
			}
			select {
			case <-ctx.Done():
				return
			case <-tick.C:
			}
		}
	}()
	return func() int64 { <-done; return maxRSS }
}

// repeat runs op as worker number w until ctx ends, paced to o.Rate when
// set, and returns the latencies of the operations that succeeded;
// failures go to tl.
func repeat(ctx context.Context, wk *worker, op func(*worker) error, o Options, w int, start time.Time, tl *tally) []time.Duration {
	var local []time.Duration
	for k := 0; ; k++ {
		if o.Rate > 0 {
			at := start.Add(time.Duration(float64(k*o.Workers+w) * float64(time.Second) / float64(o.Rate)))
			select {
			case <-ctx.Done():
			case <-time.After(time.Until(at)):
			}
		}
		if ctx.Err() != nil {
			return local
		}
		t0 := time.Now()
		err := op(wk)
		if ctx.Err() != nil && err != nil {
			return local // cut short by the end of the run
		}
		if err != nil {
			tl.fail(err)
			continue
		}
		local = append(local, time.Since(t0))
	}
}

// WriteTable prints results as an aligned table.
func WriteTable(w io.Writer, results []Result) error {
	tw := tabwriter.NewWriter(w, 0, 0, 2, ' ', tabwriter.AlignRight)
	fmt.Fprintln(tw, "scenario\tunit\tworkers\tcount\terrors\tper second\tp50 ms\tp90 ms\tp99 ms\tmax ms\tmax RSS MB\t")
	for _, r := range results {
		fmt.Fprintf(tw, "%s\t%s\t%d\t%d\t%d\t%.0f\t%.2f\t%.2f\t%.2f\t%.2f\t%.1f\t\n", r.Scenario, r.Unit, r.Workers, r.Count, r.Errors,
			r.PerSecond, r.P50ms, r.P90ms, r.P99ms, r.Maxms, r.MaxRSSMB)
	}
	if err := tw.Flush(); err != nil {
		return err
	}
	for _, r := range results {
		if r.FirstError != "" {
			fmt.Fprintf(w, "%s: first error: %s\n", r.Scenario, r.FirstError)
		}
	}
	return nil
}

// ---- scenarios

type scenario struct {
	unit string
	// setup prepares shared state with a setup worker and returns the
	// operation each worker repeats.
	setup func(*worker) (func(*worker) error, error)
}

var scenarios = map[string]scenario{
	"client_credentials": {unit: "request", setup: func(s *worker) (func(*worker) error, error) {
		req := s.rawPost("/token", url.Values{"grant_type": {granttype.ClientCredentials}, "scope": {s.t.Scope}})
		return func(w *worker) error { return w.fixed(req, `"access_token":`) }, nil
	}},
	"introspect_jwt": {unit: "request", setup: func(s *worker) (func(*worker) error, error) {
		at, err := s.clientCredentials()
		if err != nil {
			return nil, err
		}
		req := s.rawPost("/introspect", url.Values{"token": {at}})
		return func(w *worker) error { return w.fixed(req, `"active":true`) }, nil
	}},
	"introspect_opaque": {unit: "request", setup: func(s *worker) (func(*worker) error, error) {
		tok, err := s.codeFlow()
		if err != nil {
			return nil, err
		}
		req := s.rawPost("/introspect", url.Values{"token": {tok.RefreshToken}, "token_type_hint": {"refresh_token"}})
		return func(w *worker) error { return w.fixed(req, `"active":true`) }, nil
	}},
	// flow_login: a new browser each time: authorize, login page, login
	// (argon2id), remembered consent, code, token.
	"flow_login": {unit: "flow", setup: func(s *worker) (func(*worker) error, error) {
		if _, err := s.codeFlow(); err != nil { // consents once
			return nil, err
		}
		return func(w *worker) error {
			w.newBrowser()
			_, err := w.codeFlow()
			return err
		}, nil
	}},
	// flow_session: a signed-in browser with remembered consent: authorize
	// (code at once) and token.
	"flow_session": {unit: "flow", setup: func(s *worker) (func(*worker) error, error) {
		if _, err := s.codeFlow(); err != nil {
			return nil, err
		}
		return func(w *worker) error { _, err := w.codeFlow(); return err }, nil
	}},
	// refresh: each worker rotates its own refresh token chain.
	"refresh": {unit: "request", setup: func(s *worker) (func(*worker) error, error) {
		if _, err := s.codeFlow(); err != nil {
			return nil, err
		}
		return func(w *worker) error {
			if w.refresh == "" {
				tok, err := w.codeFlow()
				if err != nil {
					return err
				}
				w.refresh = tok.RefreshToken
			}
			tok, err := w.token(url.Values{"grant_type": {granttype.RefreshToken}, "refresh_token": {w.refresh}})
			if err != nil {
				w.refresh = ""
				return err
			}
			w.refresh = tok.RefreshToken
			return nil
		}, nil
	}},
}

// ---- one worker: a browser and the client's back end

type worker struct {
	t       Target
	tr      http.RoundTripper
	hc      *http.Client
	refresh string

	// conn carries fixed requests (see fixed).
	conn net.Conn
	br   *bufio.Reader
}

// rawPost serializes a form POST with the client's Basic credentials once,
// for fixed.
func (w *worker) rawPost(path string, form url.Values) []byte {
	u, _ := url.Parse(w.t.URL)
	body := form.Encode()
	req, _ := http.NewRequest("POST", w.t.URL+path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth(url.QueryEscape(w.t.ClientID), url.QueryEscape(w.t.ClientSecret))
	req.Host = u.Host
	var b bytes.Buffer
	_ = req.Write(&b)
	return b.Bytes()
}

// fixed sends a pre-serialized request on the worker's own keep-alive
// connection and checks that the answer is 200 and contains want. The
// scenarios that repeat one request use it instead of http.Client, whose
// per-request cost would otherwise exceed the server's: the load generator
// shares the machine with the server it measures.
func (w *worker) fixed(req []byte, want string) error {
	if w.conn == nil {
		u, err := url.Parse(w.t.URL)
		if err != nil {
			return err
		}
		if w.conn, err = net.Dial("tcp", u.Host); err != nil {
			return err
		}
		w.br = bufio.NewReader(w.conn)
	}
	err := w.roundTrip(req, want)
	if err != nil {
		w.conn.Close()
		w.conn = nil
	}
	return err
}

func (w *worker) roundTrip(req []byte, want string) error {
	if err := w.conn.SetDeadline(time.Now().Add(30 * time.Second)); err != nil {
		return err
	}
	if _, err := w.conn.Write(req); err != nil {
		return err
	}
	resp, err := http.ReadResponse(w.br, nil)
	if err != nil {
		return err
	}
	body, err := io.ReadAll(resp.Body)
	resp.Body.Close()
	if err != nil {
		return err
	}
	if resp.StatusCode != 200 || !bytes.Contains(body, []byte(want)) {
		return fmt.Errorf("%d %s", resp.StatusCode, body)
	}
	if resp.Close {
		return errors.New("server closed the connection")
	}
	return nil
}

func newWorker(t Target, tr http.RoundTripper) *worker {
	w := &worker{t: t, tr: tr}
	w.newBrowser()
	return w
}

// newBrowser forgets every cookie: the next flow logs in again.
func (w *worker) newBrowser() {
	jar, _ := cookiejar.New(nil)
	w.hc = &http.Client{Transport: w.tr, Jar: jar, Timeout: 30 * time.Second,
		CheckRedirect: func(*http.Request, []*http.Request) error { return http.ErrUseLastResponse }}
}

type answer struct {
	status int
	loc    string
	body   []byte
}

func (w *worker) send(method, path string, form url.Values, clientAuth bool) (answer, error) {
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, err := http.NewRequest(method, w.t.URL+path, body)
	if err != nil {
		return answer{}, err
	}
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if clientAuth {
		req.SetBasicAuth(url.QueryEscape(w.t.ClientID), url.QueryEscape(w.t.ClientSecret))
	}
	resp, err := w.hc.Do(req)
	if err != nil {
		return answer{}, err
	}
	defer resp.Body.Close()
	b, err := io.ReadAll(resp.Body)
	return answer{status: resp.StatusCode, loc: resp.Header.Get("Location"), body: b}, err
}

func (w *worker) token(form url.Values) (*token.Response, error) {
	a, err := w.send("POST", "/token", form, true)
	if err != nil {
		return nil, err
	}
	if a.status != 200 {
		return nil, fmt.Errorf("token: %d %s", a.status, a.body)
	}
	var r token.Response
	return &r, json.Unmarshal(a.body, &r)
}

func (w *worker) clientCredentials() (string, error) {
	r, err := w.token(url.Values{"grant_type": {granttype.ClientCredentials}, "scope": {w.t.Scope}})
	if err != nil {
		return "", err
	}
	return r.AccessToken, nil
}

var (
	csrfRE = regexp.MustCompile(`name="csrf_token" value="([^"]+)"`)
	reqRE  = regexp.MustCompile(`name="req" value="([^"]+)"`)
)

// codeFlow runs the authorization code flow with PKCE as a browser and a
// client back end would, logging in and consenting when asked.
func (w *worker) codeFlow() (*token.Response, error) {
	verifier := ids.NewOpaque() + ids.NewOpaque()
	q := url.Values{"response_type": {"code"}, "client_id": {w.t.ClientID}, "redirect_uri": {w.t.RedirectURI},
		"scope": {"openid email offline_access"}, "state": {ids.New()}, "code_challenge": {token.S256(verifier)},
		"code_challenge_method": {"S256"}}
	a, err := w.send("GET", "/authorize?"+q.Encode(), nil, false)
	for range 6 {
		switch {
		case err != nil:
			return nil, err
		case a.status != http.StatusFound && a.status != http.StatusSeeOther:
			return nil, fmt.Errorf("authorize: %d %s", a.status, a.body)
		case strings.HasPrefix(a.loc, w.t.RedirectURI):
			u, err := url.Parse(a.loc)
			if err != nil {
				return nil, err
			}
			if e := u.Query().Get("error"); e != "" {
				return nil, fmt.Errorf("authorize: %s: %s", e, u.Query().Get("error_description"))
			}
			return w.token(url.Values{"grant_type": {granttype.AuthorizationCode}, "code": {u.Query().Get("code")},
				"redirect_uri": {w.t.RedirectURI}, "code_verifier": {verifier}})
		case strings.HasPrefix(a.loc, "/login"), strings.HasPrefix(a.loc, "/consent"):
			page, gerr := w.send("GET", a.loc, nil, false)
			if gerr != nil {
				return nil, gerr
			}
			if page.status != 200 {
				a = page
				continue
			}
			csrf, req := csrfRE.FindSubmatch(page.body), reqRE.FindSubmatch(page.body)
			if csrf == nil || req == nil {
				return nil, fmt.Errorf("no form at %s", a.loc)
			}
			form := url.Values{"csrf_token": {string(csrf[1])}, "req": {string(req[1])}}
			path := "/consent"
			if strings.HasPrefix(a.loc, "/login") {
				path = "/login"
				form.Set("username", w.t.Username)
				form.Set("password", w.t.Password)
			} else {
				form["scope"] = []string{"email", "offline_access"}
				form.Set("action", "allow")
			}
			a, err = w.send("POST", path, form, false)
		default:
			return nil, fmt.Errorf("authorize: unexpected redirect to %q", a.loc)
		}
	}
	return nil, errors.New("authorize: too many redirects")
}
