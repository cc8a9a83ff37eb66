package e2e

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"regexp"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// startMailing starts bawwab with open sign-up and a real SMTP relay
// (mailtest) that the test reads the mails from.
func startMailing(t *testing.T, configure ...func(*config.Config)) (*env, *mailtest.Server) {
	t.Helper()
	relay := mailtest.Start(t)
	e := startWith(t, func(c *config.Config) {
		c.Signup = "open"
		c.MailRelay = "smtp+insecure://" + relay.Addr()
		c.MailFrom = "no-reply@bawwab.test"
		for _, f := range configure {
			f(c)
		}
	})
	return e, relay
}

var linkRE = regexp.MustCompile(`https?://[^\s]+/(?:verify|reset/confirm)\?[^\s]+`)

// linkIn returns the one link to path in a mail.
func linkIn(t *testing.T, m mailtest.Received, path string) string {
	t.Helper()
	for _, l := range linkRE.FindAllString(m.Body(), -1) {
		if u, err := url.Parse(l); err == nil && u.Path == path {
			return l
		}
	}
	t.Fatalf("no %s link in the mail: %s", path, m.Body())
	return ""
}

// mailsTo counts what the relay received for addr.
func mailsTo(relay *mailtest.Server, addr string) int {
	n := 0
	for _, m := range relay.Messages() {
		if mailtest.To(addr)(m) {
			n++
		}
	}
	return n
}

func (b *browser) signup(path string, form url.Values) page {
	b.e.t.Helper()
	p := b.get(path)
	if p.Status != 200 {
		b.e.t.Fatalf("sign-up page %s: %d %s", path, p.Status, p.Body)
	}
	form.Set("csrf_token", csrfOf(b.e.t, p))
	if u, _ := url.Parse(path); u.Query().Get("req") != "" {
		form.Set("req", u.Query().Get("req"))
	}
	return b.post("/signup", form)
}

// TestSignupFromAuthorization: the Notes app's "Sign up with bawwab" — a
// new person opens the login page of an authorization request, creates an
// account there, lands on that request's consent, and Notes gets a code;
// the address is unconfirmed until the mailed link is followed, which then
// works once. The new account signs in with its password.
func TestSignupFromAuthorization(t *testing.T) {
	e, relay := startMailing(t)
	b := e.browser()
	r := e.notesRequest("openid email")
	p := b.get(r.url())
	if !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("authorize: %d %s", p.Status, p.Location)
	}
	req, _ := url.Parse(p.Location)
	login := b.get(p.Location)
	signupHref := `href="/signup?req=` + req.Query().Get("req") + `"`
	if !strings.Contains(login.Body, signupHref) || !strings.Contains(login.Body, `href="/reset"`) {
		t.Fatalf("the login page offers no sign-up for this request (%s) or no reset: %s", signupHref, login.Body)
	}
	p = b.signup("/signup?req="+req.Query().Get("req"), url.Values{"name": {"Rania Saleh"}, "email": {"rania@example.net"},
		"username": {"rania"}, "password": {"a long new passphrase"}})
	if p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent?req="+req.Query().Get("req")) {
		t.Fatalf("sign-up did not go on to the consent: %d %s %s", p.Status, p.Location, p.Body)
	}
	p = b.consent(p.Location, true, "email")
	cb, _ := url.Parse(p.Location)
	if !strings.HasPrefix(p.Location, notesRedirect) || cb.Query().Get("code") == "" {
		t.Fatalf("consent: %d %s", p.Status, p.Location)
	}
	tok := e.redeem(cb.Query().Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	_, info, _ := e.userinfo(tok.AccessToken)
	if info["email"] != "rania@example.net" || info["email_verified"] != false {
		t.Fatalf("userinfo before confirmation: %v", info)
	}

	m := relay.Wait(t, 10*time.Second, mailtest.To("rania@example.net"))
	if len(m.To) != 1 || m.From != "no-reply@bawwab.test" || !strings.Contains(m.Body(), "Rania Saleh") {
		t.Fatalf("confirmation mail: from %q to %v: %s", m.From, m.To, m.Body())
	}
	link := linkIn(t, m, "/verify")
	other := e.browser() // the link works in any browser: it is the proof
	if p := other.get(link); p.Status != 200 || !strings.Contains(p.Body, `id="notice"`) {
		t.Fatalf("verify: %d %s", p.Status, p.Body)
	}
	if u, err := e.Store.GetUserByUsername(context.Background(), "rania"); err != nil || !u.EmailVerified {
		t.Fatalf("after verification: %+v %v", u, err)
	}
	if p := other.get(link); p.Status != http.StatusBadRequest {
		t.Fatalf("a verification link used twice: %d", p.Status)
	}
	tok = e.refreshOr(t, tok)
	if _, info, _ = e.userinfo(tok.AccessToken); info["email_verified"] != true {
		t.Fatalf("userinfo after confirmation: %v", info)
	}
	loginURL := e.browser().get(e.notesRequest("openid").url()).Location
	if p := e.browser().login(loginURL, "rania", "a long new passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("the new account cannot sign in: %d", p.Status)
	}
}

