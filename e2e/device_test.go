package e2e

import (
	"bufio"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"strings"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/device"
	"github.com/bawwab/bawwab/internal/token"
)

type deviceAuth struct {
	device.Response
	Error string `json:"error"`
}

func (e *env) deviceAuthorize(clientID, scope string) (int, deviceAuth) {
	e.t.Helper()
	status, _, body := e.post("/device_authorization", url.Values{"client_id": {clientID}, "scope": {scope}}, "", "")
	var d deviceAuth
	if err := json.Unmarshal(body, &d); err != nil {
		e.t.Fatalf("device_authorization: %d %s", status, body)
	}
	return status, d
}

func (e *env) devicePoll(deviceCode string) tokenResult {
	e.t.Helper()
	return e.token(url.Values{"grant_type": {token.DeviceCodeGrantType}, "device_code": {deviceCode}, "client_id": {"tv"}}, "", "")
}

// enterCode plays the user: the code page, login, consent (always shown).
func (b *browser) enterCode(userCode string, allow bool, scopes ...string) page {
	b.e.t.Helper()
	form := b.get("/device?user_code=" + url.QueryEscape(userCode))
	if !strings.Contains(form.Body, `value="`+userCode+`"`) {
		b.e.t.Fatalf("device page does not prefill the code: %s", form.Body)
	}
	// Typed carelessly: lower case, spaces instead of the dash.
	typed := strings.ToLower(strings.ReplaceAll(userCode, "-", " "))
	p := b.post("/device", url.Values{"csrf_token": {csrfOf(b.e.t, form)}, "user_code": {typed}})
	if strings.HasPrefix(p.Location, "/login") {
		p = b.login(p.Location, userName, userPassword)
	}
	if !strings.HasPrefix(p.Location, "/consent") {
		b.e.t.Fatalf("after the code: %d %s %s", p.Status, p.Location, p.Body)
	}
	return b.consent(p.Location, allow, scopes...)
}

// TestDeviceFlow plays RFC 8628 end to end: a TV asks for a code, the user
// enters it in a browser, logs in and consents, the TV polls and gets
// tokens; and each waiting or failing answer the RFC defines.
func TestDeviceFlow(t *testing.T) {
	e := start(t)
	status, d := e.deviceAuthorize("tv", "openid email offline_access")
	wantStatus(t, status, 200, "device_authorization", d)
	if !regexp.MustCompile(`^[BCDFGHJKLMNPQRSTVWXZ]{4}-[BCDFGHJKLMNPQRSTVWXZ]{4}$`).MatchString(d.UserCode) || d.VerificationURI != e.URL+"/device" ||
		d.VerificationURIComplete != d.VerificationURI+"?user_code="+url.QueryEscape(d.UserCode) || d.ExpiresIn != 600 || d.Interval != 5 || len(d.DeviceCode) < 30 {
		t.Fatalf("device authorization response: %+v", d)
	}

	wantTokenError(t, e.devicePoll(d.DeviceCode), 400, "authorization_pending")
	wantTokenError(t, e.devicePoll(d.DeviceCode), 400, "slow_down") // no interval waited

	b := e.browser()
	done := b.enterCode(d.UserCode, true, "email", "offline_access")
	if done.Status != 200 || !strings.Contains(done.Body, `id="device-done"`) || !strings.Contains(done.Body, "Device connected") {
		t.Fatalf("after consent: %d %s", done.Status, done.Body)
	}
	e.Clock.Advance(6 * time.Second)
	tok := e.devicePoll(d.DeviceCode)
	wantStatus(t, tok.Status, 200, "poll after approval", tok.Description)
	if tok.IDToken == "" || tok.RefreshToken == "" || tok.Scope != "openid email offline_access" {
		t.Fatalf("device tokens: %+v", tok.Response)
	}
	if status, info, _ := e.userinfo(tok.AccessToken); status != 200 || info["email"] != "amal@example.com" {
		t.Fatalf("userinfo with the device's token: %d %v", status, info)
	}
	e.Clock.Advance(6 * time.Second)
	wantTokenError(t, e.devicePoll(d.DeviceCode), 400, "invalid_grant") // tokens are issued once
	// The code cannot be entered again.
	form := b.get("/device")
	if p := b.post("/device", url.Values{"csrf_token": {csrfOf(t, form)}, "user_code": {d.UserCode}}); p.Status != http.StatusBadRequest {
		t.Fatalf("used code entered again: %d", p.Status)
	}

	// Denied.
	_, denied := e.deviceAuthorize("tv", "openid")
	if p := b.enterCode(denied.UserCode, false); !strings.Contains(p.Body, "Device not connected") {
		t.Fatalf("after denial: %d %s", p.Status, p.Body)
	}
	e.Clock.Advance(6 * time.Second)
	wantTokenError(t, e.devicePoll(denied.DeviceCode), 400, "access_denied")

	// Expired.
	_, late := e.deviceAuthorize("tv", "openid")
	e.Clock.Advance(11 * time.Minute)
	wantTokenError(t, e.devicePoll(late.DeviceCode), 400, "expired_token")

	// Another client cannot poll the TV's code; unknown codes are invalid.
	_, other := e.deviceAuthorize("tv", "openid")
	r := e.token(url.Values{"grant_type": {token.DeviceCodeGrantType}, "device_code": {other.DeviceCode}, "client_id": {"cli"}}, "", "")
	wantTokenError(t, r, 400, "unauthorized_client") // cli may not use the grant at all
	wantTokenError(t, e.devicePoll("no-such-code"), 400, "invalid_grant")

	// Clients without the grant, and scopes beyond the client's, are refused.
	if status, d := e.deviceAuthorize("cli", "openid"); status != 400 || d.Error != "unauthorized_client" {
		t.Fatalf("client without the device grant: %d %+v", status, d)
	}
	if status, d := e.deviceAuthorize("tv", "openid admin"); status != 400 || d.Error != "invalid_scope" {
		t.Fatalf("unknown scope: %d %+v", status, d)
	}
	// Wrong codes are explained.
	if p := b.post("/device", url.Values{"csrf_token": {csrfOf(t, b.get("/device"))}, "user_code": {"BCDF-GHJK"}}); p.Status != 400 || !strings.Contains(p.Body, `id="device-error"`) {
		t.Fatalf("unknown code: %d", p.Status)
	}

	// Discovery advertises it.
	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(meta, `"device_authorization_endpoint":"`+e.URL+`/device_authorization"`) || !strings.Contains(meta, token.DeviceCodeGrantType) {
		t.Fatalf("discovery lacks the device flow: %s", meta)
	}
}

