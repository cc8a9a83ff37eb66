package e2e

import (
	"encoding/json"
	"fmt"
	"html"
	"net/http"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/token"
)

// Step-up (OpenID Connect Core §3.1.2.1 acr_values, max_age, prompt;
// §5.5.1.1 essential acr; RFC 9470) and the second-factor policy.

// passwordSession returns a browser signed in with the password alone and
// the TOTP secret it then enrolled (under second_factor off the password
// stays enough for a plain request).
func passwordSession(e *env) (*browser, string) {
	e.t.Helper()
	b := e.signIn(userPassword)
	secret, _ := b.enrolTOTP()
	e.Clock.Advance(90 * time.Second) // past the step the confirmation spent
	return b, secret
}

// appSignIn signs a new browser in with the password alone, through an
// app request that asks for no second factor (the account pages' own
// sign-in asks an enrolled factor under every second_factor setting).
func (e *env) appSignIn() *browser {
	e.t.Helper()
	b := e.browser()
	b.authorize(e.notesRequest("openid email"), "email")
	return b
}

// stepUpForm follows a request that needs more than b's session to the
// /login page and checks that it asks for a second factor only.
func stepUpForm(b *browser, r authRequest) page {
	t := b.e.t
	t.Helper()
	p := b.get(r.url())
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login?req=") {
		t.Fatalf("a session short of the request was not sent to /login: %d %s", p.Status, p.Location)
	}
	p = b.get(p.Location)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) || strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("step-up page does not ask for the second factor alone: %d %s", p.Status, p.Body)
	}
	return p
}

// finishStepUp answers the step-up page with a fresh code and returns the
// authorization response.
func finishStepUp(b *browser, p page, r authRequest, secret string, scopes ...string) url.Values {
	t := b.e.t
	t.Helper()
	code, err := totp.GenerateCode(secret, b.e.Clock.Now())
	if err != nil {
		t.Fatal(err)
	}
	p = b.answer(p, r, "totp", code)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent?") {
		t.Fatalf("code: %d %s", p.Status, p.Body)
	}
	return b.authorize(r, scopes...)
}

// offStart is a server whose policy asks for a second factor only when a
// client, a scope or a request does.
func offStart(t *testing.T) *env {
	return startWith(t, func(c *config.Config) { c.SecondFactor = "off" })
}

// TestStepUpACRValues: acr_values=urn:bawwab:acr:mfa steps an existing
// password session up with the second factor alone; the new ID token,
// access token and introspection say amr [pwd otp mfa], acr mfa and the
// time of the step-up; a password request stays acr password.
func TestStepUpACRValues(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	r := e.notesRequest("openid email")
	tok := e.redeem(b.authorize(r, "email").Get("code"), r)
	if c := claimsOf(t, tok.IDToken); c["acr"] != token.ACR || fmt.Sprint(c["amr"]) != "[pwd]" {
		t.Fatalf("password session: acr %v amr %v", c["acr"], c["amr"])
	}
	if c := claimsOf(t, tok.AccessToken); c["acr"] != token.ACR {
		t.Fatalf("access token of a password session: acr %v", c["acr"])
	}
	e.Clock.Advance(time.Minute)
	r = e.notesRequest("openid email")
	r.Extra = url.Values{"acr_values": {token.ACRMFA}}
	// The clock ticks in real time: the step-up falls between these two
	// readings, a minute after the password.
	before := e.Clock.Now().Unix()
	q := finishStepUp(b, stepUpForm(b, r), r, secret, "email")
	after := e.Clock.Now().Unix()
	tok = e.redeem(q.Get("code"), r)
	wantStatus(t, tok.Status, 200, "token after step-up", tok.Description)
	stepUpTime := func(v any) bool {
		at, ok := v.(float64)
		return ok && int64(at) >= before && int64(at) <= after
	}
	var authTime any
	for name, raw := range map[string]string{"ID token": tok.IDToken, "access token": tok.AccessToken} {
		c := claimsOf(t, raw)
		if c["acr"] != token.ACRMFA || fmt.Sprint(c["amr"]) != "[pwd otp mfa]" || !stepUpTime(c["auth_time"]) {
			t.Errorf("%s after step-up: acr %v amr %v auth_time %v (step-up between %d and %d)", name, c["acr"], c["amr"], c["auth_time"], before, after)
		}
		if authTime == nil {
			authTime = c["auth_time"]
		} else if c["auth_time"] != authTime {
			t.Errorf("ID token and access token disagree on auth_time: %v, %v", authTime, c["auth_time"])
		}
	}
	in := e.introspect(tok.AccessToken, "notes", e.NotesSecret)
	if in["acr"] != token.ACRMFA || fmt.Sprint(in["amr"]) != "[pwd otp mfa]" || in["auth_time"] != authTime {
		t.Errorf("introspection after step-up: %v, want auth_time %v", in, authTime)
	}
	// The stepped-up session now meets acr_values=mfa without a question.
	r = e.notesRequest("openid email")
	r.Extra = url.Values{"acr_values": {token.ACRMFA}}
	if q := b.authorize(r, "email"); q.Get("code") == "" {
		t.Fatalf("stepped-up session asked again: %v", q)
	}
	// An unknown value is voluntary (Core §3.1.2.1): no step-up, no error.
	r = e.notesRequest("openid email")
	r.Extra = url.Values{"acr_values": {"urn:example:gold"}}
	if tok := e.redeem(e.browser().authorize(r, "email").Get("code"), r); claimsOf(t, tok.IDToken)["acr"] != token.ACR {
		t.Fatalf("unknown acr value: %+v", tok)
	}
	// A malformed one is refused with invalid_request.
	r.Extra = url.Values{"acr_values": {`urn:x"y`}}
	p := b.get(r.url())
	if u, _ := url.Parse(p.Location); u == nil || u.Query().Get("error") != "invalid_request" {
		t.Fatalf("malformed acr_values: %d %s", p.Status, p.Location)
	}
}