// refreshOr gets a fresh access token for tok's grant when it has a
// refresh token, and returns tok otherwise.
func (e *env) refreshOr(t *testing.T, tok tokenResult) tokenResult {
	t.Helper()
	if tok.RefreshToken == "" {
		return tok
	}
	next := e.refresh(tok.RefreshToken)
	wantStatus(t, next.Status, 200, "refresh", next.Description)
	return next
}

// TestSignupEnumeration: signing up with an address another account
// confirmed is answered exactly as with a fresh one; the owner gets a
// notice, not a link, and the new account's address stays unconfirmed.
// Sign-up is off by default, and then /signup does not exist.
func TestSignupEnumeration(t *testing.T) {
	e, relay := startMailing(t)
	try := func(user, addr string) page {
		return e.browser().signup("/signup", url.Values{"name": {"Someone"}, "email": {addr}, "username": {user}, "password": {"another long passphrase"}})
	}
	fresh, taken := try("fresh1", "fresh1@example.net"), try("fresh2", "AMAL@example.com")
	if fresh.Status != taken.Status || fresh.Location != taken.Location {
		t.Fatalf("sign-up answers a taken address differently: %d %s vs %d %s", fresh.Status, fresh.Location, taken.Status, taken.Location)
	}
	m := relay.Wait(t, 10*time.Second, mailtest.To("AMAL@example.com"))
	if strings.Contains(m.Body(), "/verify?") || !strings.Contains(m.Body(), "/reset") {
		t.Fatalf("the owner of a taken address got: %s", m.Body())
	}
	if u, _ := e.Store.GetUserByUsername(context.Background(), "fresh2"); u == nil || u.EmailVerified {
		t.Fatalf("the account with a taken address: %+v", u)
	}
	if owner, _ := e.Store.GetUserByEmail(context.Background(), "amal@example.com"); owner == nil || owner.ID != e.UserID {
		t.Fatalf("the address changed hands: %+v", owner)
	}
	if p := try("fresh1", "x@example.net"); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "signup-error") {
		t.Fatalf("a taken username: %d", p.Status)
	}
	// A name cannot carry a header into a mail.
	if p := try("eve", "eve@example.net"); p.Status != http.StatusSeeOther {
		t.Fatalf("plain sign-up: %d", p.Status)
	}
	p := e.browser().signup("/signup", url.Values{"name": {"Eve\r\nBcc: victim@example.org"}, "email": {"eve2@example.net"},
		"username": {"eve2"}, "password": {"another long passphrase"}})
	if p.Status != http.StatusBadRequest {
		t.Fatalf("a name with a line break was accepted: %d", p.Status)
	}
	p = e.browser().signup("/signup", url.Values{"name": {"Eve"}, "email": {"eve3@example.net\r\nBcc: victim@example.org"},
		"username": {"eve3"}, "password": {"another long passphrase"}})
	if p.Status != http.StatusBadRequest {
		t.Fatalf("an address with a line break was accepted: %d", p.Status)
	}
	time.Sleep(500 * time.Millisecond)
	for _, m := range relay.Messages() {
		for _, to := range m.To {
			if strings.Contains(to, "victim") {
				t.Fatalf("a mail went to an injected recipient: %v", m.To)
			}
		}
	}

	off := start(t)
	if p := off.browser().get("/signup"); p.Status != http.StatusNotFound {
		t.Fatalf("sign-up off by default: %d", p.Status)
	}
	if p := off.browser().get("/login"); strings.Contains(p.Body, "/signup") {
		t.Fatal("the login page offers sign-up while it is off")
	}
}