// TestDeviceLoginCLI runs `bawwab device-login` (x/oauth2's device flow)
// against the server while the test plays the user in a browser.
func TestDeviceLoginCLI(t *testing.T) {
	bin := buildBawwab(t)
	e := start(t)
	cmd := exec.Command(bin, "device-login", "--issuer-url", e.URL, "--client-id", "tv", "--scope", "openid email", "-o", "json")
	cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
	stderr, err := cmd.StderrPipe()
	if err != nil {
		t.Fatal(err)
	}
	var stdout strings.Builder
	cmd.Stdout = &stdout
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer cmd.Process.Kill()
	var code string
	sc := bufio.NewScanner(stderr)
	for code == "" && sc.Scan() {
		if rest, ok := strings.CutPrefix(sc.Text(), "and enter the code "); ok {
			code = rest
		}
	}
	if code == "" {
		t.Fatal("device-login printed no code")
	}
	go func() { _, _ = io.Copy(io.Discard, stderr) }()
	e.browser().enterCode(code, true, "email")
	if err := cmd.Wait(); err != nil {
		t.Fatalf("device-login: %v", err)
	}
	var out struct {
		AccessToken string `json:"access_token"`
		Scope       string `json:"scope"`
	}
	if err := json.Unmarshal([]byte(stdout.String()), &out); err != nil || out.Scope != "openid email" {
		t.Fatalf("device-login output: %v %s", err, stdout.String())
	}
	if in := e.introspect(out.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("notes learned about tv's token: %v", in)
	}
	if status, info, _ := e.userinfo(out.AccessToken); status != 200 || info["email"] != "amal@example.com" {
		t.Fatalf("userinfo with the CLI's token: %d %v", status, info)
	}
}

// TestDeviceFlowSecondFactor: the device page signs in through the same
// pipeline as the code flow, so a person with an authenticator app gives
// a code after the password, and the device's ID tokens (and those of its
// refreshes) say so (RFC 8176): amr pwd otp mfa and the mfa acr, not a
// password alone. A password-only account's device tokens stay pwd.
func TestDeviceFlowSecondFactor(t *testing.T) {
	e := start(t)
	secret, _ := e.signIn(userPassword).enrolTOTP()
	e.Clock.Advance(90 * time.Second) // past the step the confirmation spent
	_, d := e.deviceAuthorize("tv", "openid offline_access")
	b := e.browser()
	form := b.get("/device?user_code=" + url.QueryEscape(d.UserCode))
	p := b.post("/device", url.Values{"csrf_token": {csrfOf(t, form)}, "user_code": {d.UserCode}})
	if p = b.login(p.Location, userName, userPassword); p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("device sign-in after the password: %d %s", p.Status, p.Body)
	}
	code, err := totp.GenerateCode(secret, e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	if p = b.answer(p, authRequest{}, "totp", code); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("device sign-in after the code: %d %s", p.Status, p.Body)
	}
	if p = b.consent(p.Location, true, "offline_access"); !strings.Contains(p.Body, `id="device-done"`) {
		t.Fatalf("device consent: %d %s", p.Status, p.Body)
	}
	e.Clock.Advance(6 * time.Second)
	tok := e.devicePoll(d.DeviceCode)
	wantStatus(t, tok.Status, 200, "poll", tok.Description)
	want := "[pwd otp mfa] " + token.ACRMFA
	if c := claimsOf(t, tok.IDToken); fmt.Sprint(c["amr"], " ", c["acr"]) != want {
		t.Fatalf("device ID token amr %v acr %v, want %s", c["amr"], c["acr"], want)
	}
	ref := e.token(url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"tv"}}, "", "")
	wantStatus(t, ref.Status, 200, "refresh", ref.Description)
	if c := claimsOf(t, ref.IDToken); fmt.Sprint(c["amr"], " ", c["acr"]) != want {
		t.Fatalf("refreshed device ID token amr %v acr %v, want %s", c["amr"], c["acr"], want)
	}

	// A password alone is a password alone.
	addUser(t, e, "badr", "another good passphrase")
	_, d = e.deviceAuthorize("tv", "openid")
	bb := e.browser()
	form = bb.get("/device")
	p = bb.post("/device", url.Values{"csrf_token": {csrfOf(t, form)}, "user_code": {d.UserCode}})
	if p = bb.login(p.Location, "badr", "another good passphrase"); !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("badr's device sign-in: %d %s", p.Status, p.Body)
	}
	bb.consent(p.Location, true)
	e.Clock.Advance(6 * time.Second)
	tok = e.devicePoll(d.DeviceCode)
	if c := claimsOf(t, tok.IDToken); fmt.Sprint(c["amr"], " ", c["acr"]) != "[pwd] "+token.ACR {
		t.Fatalf("password-only device ID token amr %v acr %v", c["amr"], c["acr"])
	}
}