// TestStepUpEssentialACR: an essential acr claim of mfa (Core §5.5.1.1)
// steps up like acr_values.
func TestStepUpEssentialACR(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	r := e.notesRequest("openid email")
	r.Extra = url.Values{"claims": {`{"id_token":{"acr":{"essential":true,"values":["` + token.ACRMFA + `"]}}}`}}
	tok := e.redeem(finishStepUp(b, stepUpForm(b, r), r, secret, "email").Get("code"), r)
	if c := claimsOf(t, tok.IDToken); c["acr"] != token.ACRMFA {
		t.Fatalf("essential acr mfa: ID token acr %v", c["acr"])
	}
}

// TestStepUpMaxAge: max_age older than the session asks for the password
// again (a fresh first factor), and then for the second factor the
// request needs; auth_time is the new sign-in's.
func TestStepUpMaxAge(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	e.Clock.Advance(10 * time.Minute)
	r := e.notesRequest("openid email")
	r.Extra = url.Values{"max_age": {"60"}, "acr_values": {token.ACRMFA}}
	p := b.get(r.url())
	p = b.get(p.Location)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("max_age: the password is not asked again: %d %s", p.Status, p.Body)
	}
	u, _ := url.Parse(b.get(r.url()).Location)
	// The clock ticks in real time: the new sign-in falls between these
	// two readings, ten minutes after the old one.
	before := e.Clock.Now().Unix()
	p = b.login(u.String(), userName, userPassword)
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("after the password: %d %s", p.Status, p.Body)
	}
	tok := e.redeem(finishStepUp(b, p, r, secret, "email").Get("code"), r)
	after := e.Clock.Now().Unix()
	c := claimsOf(t, tok.IDToken)
	at, _ := c["auth_time"].(float64)
	if int64(at) < before || int64(at) > after || c["acr"] != token.ACRMFA {
		t.Fatalf("max_age: auth_time %v (new sign-in between %d and %d) acr %v", c["auth_time"], before, after, c["acr"])
	}
}

// TestStepUpPromptNone: prompt=none never steps up: a session short of a
// second factor gets interaction_required, one too old for max_age
// login_required, none at all login_required; no code is issued.
func TestStepUpPromptNone(t *testing.T) {
	e := offStart(t)
	b, _ := passwordSession(e)
	for name, tc := range map[string]struct {
		b     *browser
		extra url.Values
		want  string
	}{
		"second factor wanted": {b, url.Values{"acr_values": {token.ACRMFA}}, "interaction_required"},
		"essential acr":        {b, url.Values{"claims": {`{"id_token":{"acr":{"essential":true,"value":"` + token.ACRMFA + `"}}}`}}, "interaction_required"},
		"payment scope":        {b, url.Values{"scope": {"openid payment"}}, "interaction_required"},
		"max_age":              {b, url.Values{"max_age": {"1"}}, "login_required"},
		"no session":           {e.browser(), nil, "login_required"},
	} {
		r := e.notesRequest("openid email")
		r.Extra = tc.extra
		if r.Extra == nil {
			r.Extra = url.Values{}
		}
		r.Extra.Set("prompt", "none")
		e.Clock.Advance(2 * time.Second)
		p := tc.b.get(r.url())
		u, _ := url.Parse(p.Location)
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, notesRedirect) || u.Query().Get("error") != tc.want || u.Query().Get("code") != "" {
			t.Errorf("%s: %d %s, want error %s", name, p.Status, p.Location, tc.want)
		}
	}
}