// askReset asks for a reset link for login from a fresh browser.
func askReset(e *env, login string) page {
	b := e.browser()
	p := b.get("/reset")
	return b.post("/reset", url.Values{"csrf_token": {csrfOf(e.t, p)}, "login": {login}})
}

// resetWith sets a new password through a reset link; extra fields are
// added to the form.
func resetWith(e *env, b *browser, link, pw string, extra url.Values) page {
	e.t.Helper()
	p := b.get(link)
	if p.Status != 200 {
		return p
	}
	u, _ := url.Parse(link)
	form := url.Values{"csrf_token": {csrfOf(e.t, p)}, "token": {u.Query().Get("token")}, "password": {pw}}
	for k, v := range extra {
		form[k] = v
	}
	return b.post("/reset/confirm", form)
}

// TestPasswordReset: a reset request answers the same for an account and
// for nobody; the mailed link sets a new password once, for its own
// account only, whatever else the form says; afterwards every session
// and refresh token of the account is dead, its apps got a back-channel
// logout, a notice mail was sent, and the event is audited.
func TestPasswordReset(t *testing.T) {
	e, relay := startMailing(t)
	ctx := context.Background()
	got := make(chan string, 4)
	rp := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if err := r.ParseForm(); err == nil && r.Method == "POST" {
			got <- r.PostForm.Get("logout_token")
		}
	}))
	defer rp.Close()
	if _, err := admin.AddClient(ctx, e.Store, admin.ClientSpec{ID: "feed", Name: "Feed", RedirectURIs: []string{"https://feed.example/cb"},
		Scopes: []string{"openid"}, BackchannelLogoutURI: rp.URL + "/logout", Outbound: e.Server.Outbound}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	// A second account, whose password the attacker will try to set with
	// a link of the first.
	if _, err := admin.AddUser(ctx, e.Store, admin.UserSpec{Username: "basel", Password: "his very own passphrase", Name: "Basel",
		Email: "basel@example.com", EmailVerified: true}, testPassword); err != nil {
		t.Fatal(err)
	}
	old := e.browser()
	old.authorize(authRequest{ClientID: "feed", RedirectURI: "https://feed.example/cb", Scope: "openid", State: "s", Verifier: strings.Repeat("f", 43)})
	r := e.notesRequest("openid offline_access")
	tok := e.redeem(old.authorize(r, "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)

	// No enumeration: the same answer for an account, an address, and nobody.
	answers := map[string]page{}
	for _, login := range []string{"amal", "nobody-at-all", "AMAL@example.com", "nobody@example.com"} {
		answers[login] = askReset(e, login)
	}
	for login, p := range answers {
		if p.Status != 200 || p.Body != answers["nobody-at-all"].Body {
			t.Fatalf("reset for %q answered %d, unlike for nobody: %s", login, p.Status, p.Body)
		}
	}
	m := relay.Wait(t, 10*time.Second, mailtest.To("amal@example.com"))
	link := linkIn(t, m, "/reset/confirm")
	if strings.Contains(link, "@") {
		t.Fatalf("the link carries more than a secret: %s", link)
	}
	// Both mails to amal may take a while on a loaded machine; then a
	// moment for any third one.
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return mailsTo(relay, "amal@example.com") >= 2 })
	time.Sleep(300 * time.Millisecond)
	if n := mailsTo(relay, "amal@example.com"); n != 2 {
		t.Fatalf("%d reset mails for amal, want 2 (by username and by address)", n)
	}
	if n := len(relay.Messages()); n != 2 {
		t.Fatalf("%d mails in all, want 2: nobody got one", n)
	}
	var stored []storage.AuditEvent
	stored, _ = e.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: e.UserID, Type: "password_reset_requested"})
	if len(stored) != 2 {
		t.Fatalf("%d reset requests audited, want 2", len(stored))
	}
	// A new link voids the earlier ones: of the two mailed, the test goes
	// on with the one that works (TestNewLinkRace).
	link = liveLink(t, e, resetLinks(t, relay, "amal@example.com"), storage.TokenResetPassword)

	// A weak password is refused without spending the link.
	nb := e.browser()
	if p := resetWith(e, nb, link, "password", nil); p.Status != http.StatusBadRequest || !strings.Contains(p.Body, "reset-error") {
		t.Fatalf("a common password: %d", p.Status)
	}
	// The link names its account; a username in the form changes nothing.
	p := resetWith(e, nb, link, "a brand new passphrase", url.Values{"username": {"basel"}, "user_id": {"x"}})
	if p.Status != 200 || !strings.Contains(p.Body, `id="notice"`) {
		t.Fatalf("reset: %d %s", p.Status, p.Body)
	}
	if p := resetWith(e, e.browser(), link, "yet another passphrase", nil); p.Status != http.StatusBadRequest {
		t.Fatalf("a reset link used twice: %d", p.Status)
	}
	loginURL := e.browser().get(e.notesRequest("openid").url()).Location
	if p := e.browser().login(loginURL, userName, "a brand new passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("the new password does not work: %d", p.Status)
	}
	if p := e.browser().login(loginURL, userName, userPassword); p.Status != http.StatusUnauthorized {
		t.Fatalf("the old password still works: %d", p.Status)
	}
	if p := e.browser().login(loginURL, "basel", "his very own passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("the other account's password changed: %d", p.Status)
	}

	// Everything the old password opened is closed.
	if p := old.get("/account"); p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("an old session survived the reset: %d %s", p.Status, p.Location)
	}
	wantTokenError(t, e.refresh(tok.RefreshToken), 400, "invalid_grant")
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("an old access token is active: %v", in)
	}
	select {
	case <-got:
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout after the reset")
	}
	notice := relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "was changed")
	})
	if strings.Contains(notice.Body(), "a brand new passphrase") {
		t.Fatal("the notice carries the password")
	}
	if ev, _ := e.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: e.UserID, Type: "password_reset"}); len(ev) != 1 {
		t.Fatalf("%d resets audited, want 1", len(ev))
	}
}

