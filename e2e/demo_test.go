package e2e

import (
	"bufio"
	"context"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/demo"
)

// startDemo runs the demo's wiring at localhost (its default host name)
// and returns it with an env whose browsers talk to its authorization
// server.
func startDemo(t *testing.T) (*demo.Demo, *env) {
	t.Helper()
	ctx, cancel := context.WithCancel(context.Background())
	d, err := demo.Start(ctx, demo.Options{Password: &testPassword})
	if err != nil {
		cancel()
		t.Fatal(err)
	}
	t.Cleanup(func() { cancel(); _ = d.Wait() })
	return d, &env{t: t, URL: d.AuthURL, Store: d.Store, Clock: &clock{}}
}

// TestDemoFactorUser: the demo's second user has an authenticator app set
// up already; with the key the demo prints (plain, and in the otpauth URI
// an app scans), a person signs in with the password and then a code. The
// demo runs at localhost, so its Security page offers passkeys.
func TestDemoFactorUser(t *testing.T) {
	d, e := startDemo(t)
	if !strings.HasPrefix(d.AuthURL, "http://localhost:") || !d.PasskeysOn {
		t.Fatalf("demo at %s, passkeys on: %v", d.AuthURL, d.PasskeysOn)
	}
	u, err := url.Parse(d.TOTPURI)
	// The label is "issuer:account": the issuer is the host name alone,
	// since a port's colon would split it in the wrong place.
	if err != nil || u.Scheme != "otpauth" || u.Host != "totp" || u.Query().Get("secret") != d.TOTPKey ||
		u.Query().Get("issuer") != "localhost" || u.Path != "/localhost:karim@example.com" {
		t.Fatalf("otpauth URI %q (key %q): %v", d.TOTPURI, d.TOTPKey, err)
	}
	b := e.browser()
	p := b.login("/login", demo.FactorUsername, demo.FactorPassword)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("after the password: %d %s", p.Status, p.Body)
	}
	if q := b.get("/account"); q.Status != http.StatusFound {
		t.Fatalf("signed in with the password alone: %d", q.Status)
	}
	code, err := totp.GenerateCode(d.TOTPKey, time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p = b.answer(p, authRequest{}, "totp", code); p.Status != http.StatusSeeOther {
		t.Fatalf("code from the printed key: %d %s", p.Status, p.Body)
	}
	p = b.get("/account/security")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `id="totp-on"`) || !strings.Contains(p.Body, `id="passkey-add-submit"`) {
		t.Fatalf("security page: %d %s", p.Status, p.Body)
	}
	// The session records both factors (RFC 8176), for the ID tokens it
	// leads to.
	karim, err := d.Store.GetUserByUsername(t.Context(), demo.FactorUsername)
	if err != nil {
		t.Fatal(err)
	}
	if sessions, _ := d.Store.ListUserSessions(t.Context(), karim.ID); len(sessions) != 1 || !slices.Contains(sessions[0].AMR, "otp") ||
		!slices.Contains(sessions[0].AMR, "pwd") {
		t.Fatalf("sessions after password and code: %+v", sessions)
	}
	// Karim is an admin: the console, signed in through the demo's bawwab
	// with the session that passed the code, admits him.
	e.AdminURL = strings.TrimSuffix(d.ConsoleURL, "/console/")
	if p, _ := b.consoleFlow(""); p.Status != http.StatusOK || !b.consoleSession() {
		t.Fatalf("Karim at the demo's console %s: %d %s", d.ConsoleURL, p.Status, p.Body)
	}
}

// TestDemoCommand: `bawwab demo` prints where everything is and Karim's
// authenticator key; signing in as Karim at the printed address with the
// printed password and a code from the printed key works, and the sign-in
// page offers "Create an account". It also names the person to sign in as
// at Example Corp (TestDemoContinueWithCorp plays that sign-in).
func TestDemoCommand(t *testing.T) {
	bin := buildBawwab(t)
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	cmd := exec.CommandContext(ctx, bin, "demo", "--auth-port", "0", "--api-port", "0", "--notes-port", "0", "--greedy-port", "0", "--corp-port", "0", "--console-port", "0")
	cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
	out, err := cmd.StdoutPipe()
	if err != nil {
		t.Fatal(err)
	}
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cancel(); _ = cmd.Wait() }()
	time.AfterFunc(time.Minute, cancel) // a demo that never says it runs
	var printed strings.Builder
	lines := bufio.NewScanner(out)
	for lines.Scan() && !strings.HasPrefix(lines.Text(), "Press Ctrl+C") {
		printed.WriteString(lines.Text() + "\n")
	}
	text := printed.String()
	authURL := regexp.MustCompile(`Authorization server: +(http://localhost:\d+) `).FindStringSubmatch(text)
	key := regexp.MustCompile(`key: ([A-Z2-7]+)\n`).FindStringSubmatch(text)
	if authURL == nil || key == nil || !strings.Contains(text, demo.FactorUsername+" / "+demo.FactorPassword) ||
		!strings.Contains(text, "otpauth://totp/localhost:karim@example.com?") || !strings.Contains(text, "/account/security") ||
		!strings.Contains(text, "Continue with Example Corp: sign in there as "+demo.CorpUsername+" / "+demo.CorpPassword) ||
		!regexp.MustCompile(`Admin console: +http://127\.0\.0\.1:\d+/console/ +\(sign in as `+demo.FactorUsername).MatchString(text) {
		t.Fatalf("the demo printed:\n%s", text)
	}
	e := &env{t: t, URL: authURL[1], Clock: &clock{}}
	b := e.browser()
	if p := b.get("/login"); !strings.Contains(p.Body, `href="/signup"`) {
		t.Fatalf("the demo's sign-in page offers no sign-up: %d %s", p.Status, p.Body)
	}
	p := b.login("/login", demo.FactorUsername, demo.FactorPassword)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("after the printed password: %d %s", p.Status, p.Body)
	}
	code, err := totp.GenerateCode(key[1], time.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p = b.answer(p, authRequest{}, "totp", code); p.Status != http.StatusSeeOther {
		t.Fatalf("a code from the printed key: %d %s", p.Status, p.Body)
	}
	if p = b.get("/account/security"); p.Status != http.StatusOK || !strings.Contains(p.Body, `id="passkey-add-submit"`) {
		t.Fatalf("Karim's Security page: %d %s", p.Status, p.Body)
	}
}