// setClientSecondFactor sets the notes client's second_factor flag
// through the admin API.
func setClientSecondFactor(t *testing.T, e *env, on bool) {
	t.Helper()
	status, raw := jsonCall(t, "GET", e.AdminURL+"/admin/clients/notes", adminToken, nil)
	var c map[string]any
	if status != 200 || json.Unmarshal(raw, &c) != nil {
		t.Fatalf("get client: %d %s", status, raw)
	}
	delete(c, "created_at")
	c["second_factor"] = on
	if status, raw = jsonCall(t, "PUT", e.AdminURL+"/admin/clients/notes", adminToken, c); status != 200 || !strings.Contains(string(raw), fmt.Sprintf(`"second_factor":%v`, on)) {
		t.Fatalf("update client: %d %s", status, raw)
	}
}

// TestStepUpClientPolicy: a client whose operator set second_factor gets
// only sessions with a second factor; its neighbour does not.
func TestStepUpClientPolicy(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	setClientSecondFactor(t, e, true)
	r := e.notesRequest("openid email")
	tok := e.redeem(finishStepUp(b, stepUpForm(b, r), r, secret, "email").Get("code"), r)
	if c := claimsOf(t, tok.IDToken); c["acr"] != token.ACRMFA {
		t.Fatalf("client policy: acr %v", c["acr"])
	}
	// Turned off again, a password session is enough once more.
	setClientSecondFactor(t, e, false)
	b2 := e.browser()
	r = e.notesRequest("openid email")
	if tok := e.redeem(b2.authorize(r, "email").Get("code"), r); claimsOf(t, tok.IDToken)["acr"] != token.ACR {
		t.Fatal("the client's flag outlived its removal")
	}
}

// TestStepUpSensitiveScope: a request for payment (second_factor_scopes)
// needs a second factor even under second_factor off.
func TestStepUpSensitiveScope(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	r := e.notesRequest("openid payment")
	tok := e.redeem(finishStepUp(b, stepUpForm(b, r), r, secret, "payment").Get("code"), r)
	if c := claimsOf(t, tok.AccessToken); c["acr"] != token.ACRMFA || !strings.Contains(fmt.Sprint(c["scope"]), "payment") {
		t.Fatalf("payment token: %v", c)
	}
}

// TestStepUpNoSecondFactor: under second_factor required, a person with
// no second factor signs in to the account pages (to set one up) but no
// app: the page says why, links to the Security page, and offers the way
// back to the app with access_denied. Once they set one up, they pass.
func TestStepUpNoSecondFactor(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.SecondFactor = "required" })
	r := e.notesRequest("openid email")
	b := e.browser()
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent?") {
		t.Fatalf("after the password: %d %s", p.Status, p.Location)
	}
	consentURL := p.Location
	p = b.get(consentURL)
	if p.Status != http.StatusForbidden || !strings.Contains(p.Body, `id="stepup-security"`) || !strings.Contains(p.Body, `href="/account/security`) {
		t.Fatalf("refusal page: %d %s", p.Status, p.Body)
	}
	m := regexp.MustCompile(`href="([^"]+)" id="stepup-back"`).FindStringSubmatch(p.Body)
	if m == nil {
		t.Fatalf("no way back: %s", p.Body)
	}
	back := html.UnescapeString(m[1])
	u, _ := url.Parse(back)
	if !strings.HasPrefix(back, notesRedirect) || u.Query().Get("error") != "access_denied" || u.Query().Get("state") != r.State || u.Query().Get("code") != "" {
		t.Fatalf("way back: %s", back)
	}
	// The request is spent.
	if p := b.get(consentURL); p.Status != http.StatusBadRequest {
		t.Fatalf("refused request again: %d %s", p.Status, p.Location)
	}
	// The account pages work, so that the person can set a factor up.
	if p := b.get("/account/security"); p.Status != http.StatusOK {
		t.Fatalf("security page: %d", p.Status)
	}
	// prompt=none says interaction_required.
	r2 := e.notesRequest("openid email")
	r2.Extra = url.Values{"prompt": {"none"}}
	if u, _ := url.Parse(b.get(r2.url()).Location); u.Query().Get("error") != "interaction_required" {
		t.Fatalf("prompt=none without a second factor: %v", u)
	}
	secret, _ := b.enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	r = e.notesRequest("openid email")
	if tok := e.redeem(finishStepUp(b, stepUpForm(b, r), r, secret, "email").Get("code"), r); claimsOf(t, tok.IDToken)["acr"] != token.ACRMFA {
		t.Fatal("after enrolment: no mfa token")
	}
}