// TestResetLinkAttacks: an expired link is refused; of concurrent uses of
// one link exactly one sets the password; guessing links is throttled.
func TestResetLinkAttacks(t *testing.T) {
	e, relay := startMailing(t)
	askReset(e, userName)
	link := linkIn(t, relay.Wait(t, 10*time.Second, mailtest.To("amal@example.com")), "/reset/confirm")

	// Concurrent uses: each browser loads the form, then all post at once.
	const n = 8
	forms := make([]url.Values, n)
	browsers := make([]*browser, n)
	u, _ := url.Parse(link)
	for i := range n {
		browsers[i] = e.browser()
		p := browsers[i].get(link)
		forms[i] = url.Values{"csrf_token": {csrfOf(t, p)}, "token": {u.Query().Get("token")}, "password": {"racing passphrase " + string(rune('a'+i))}}
	}
	status := make([]int, n)
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() { status[i] = browsers[i].post("/reset/confirm", forms[i]).Status })
	}
	wg.Wait()
	wins := 0
	for _, s := range status {
		switch s {
		case 200:
			wins++
		case http.StatusBadRequest:
		default:
			t.Fatalf("a concurrent use answered %d", s)
		}
	}
	if wins != 1 {
		t.Fatalf("%d concurrent uses of one link succeeded, want 1 (%v)", wins, status)
	}

	// Expired: a fresh link outlives email_link_ttl by a minute.
	askReset(e, userName)
	relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return strings.Count(strings.Join(mailBodies(relay), "\n"), "/reset/confirm") >= 2
	})
	bodies := mailBodies(relay)
	fresh := linkRE.FindString(bodies[len(bodies)-1])
	if fresh == "" || fresh == link {
		t.Fatalf("no second reset link: %v", bodies)
	}
	e.Clock.Advance(time.Hour + time.Minute)
	if p := resetWith(e, e.browser(), fresh, "too late passphrase", nil); p.Status != http.StatusBadRequest {
		t.Fatalf("an expired reset link: %d", p.Status)
	}

	// Forms without their CSRF token are refused, and spend nothing.
	for path, form := range map[string]url.Values{"/reset": {"login": {userName}}, "/reset/confirm": {"token": {"x"}, "password": {"p"}},
		"/signup": {"name": {"N"}, "email": {"n@example.net"}, "username": {"nnn"}, "password": {"correct staple battery horse"}}} {
		if p := e.browser().post(path, form); p.Status != http.StatusForbidden {
			t.Fatalf("%s without a CSRF token: %d", path, p.Status)
		}
	}

	// Guessing: ten wrong links per network are forgiven, then it waits.
	b := e.browser()
	var last page
	for i := range 12 {
		last = b.get("/reset/confirm?token=guess" + strings.Repeat("x", i))
		if last.Status == http.StatusTooManyRequests {
			break
		}
	}
	if last.Status != http.StatusTooManyRequests || last.Header.Get("Retry-After") == "" {
		t.Fatalf("link guessing is not throttled: %d", last.Status)
	}
	if p := b.get("/verify?token=guess"); p.Status != http.StatusTooManyRequests {
		t.Fatalf("the throttle does not cover verification links: %d", p.Status)
	}
}

