package e2e

import (
	"net/http"
	"net/url"
	"regexp"
	"strconv"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/adminapi"
)

var chartTotal = regexp.MustCompile(`id="total-([a-z]+-(?:hour|day))">(\d+)<`)

// dashboardTotals reads the totals of the dashboard's charts.
func dashboardTotals(t *testing.T, e *env, b *browser, lang string) (map[string]int, string) {
	t.Helper()
	p := b.get(e.AdminURL + "/console/?lang=" + lang)
	wantStatus(t, p.Status, http.StatusOK, "dashboard", p.Body)
	out := map[string]int{}
	for _, m := range chartTotal.FindAllStringSubmatch(p.Body, -1) {
		out[m[1]], _ = strconv.Atoi(m[2])
	}
	if len(out) != 8 {
		t.Fatalf("dashboard has %d charts, want 8: %s", len(out), p.Body)
	}
	return out, p.Body
}

// TestConsoleDashboardCharts: the code flow, run from a test client,
// shows on the dashboard's token charts (the node's counters of /metrics,
// per minute and per hour) and in the audit log; a failed sign-in and a
// detected attack (a form without its CSRF token) show on theirs. The
// charts are inline SVG drawn by the server; in Arabic the time runs from
// right to left, the current minute at the left end.
func TestConsoleDashboardCharts(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	consoleToken(t, e, b)
	before, _ := dashboardTotals(t, e, b, "en")

	r := e.notesRequest("openid")
	tok := e.redeem(e.browser().authorize(r, "openid").Get("code"), r)
	if tok.AccessToken == "" {
		t.Fatalf("code flow: %+v", tok)
	}
	lp := e.browser().get(r.url())
	if p := e.browser().login(lp.Location, userName, "not the password"); p.Status == http.StatusFound {
		t.Fatalf("a wrong password signed in: %d", p.Status)
	}
	if p := b.post(e.AdminURL+"/console/users/"+e.UserID+"/do/unlock", url.Values{"csrf_token": {"forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("forged form: %d", p.Status)
	}

	after, body := dashboardTotals(t, e, b, "en")
	for chart, want := range map[string]int{"tokens": 1, "logins": 1, "failures": 1, "attacks": 1} {
		for _, span := range []string{"-hour", "-day"} {
			if got := after[chart+span] - before[chart+span]; got != want {
				t.Errorf("%s%s grew by %d, want %d", chart, span, got, want)
			}
		}
	}
	if !strings.Contains(body, `<svg viewBox="0 0 480 118"`) || !strings.Contains(body, `<rect class="col"`) {
		t.Fatalf("no inline SVG bars: %s", body)
	}
	audit := b.get(e.AdminURL + "/console/audit?type=token_issued&client=notes")
	if !strings.Contains(audit.Body, "token_issued") || !strings.Contains(audit.Body, "notes") {
		t.Fatalf("the token is not in the audit log: %s", audit.Body)
	}

	// Right to left: the bar of the current minute is at the left end.
	_, ar := dashboardTotals(t, e, b, "ar")
	chart := ar[strings.Index(ar, `id="chart-tokens-hour"`):]
	chart = chart[:strings.Index(chart, "</svg>")]
	xs := regexp.MustCompile(`<rect class="col" x="([0-9.]+)"`).FindAllStringSubmatch(chart, -1)
	if len(xs) == 0 {
		t.Fatalf("no bars in the Arabic chart: %s", chart)
	}
	if x, _ := strconv.ParseFloat(xs[len(xs)-1][1], 64); x > 8 {
		t.Fatalf("in Arabic the current minute's bar is at x=%v, want the left end", x)
	}
	if !strings.Contains(chart, `text-anchor="start">الآن<`) {
		t.Fatalf("the Arabic chart's axis: %s", chart)
	}
}

// TestConsoleRegistrationPolicy: the dashboard and GET
// /admin/registration show the policy of dynamic registration (here:
// token) and that an initial access token is set, never the token; the
// route wants the admin token.
func TestConsoleRegistrationPolicy(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	consoleToken(t, e, b)
	_, body := dashboardTotals(t, e, b, "en")
	if !strings.Contains(body, "clients holding the initial access token (token)") || !strings.Contains(body, "set (never shown)") ||
		strings.Contains(body, registrationToken) {
		t.Fatalf("dashboard's registration policy: %s", body)
	}
	var pol map[string]any
	if st, raw := e.adminCall("GET", "/admin/registration", adminToken, nil, &pol); st != http.StatusOK || pol["mode"] != "token" ||
		pol["initial_access_token_set"] != true || pol["pkce"] != "required" || strings.Contains(raw, registrationToken) {
		t.Fatalf("GET /admin/registration: %d %s", st, raw)
	}
	if st, _ := e.adminCall("GET", "/admin/registration", "wrong", nil, nil); st != http.StatusUnauthorized {
		t.Fatalf("GET /admin/registration without the admin token: %d", st)
	}
	consoleRegistrationTokens(t, e, b)
}

var shownToken = regexp.MustCompile(`<code id="token" dir="ltr">([^<]+)<`)

// consoleRegistrationTokens: on the registration page an operator issues
// an initial access token, shown once; a client registers with it over
// HTTP and the page shows the use; the operator revokes it after a
// confirmation, and registration with it is refused. A form without the
// console's CSRF token does nothing.
func consoleRegistrationTokens(t *testing.T, e *env, b *browser) {
	t.Helper()
	reg := b.get(e.AdminURL + "/console/registration")
	wantStatus(t, reg.Status, http.StatusOK, "registration page", reg.Body)
	if strings.Contains(reg.Body, registrationToken) || !strings.Contains(reg.Body, "No initial access token was issued.") {
		t.Fatalf("registration page: %s", reg.Body)
	}
	form := url.Values{"label": {"partner <b>x</b>"}, "expires_in": {"86400"}, "max_uses": {"2"}}
	if p := b.post(e.AdminURL+"/console/registration/tokens", form); p.Status != http.StatusForbidden {
		t.Fatalf("issue without the CSRF token: %d", p.Status)
	}
	form.Set("csrf_token", csrfOf(t, reg))
	p := b.post(e.AdminURL+"/console/registration/tokens", form)
	m := shownToken.FindStringSubmatch(p.Body)
	if p.Status != http.StatusCreated || m == nil || strings.Contains(p.Body, "<b>x</b>") {
		t.Fatalf("issue: %d %s", p.Status, p.Body)
	}
	tok := m[1]
	var toks []adminapi.RegistrationToken
	e.adminCall("GET", "/admin/registration/tokens", adminToken, nil, &toks)
	if len(toks) != 1 || toks[0].CreatedBy != userName+" (console)" || toks[0].MaxUses != 2 || toks[0].ExpiresAt == nil {
		t.Fatalf("issued from the console: %+v", toks)
	}
	id := toks[0].ID
	if again := b.get(e.AdminURL + "/console/registration"); strings.Contains(again.Body, tok) {
		t.Fatal("the token is shown again")
	}

	app := e.register("POST", "/register", tok, appMeta)
	wantStatus(t, app.Status, http.StatusCreated, "registration with the console's token", app)
	row := b.get(e.AdminURL + "/console/registration").Body
	row = row[strings.Index(row, `id="token-`+id+`"`):]
	if !strings.Contains(row[:strings.Index(row, "</tr>")], `<td class="uses">1 / 2</td>`) {
		t.Fatalf("the page does not show the use: %s", row)
	}

	confirm := b.get(e.AdminURL + "/console/registration/tokens/" + id + "/revoke")
	if confirm.Status != http.StatusOK || !strings.Contains(confirm.Body, `id="confirm-text"`) || !strings.Contains(confirm.Body, id) {
		t.Fatalf("revoke confirmation: %d %s", confirm.Status, confirm.Body)
	}
	if p := b.post(e.AdminURL+"/console/registration/tokens/"+id+"/revoke", url.Values{"csrf_token": {"forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("revoke with a forged CSRF token: %d", p.Status)
	}
	if r := e.register("POST", "/register", tok, appMeta); r.Status != http.StatusCreated {
		t.Fatalf("a refused revocation revoked: %+v", r)
	}
	p = b.post(e.AdminURL+"/console/registration/tokens/"+id+"/revoke", url.Values{"csrf_token": {csrfOf(t, confirm)}})
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/console/registration?notice=") {
		t.Fatalf("revoke: %d %q", p.Status, p.Location)
	}
	refused(t, e, tok, "was revoked")
	done := b.get(e.AdminURL + p.Location)
	if !strings.Contains(done.Body, "The initial access token was revoked.") || strings.Contains(done.Body, `id="revoke-`+id+`"`) {
		t.Fatalf("after the revocation: %s", done.Body)
	}
	if ar := b.get(e.AdminURL + "/console/registration?lang=ar"); !strings.Contains(ar.Body, "مُلغى") || !strings.Contains(ar.Body, `dir="rtl"`) {
		t.Fatalf("the Arabic registration page: %s", ar.Body)
	}
}
