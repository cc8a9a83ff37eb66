package e2e

import (
	"context"
	"io"
	"net/http"
	"net/http/cookiejar"
	"net/url"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/demo"
)

// demoPage is one page the demo served, after redirects.
type demoPage struct {
	Status int
	URL    *url.URL
	Body   string
}

// demoBrowser follows redirects and keeps cookies, like a browser.
type demoBrowser struct {
	t *testing.T
	c *http.Client
}

func (b demoBrowser) do(method, uri string, form url.Values) demoPage {
	b.t.Helper()
	var body io.Reader
	if form != nil {
		body = strings.NewReader(form.Encode())
	}
	req, _ := http.NewRequest(method, uri, body)
	if form != nil {
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	resp, err := b.c.Do(req)
	if err != nil {
		b.t.Fatalf("%s %s: %v", method, uri, err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return demoPage{Status: resp.StatusCode, URL: resp.Request.URL, Body: string(raw)}
}

func (p demoPage) form(t *testing.T, fields url.Values) url.Values {
	t.Helper()
	m := csrfRE.FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no CSRF token in %s (%d): %s", p.URL, p.Status, p.Body)
	}
	fields.Set("csrf_token", m[1])
	if req := p.URL.Query().Get("req"); req != "" && fields.Get("req") == "" {
		fields.Set("req", req)
	}
	return fields
}

// TestDemoStepUpLoop plays RFC 9470 on the demo over HTTP: Greedy Games
// gets a password token with payment; the demo API answers /api/payment
// with 401 insufficient_user_authentication and acr_values; Greedy sends
// the person through /authorize again with them; without a second factor
// bawwab refuses and points to the Security page; once one is set up,
// bawwab asks only for it, and the retried call shows the cards.
func TestDemoStepUpLoop(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	d, err := demo.Start(ctx, demo.Options{Host: "127.0.0.1", Password: &testPassword})
	if err != nil {
		t.Fatal(err)
	}
	jar, _ := cookiejar.New(nil)
	b := demoBrowser{t: t, c: &http.Client{Jar: jar, Timeout: 10 * time.Second}}

	// Sign up at Greedy Games with the password, granting payment.
	p := b.do("POST", d.GreedyURL+"/signup", url.Values{})
	if p.URL.Path != "/login" {
		t.Fatalf("signup did not reach the login page: %s", p.URL)
	}
	p = b.do("POST", d.AuthURL+"/login", p.form(t, url.Values{"username": {demo.Username}, "password": {demo.Password}}))
	if p.URL.Path != "/consent" {
		t.Fatalf("after the password: %s %s", p.URL, p.Body)
	}
	p = b.do("POST", d.AuthURL+"/consent", p.form(t, url.Values{"action": {"allow"}, "scope": {"profile", "email", "payment"}}))
	if !strings.HasPrefix(p.URL.String(), d.GreedyURL) || !strings.Contains(p.Body, `id="stepup-needed"`) || strings.Contains(p.Body, "4242") {
		t.Fatalf("Greedy Games with a password token: %s %s", p.URL, p.Body)
	}
	// The API's challenge, as RFC 9470 §3 words it.
	trace := b.do("GET", d.GreedyURL+"/trace", nil).Body
	if !strings.Contains(trace, `error=&#34;insufficient_user_authentication&#34;`) || !strings.Contains(trace, `acr_values=&#34;urn:bawwab:acr:mfa&#34;`) {
		t.Fatalf("trace lacks the API's challenge: %s", trace)
	}

	// Step up without a second factor: refused, with the way to set one up.
	p = b.do("POST", d.GreedyURL+"/stepup", url.Values{})
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, `id="stepup-security"`) || !strings.Contains(p.URL.RawQuery, "acr_values=urn") && p.URL.Path != "/login" {
		t.Fatalf("step-up without a factor: %d %s %s", p.Status, p.URL, p.Body)
	}

	// Set up an authenticator app; its recovery codes stand in for it.
	sec := b.do("GET", d.AuthURL+"/account/security", nil)
	sec = b.do("POST", d.AuthURL+"/account/security/totp", sec.form(t, url.Values{"action": {"start"}}))
	m := totpSecretRE.FindStringSubmatch(sec.Body)
	if m == nil {
		t.Fatalf("enrolment page: %s", sec.Body)
	}
	code, _ := totp.GenerateCode(m[1], time.Now())
	sec = b.do("POST", d.AuthURL+"/account/security/totp", sec.form(t, url.Values{"action": {"confirm"}, "code": {code}}))
	codes := recoveryCodeRE.FindAllStringSubmatch(sec.Body, -1)
	if len(codes) == 0 {
		t.Fatalf("no recovery codes: %s", sec.Body)
	}

	// Step up again: only the second factor is asked, then the retried
	// call shows the cards.
	p = b.do("POST", d.GreedyURL+"/stepup", url.Values{})
	if p.URL.Path != "/login" || !strings.Contains(p.Body, `name="step" value="recovery"`) || strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("step-up page: %d %s %s", p.Status, p.URL, p.Body)
	}
	req := regexp.MustCompile(`name="req" value="([^"]*)"`).FindStringSubmatch(p.Body)
	p = b.do("POST", d.AuthURL+"/login", p.form(t, url.Values{"req": {req[1]}, "step": {"recovery"}, "code": {codes[0][1]}}))
	if !strings.HasPrefix(p.URL.String(), d.GreedyURL) || !strings.Contains(p.Body, "4242") || strings.Contains(p.Body, `id="stepup-needed"`) {
		t.Fatalf("after the step-up: %s %s", p.URL, p.Body)
	}
}