func mailBodies(relay *mailtest.Server) []string {
	var out []string
	for _, m := range relay.Messages() {
		out = append(out, m.Body())
	}
	return out
}

// TestSignupByInvitation: with signup: invite, /signup needs an
// invitation link an operator made through the admin API; the link admits
// one sign-up, and the login page offers none.
func TestSignupByInvitation(t *testing.T) {
	e, _ := startMailing(t, func(c *config.Config) { c.Signup = "invite" })
	if p := e.browser().get("/signup"); p.Status != http.StatusForbidden {
		t.Fatalf("sign-up without an invitation: %d", p.Status)
	}
	if p := e.browser().get("/login"); strings.Contains(p.Body, `id="signup-link"`) {
		t.Fatal("the login page offers sign-up to anyone in invite mode")
	}
	var inv struct {
		URL string `json:"url"`
	}
	if status, body := e.adminCall("POST", "/admin/invitations", adminToken, map[string]string{"note": "for Rania"}, &inv); status != 201 || inv.URL == "" {
		t.Fatalf("make invitation: %d %s", status, body)
	}
	u, _ := url.Parse(inv.URL)
	path := u.Path + "?" + u.RawQuery
	form := func(name string) url.Values {
		return url.Values{"name": {name}, "email": {name + "@example.net"}, "username": {name}, "password": {"correct staple battery horse"},
			"invite": {u.Query().Get("invite")}}
	}
	if p := e.browser().signup(path, form("rania")); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-up by invitation: %d %s", p.Status, p.Body)
	}
	if p := e.browser().get(path); p.Status != http.StatusForbidden {
		t.Fatalf("an invitation used twice: %d", p.Status)
	}
	b := e.browser()
	p := b.get("/signup?invite=guess")
	if p.Status != http.StatusForbidden {
		t.Fatalf("a made-up invitation: %d", p.Status)
	}
}

// TestResetMailFlood: asking again and again for an account's reset
// mails the address three times, then no more for a while; the person
// asking sees the same answer each time.
func TestResetMailFlood(t *testing.T) {
	e, relay := startMailing(t)
	var first string
	for i := range 6 {
		p := askReset(e, userName)
		if i == 0 {
			first = p.Body
		}
		if p.Status != 200 || p.Body != first {
			t.Fatalf("request %d answered %d, unlike the first", i+1, p.Status)
		}
	}
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return mailsTo(relay, "amal@example.com") >= 3 })
	time.Sleep(time.Second)
	if n := mailsTo(relay, "amal@example.com"); n != 3 {
		t.Fatalf("%d reset mails for six requests, want 3", n)
	}
}