// TestStepUpAttacks: the second step cannot be skipped by posting
// straight to /consent or by coming back to /authorize; a progress cookie
// of another request counts for nothing; two tabs racing with one code
// get one sign-in at most; a registered client cannot lower its
// operator's second_factor flag.
func TestStepUpAttacks(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	r := e.notesRequest("openid email")
	r.Extra = url.Values{"acr_values": {token.ACRMFA}}
	p := b.get(r.url())
	req := strings.TrimPrefix(strings.Split(p.Location, "&")[0], "/login?req=")
	// Skip the code: consent page and consent form.
	if p := b.get("/consent?req=" + req); p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login?req=") {
		t.Fatalf("consent page without the second factor: %d %s", p.Status, p.Location)
	}
	form := b.get("/account")
	if p := b.post("/consent", url.Values{"csrf_token": {csrfOf(t, form)}, "req": {req}, "action": {"allow"}, "scope": {"email"}}); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/login?req=") {
		t.Fatalf("consent posted without the second factor: %d %s", p.Status, p.Location)
	}

	// Password for one request, in a fresh browser with TOTP asked: its
	// progress cookie does not carry over to another request.
	e2 := e.browser()
	r1 := e.notesRequest("openid email")
	r1.Extra = url.Values{"acr_values": {token.ACRMFA}}
	p = e2.get(r1.url())
	loginR1 := p.Location
	if p = e2.login(p.Location, userName, userPassword); !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("fresh browser: %d %s", p.Status, p.Body)
	}
	// Copied into the browser of another person (signed in as badr), the
	// progress cookie still needs amal's code: a wrong one gets nothing,
	// and badr's session stays badr's.
	addUser(t, e, "badr", "another good passphrase")
	bb := e.browser()
	if p := bb.login("/login", "badr", "another good passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("badr: %d", p.Status)
	}
	loginURL, _ := url.Parse(e.URL + "/login")
	for _, c := range e2.Jar.Cookies(loginURL) {
		if c.Name == signin.ProgressCookie {
			bb.Jar.SetCookies(loginURL, []*http.Cookie{{Name: c.Name, Value: c.Value, Path: "/login"}})
		}
	}
	stolen := bb.get(loginR1)
	if !strings.Contains(stolen.Body, `name="step" value="totp"`) {
		t.Fatalf("copied progress cookie: %d %s", stolen.Status, stolen.Body)
	}
	wrong := "000000"
	if now, _ := totp.GenerateCode(secret, e.Clock.Now()); now == wrong {
		wrong = "111111"
	}
	if p := bb.answer(stolen, r1, "totp", wrong); p.Status != http.StatusUnauthorized {
		t.Fatalf("copied progress cookie with a wrong code: %d %s", p.Status, p.Location)
	}
	if p := bb.get("/account"); p.Status != http.StatusOK || !strings.Contains(p.Body, "badr") {
		t.Fatalf("badr's session after the copied cookie: %d", p.Status)
	}
	r2 := e.notesRequest("openid email")
	p = e2.get(e2.get(r2.url()).Location)
	if !strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("the progress of one request counted for another: %s", p.Body)
	}

	// Two tabs, one code: the code is spent by one of them only.
	ra, rb := e.notesRequest("openid email"), e.notesRequest("openid email")
	ra.Extra, rb.Extra = url.Values{"acr_values": {token.ACRMFA}}, url.Values{"acr_values": {token.ACRMFA}}
	pa, pb := stepUpForm(b, ra), stepUpForm(b, rb)
	code, _ := totp.GenerateCode(secret, e.Clock.Now())
	var wg sync.WaitGroup
	results := make([]page, 2)
	for i, tab := range []struct {
		p page
		r authRequest
	}{{pa, ra}, {pb, rb}} {
		wg.Add(1)
		go func() { defer wg.Done(); results[i] = b.answer(tab.p, tab.r, "totp", code) }()
	}
	wg.Wait()
	passed := 0
	for _, res := range results {
		if res.Status == http.StatusSeeOther {
			passed++
		}
	}
	if passed != 1 {
		t.Fatalf("one code passed %d racing tabs: %d %d", passed, results[0].Status, results[1].Status)
	}
}

