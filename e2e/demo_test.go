package e2e

import (
	"context"
	"net/http"
	"net/url"
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
}
