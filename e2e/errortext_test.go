package e2e

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"regexp"
	"strings"
	"sync"
	"testing"

	"github.com/bawwab/bawwab/internal/testenv"
)

// TestMain routes every HTTP request the tests make through a transport
// that checks each error_description bawwab answers with: in a JSON body,
// in a redirect's query and in a WWW-Authenticate challenge. RFC 6749
// §4.1.2.1 and §5.2 (and RFC 6750 §3) allow only %x20-21 / %x23-5B /
// %x5D-7E there. So every error path the suites trigger is checked, and a
// run with a description outside the grammar fails.
func TestMain(m *testing.M) {
	checker := &descriptionChecker{next: http.DefaultTransport}
	http.DefaultTransport = checker
	code := testenv.MainPostgres(m, "e2e", false) // says when the PostgreSQL tests are skipped
	removeBawwabBuild()
	if testing.Verbose() {
		fmt.Printf("error descriptions checked: %d\n", checker.count())
	}
	if bad := checker.violations(); len(bad) > 0 {
		fmt.Fprintf(os.Stderr, "error_description outside the RFC 6749 grammar in %d responses:\n%s\n", len(bad), strings.Join(bad, "\n"))
		code = 1
	}
	os.Exit(code)
}

// descriptionChecker is an http.RoundTripper that records every
// error_description that breaks the grammar.
type descriptionChecker struct {
	next http.RoundTripper

	mu      sync.Mutex
	checked int
	bad     []string
}

var challengeDescription = regexp.MustCompile(`error_description="([^"]*)"`)

func (c *descriptionChecker) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := c.next.RoundTrip(req)
	if err != nil {
		return resp, err
	}
	where := req.Method + " " + req.URL.Path
	if loc := resp.Header.Get("Location"); loc != "" {
		if u, err := url.Parse(loc); err == nil && u.Query().Has("error_description") {
			c.check(where+" redirect", u.Query().Get("error_description"))
		}
	}
	for _, h := range resp.Header.Values("WWW-Authenticate") {
		if !strings.Contains(h, "error_description") {
			continue
		}
		m := challengeDescription.FindStringSubmatch(h)
		if m == nil || strings.Count(h, `"`)%2 != 0 {
			c.record(where, "WWW-Authenticate does not parse: "+h)
			continue
		}
		c.check(where+" WWW-Authenticate", m[1])
	}
	if strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") && resp.Body != nil {
		body, err := io.ReadAll(resp.Body)
		resp.Body.Close()
		resp.Body = io.NopCloser(bytes.NewReader(body))
		if err != nil {
			return resp, nil
		}
		var e struct {
			Description *string `json:"error_description"`
		}
		if json.Unmarshal(body, &e) == nil && e.Description != nil {
			c.check(where+" JSON", *e.Description)
		}
	}
	return resp, nil
}

func (c *descriptionChecker) check(where, desc string) {
	c.mu.Lock()
	c.checked++
	c.mu.Unlock()
	if !validDescription(desc) {
		c.record(where, fmt.Sprintf("%q", desc))
	}
}

func (c *descriptionChecker) record(where, what string) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.bad = append(c.bad, where+": "+what)
}

func (c *descriptionChecker) count() int {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.checked
}

func (c *descriptionChecker) violations() []string {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.bad
}

// validDescription: 1*( %x20-21 / %x23-5B / %x5D-7E ).
func validDescription(s string) bool {
	if s == "" {
		return false
	}
	for i := 0; i < len(s); i++ {
		b := s[i]
		if b < 0x20 || b > 0x7e || b == '"' || b == '\\' {
			return false
		}
	}
	return true
}

// TestErrorDescriptionGrammar sends requests whose errors echo hostile
// values (non-ASCII, quotes, backslashes, control characters) and errors
// whose texts cite RFC sections, and checks what comes back on each
// channel: redirect, JSON body and WWW-Authenticate.
func TestErrorDescriptionGrammar(t *testing.T) {
	e := start(t)
	hostile := "\u00e9\u2026\"\\\u00a7x\u0007" + strings.Repeat("y", 50)

	t.Run("redirect", func(t *testing.T) {
		for name, mod := range map[string]func(url.Values){
			"echoed unknown scope": func(q url.Values) { q.Set("scope", "openid "+hostile) },
			"echoed resource":      func(q url.Values) { q.Set("resource", hostile) },
			"section sign":         func(q url.Values) { q.Set("response_type", "token") },
			"missing state":        func(q url.Values) { q.Del("state") },
		} {
			r := e.notesRequest("openid")
			q := r.query()
			mod(q)
			p := e.browser().get("/authorize?" + q.Encode())
			u, _ := url.Parse(p.Location)
			d := u.Query().Get("error_description")
			if p.Status != http.StatusFound || !validDescription(d) || strings.Contains(d, "\u00a7") {
				t.Fatalf("%s: %d %q", name, p.Status, d)
			}
		}
	})
	t.Run("JSON", func(t *testing.T) {
		res := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {"x"}, "redirect_uri": {notesRedirect}, "code_verifier": {"short"}},
			"notes", e.NotesSecret)
		if res.Status != 400 || !validDescription(res.Description) || !strings.Contains(res.Description, "section 4.1") {
			t.Fatalf("%d %q", res.Status, res.Description)
		}
		res = e.token(url.Values{"grant_type": {hostile}}, "notes", e.NotesSecret)
		if res.Error == "" || !validDescription(res.Description) {
			t.Fatalf("%d %q", res.Status, res.Description)
		}
	})
	t.Run("WWW-Authenticate", func(t *testing.T) {
		status, _, h := e.userinfo("not-a-token")
		m := challengeDescription.FindStringSubmatch(h.Get("WWW-Authenticate"))
		if status != 401 || m == nil || !validDescription(m[1]) {
			t.Fatalf("%d %q", status, h.Get("WWW-Authenticate"))
		}
	})
}