// TestStepUpRegistrationCannotLower: a dynamically registered client that
// its operator made second_factor keeps the flag when it replaces its
// registration (RFC 7592), whatever it sends.
func TestStepUpRegistrationCannotLower(t *testing.T) {
	e := start(t)
	meta := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "Registered App",
		"grant_types": []string{"authorization_code"}, "scope": "openid email", "second_factor": false}
	app := e.register("POST", "/register", registrationToken, meta)
	if app.Status != 201 {
		t.Fatalf("register: %+v", app)
	}
	c, err := e.Store.GetClient(t.Context(), app.ClientID)
	if err != nil || c.SecondFactor {
		t.Fatalf("registered client: %+v %v", c, err)
	}
	c.SecondFactor = true
	if err := e.Store.UpdateClient(t.Context(), *c); err != nil {
		t.Fatal(err)
	}
	meta["client_id"] = app.ClientID
	if up := e.register("PUT", app.RegistrationClientURI, app.RegistrationAccessToken, meta); up.Status != 200 {
		t.Fatalf("update: %+v", up)
	}
	if c, err := e.Store.GetClient(t.Context(), app.ClientID); err != nil || !c.SecondFactor {
		t.Fatalf("the client lowered its second_factor flag: %+v %v", c, err)
	}
}

// startNoScopeFactor is start with no scope needing a second factor, for
// the tests of the consent page that ask for payment as a sensitive scope
// (the second factor payment asks for by default is tested by
// TestStepUpSensitiveScope).
func startNoScopeFactor(t *testing.T) *env {
	return startWith(t, func(c *config.Config) { c.SecondFactorScopes = nil })
}

// TestStepUpPushedAndSigned: acr_values pushed to /par (RFC 9126) or
// signed in a request object (RFC 9101) steps up like a plain one; in a
// signed request, acr_values outside the object is ignored.
func TestStepUpPushedAndSigned(t *testing.T) {
	e := offStart(t)
	b, secret := passwordSession(e)
	r := e.notesRequest("openid email")
	q := r.query()
	q.Set("acr_values", token.ACRMFA)
	pushed := e.push(q, "notes", e.NotesSecret)
	front := url.Values{"client_id": {"notes"}, "request_uri": {pushed.RequestURI}}
	p := b.get("/authorize?" + front.Encode())
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login?req=") {
		t.Fatalf("pushed acr_values: %d %s", p.Status, p.Location)
	}
	if p = b.get(p.Location); !strings.Contains(p.Body, `name="step" value="totp"`) || strings.Contains(p.Body, `name="password"`) {
		t.Fatalf("pushed step-up page: %s", p.Body)
	}
	code, _ := totp.GenerateCode(secret, e.Clock.Now())
	if p = b.answer(p, r, "totp", code); p.Status != http.StatusSeeOther {
		t.Fatalf("pushed step-up code: %d %s", p.Status, p.Body)
	}
	cb, _ := url.Parse(b.consent(p.Location, true, "email").Location)
	if tok := e.redeem(cb.Query().Get("code"), r); claimsOf(t, tok.IDToken)["acr"] != token.ACRMFA {
		t.Fatalf("pushed: %+v", tok)
	}

	// Signed: the object's acr_values counts, the query's does not.
	key := newKeyPair(t, "k1")
	const redirect = "https://signed.example/cb"
	if _, err := admin.AddClient(t.Context(), e.Store, admin.ClientSpec{ID: "signed", Name: "Signed App", RedirectURIs: []string{redirect},
		Scopes: []string{"openid", "email"}, AuthMethod: "private_key_jwt", JWKS: jwkSet(key)}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	object := func(acr string) string {
		c := map[string]any{"iss": "signed", "aud": e.URL, "exp": time.Now().Add(5 * time.Minute).Unix(), "jti": token.NewOpaque(),
			"client_id": "signed", "response_type": "code", "redirect_uri": redirect, "scope": "openid email", "state": "st",
			"nonce": "n1", "code_challenge": token.S256(strings.Repeat("w", 43)), "code_challenge_method": "S256"}
		if acr != "" {
			c["acr_values"] = acr
		}
		return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: key.kid}},
			(&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"), c)
	}
	// b's session has mfa now: fresh password sessions.
	p = e.appSignIn().get("/authorize?" + url.Values{"client_id": {"signed"}, "request": {object(token.ACRMFA)}}.Encode())
	if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login?req=") {
		t.Fatalf("signed acr_values: %d %s", p.Status, p.Location)
	}
	p = e.appSignIn().get("/authorize?" + url.Values{"client_id": {"signed"}, "request": {object("")}, "acr_values": {token.ACRMFA}}.Encode())
	if strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("acr_values outside the request object was read: %s", p.Location)
	}
}
