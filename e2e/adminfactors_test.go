package e2e

import (
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/postgres"
	"github.com/bawwab/bawwab/internal/testenv"
)

// adminUser calls an admin route of the user id with the admin token.
func (e *env) adminUser(method, id, rest string, body any) (int, map[string]any) {
	e.t.Helper()
	var out map[string]any
	status, raw := jsonCall(e.t, method, e.AdminURL+"/admin/users/"+url.PathEscape(id)+rest, adminToken, body)
	_ = json.Unmarshal(raw, &out)
	return status, out
}

// TestAdminDisableUser: a disabled user cannot sign in, by password or
// with a second factor, its sessions end, its refresh tokens, codes and
// access tokens are refused; a user's own token opens no admin route.
// Enabled, it signs in again, and its old tokens stay dead.
func TestAdminDisableUser(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid offline_access")
	tok := e.redeem(b.authorize(r, "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	r2 := e.notesRequest("openid offline_access")
	code2 := b.authorize(r2, "offline_access").Get("code") // not redeemed yet
	secret, _ := b.enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	r3 := e.notesRequest("openid")
	half, step := e.secondStep(r3) // the password passed, the code not yet

	// The user's own access token is no admin token.
	if status, raw := jsonCall(t, "POST", e.AdminURL+"/admin/users/"+e.UserID+"/disable", tok.AccessToken, nil); status != 401 {
		t.Fatalf("disable with a user's access token: %d %s", status, raw)
	}
	// The flag alone, before any revocation (the moment between the two
	// in a disabling), already stops every token when it is used.
	if err := e.Store.SetUserDisabled(t.Context(), e.UserID, true); err != nil {
		t.Fatal(err)
	}
	if m := e.introspect(tok.AccessToken, "notes", e.NotesSecret); m["active"] != false {
		t.Fatalf("introspection with the flag set: %v", m)
	}
	if m := e.introspect(tok.RefreshToken, "notes", e.NotesSecret); m["active"] != false {
		t.Fatalf("refresh token introspection with the flag set: %v", m)
	}
	if status, _, _ := e.userinfo(tok.AccessToken); status != 401 {
		t.Fatalf("userinfo with the flag set: %d", status)
	}
	status, u := e.adminUser("POST", e.UserID, "/disable", map[string]string{"reason": "stolen laptop"})
	if status != 200 || u["disabled"] != true {
		t.Fatalf("disable: %d %v", status, u)
	}

	wantTokenError(t, e.refresh(tok.RefreshToken), 400, "invalid_grant")
	wantTokenError(t, e.redeem(code2, r2), 400, "invalid_grant")
	if m := e.introspect(tok.AccessToken, "notes", e.NotesSecret); m["active"] != false {
		t.Fatalf("introspection of a disabled user's access token: %v", m)
	}
	if status, _, _ := e.userinfo(tok.AccessToken); status != 401 {
		t.Fatalf("userinfo of a disabled user: %d", status)
	}
	if p := b.get("/account"); p.Status != http.StatusFound {
		t.Fatalf("the session outlived disabling: %d", p.Status)
	}
	code, _ := totp.GenerateCode(secret, e.Clock.Now())
	if p := half.answer(step, r3, "totp", code); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "This account is disabled") {
		t.Fatalf("second factor of a disabled user: %d %s", p.Status, p.Body)
	}
	nb := e.browser()
	if p := nb.login(nb.get(r3.url()).Location, userName, userPassword); p.Status != http.StatusForbidden || !strings.Contains(p.Body, "This account is disabled") {
		t.Fatalf("password of a disabled user: %d %s", p.Status, p.Body)
	}
	// A wrong password says nothing of the account.
	if p := nb.login(nb.get(r3.url()).Location, userName, "not the password"); p.Status != http.StatusUnauthorized || strings.Contains(p.Body, "disabled") {
		t.Fatalf("wrong password of a disabled user: %d %s", p.Status, p.Body)
	}

	if status, u := e.adminUser("POST", e.UserID, "/enable", nil); status != 200 || u["disabled"] != false {
		t.Fatalf("enable: %d %v", status, u)
	}
	wantTokenError(t, e.refresh(tok.RefreshToken), 400, "invalid_grant")
	b4, p := e.secondStep(r3)
	code, _ = totp.GenerateCode(secret, e.Clock.Now().Add(30*time.Second))
	if p = b4.answer(p, r3, "totp", code); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-in after enabling: %d %s", p.Status, p.Body)
	}
	evs, _ := e.Store.ListAuditEvents(t.Context(), storage.AuditFilter{UserID: e.UserID})
	var types []string
	for _, ev := range evs {
		types = append(types, ev.Type+" "+ev.Detail)
	}
	all := strings.Join(types, "\n")
	if !strings.Contains(all, "user_disabled by admin API; operator=unnamed; reason=stolen laptop") || !strings.Contains(all, "user_enabled by admin API") {
		t.Fatalf("audit:\n%s", all)
	}
}

// rawToken posts a token request and never stops the test: it runs in
// goroutines of a race.
func rawToken(e *env, form url.Values) tokenResult {
	req, _ := http.NewRequest("POST", e.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("notes", url.QueryEscape(e.NotesSecret))
	var r tokenResult
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		return r
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	_ = json.Unmarshal(raw, &r)
	r.Status = resp.StatusCode
	return r
}

// TestAdminDisableRace: refreshes and code redemptions in flight while
// the user is disabled: once the disabling answered and they ended, no
// token any of them got is live.
func TestAdminDisableRace(t *testing.T) {
	e := start(t)
	b := e.browser()
	var chains []string
	type pending struct {
		code string
		r    authRequest
	}
	var codes []pending
	for range 4 {
		r := e.notesRequest("openid offline_access")
		tok := e.redeem(b.authorize(r, "offline_access").Get("code"), r)
		wantStatus(t, tok.Status, 200, "redeem", tok.Description)
		chains = append(chains, tok.RefreshToken)
		r2 := e.notesRequest("openid offline_access")
		codes = append(codes, pending{b.authorize(r2, "offline_access").Get("code"), r2})
	}
	var mu sync.Mutex
	var issued []tokenResult
	keep := func(r tokenResult) {
		mu.Lock()
		defer mu.Unlock()
		issued = append(issued, r)
	}
	go_ := make(chan struct{})
	var wg sync.WaitGroup
	for _, rt := range chains {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-go_
			for range 6 {
				res := rawToken(e, url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt}})
				if res.Status != 200 {
					return
				}
				keep(res)
				rt = res.RefreshToken
			}
		}()
	}
	for _, c := range codes {
		wg.Add(1)
		go func() {
			defer wg.Done()
			<-go_
			res := rawToken(e, url.Values{"grant_type": {"authorization_code"}, "code": {c.code}, "redirect_uri": {c.r.RedirectURI},
				"code_verifier": {c.r.Verifier}})
			if res.Status == 200 {
				keep(res)
			}
		}()
	}
	close(go_)
	status, _ := e.adminUser("POST", e.UserID, "/disable", nil)
	wg.Wait()
	if status != 200 {
		t.Fatalf("disable: %d", status)
	}
	for _, res := range issued {
		if m := e.introspect(res.AccessToken, "notes", e.NotesSecret); m["active"] != false {
			t.Fatalf("an access token issued in the race is live: %v", m)
		}
		if res.RefreshToken != "" {
			if got := e.refresh(res.RefreshToken); got.Status == 200 {
				t.Fatal("a refresh token issued in the race still refreshes")
			}
		}
	}
	for _, rt := range chains {
		if m := e.introspect(rt, "notes", e.NotesSecret); m["active"] != false {
			t.Fatalf("a refresh token is live: %v", m)
		}
	}
	// Enabled again, the user gets none of them back.
	if status, _ := e.adminUser("POST", e.UserID, "/enable", nil); status != 200 {
		t.Fatalf("enable: %d", status)
	}
	for _, res := range issued {
		if m := e.introspect(res.AccessToken, "notes", e.NotesSecret); m["active"] != false {
			t.Fatalf("an access token issued in the race is live after enabling: %v", m)
		}
	}
	t.Logf("%d tokens were issued during the race", len(issued))
}

// TestAdminResetMFA: an operator removes a person's second factors: the
// next sign-in asks the password alone, the sessions ended, and the
// person is mailed a notice through a real SMTP relay.
func TestAdminResetMFA(t *testing.T) {
	e, relay := startMailing(t)
	b := e.signIn(userPassword)
	b.enrolTOTP()
	e.Clock.Advance(90 * time.Second)
	status, f := e.adminUser("GET", e.UserID, "/factors", nil)
	if status != 200 || f["totp"] == nil || f["recovery_codes_left"] != 10.0 {
		t.Fatalf("factors: %d %v", status, f)
	}
	if status, body := e.adminUser("DELETE", e.UserID, "/factors", nil); status != 204 {
		t.Fatalf("reset: %d %v", status, body)
	}
	relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "an administrator removed your second factors")
	})
	if p := b.get("/account"); p.Status != http.StatusFound {
		t.Fatalf("a session outlived the reset: %d", p.Status)
	}
	r := e.notesRequest("openid")
	nb := e.browser()
	if p := nb.login(nb.get(r.url()).Location, userName, userPassword); p.Status != http.StatusSeeOther || !strings.HasPrefix(p.Location, "/consent") {
		t.Fatalf("sign-in after the reset: %d %s", p.Status, p.Body)
	}
	if status, f = e.adminUser("GET", e.UserID, "/factors", nil); f["totp"] != nil || f["recovery_codes_left"] != 0.0 {
		t.Fatalf("factors after the reset: %d %v", status, f)
	}
}

// TestAdminResendVerification: an unconfirmed address gets a working
// link; the operator cannot flood it (the address's mail budget), and a
// confirmed address gets none.
func TestAdminResendVerification(t *testing.T) {
	e, relay := startMailing(t)
	var u struct {
		ID string `json:"id"`
	}
	if status, raw := e.adminCall("POST", "/admin/users", adminToken, map[string]any{"username": "rania", "password": "a long and unusual phrase",
		"email": "rania@example.net"}, &u); status != 201 {
		t.Fatalf("create: %d %s", status, raw)
	}
	for i := range 3 {
		if status, body := e.adminUser("POST", u.ID, "/verification", nil); status != 202 {
			t.Fatalf("resend %d: %d %v", i, status, body)
		}
	}
	status, body := e.adminUser("POST", u.ID, "/verification", nil)
	if status != 429 || body["error_description"] == "" {
		t.Fatalf("resend beyond the budget: %d %v", status, body)
	}
	relay.Wait(t, 10*time.Second, func(mailtest.Received) bool { return mailsTo(relay, "rania@example.net") >= 3 })
	time.Sleep(300 * time.Millisecond)
	if n := mailsTo(relay, "rania@example.net"); n != 3 {
		t.Fatalf("%d mails to the address", n)
	}
	var last mailtest.Received
	for _, m := range relay.Messages() {
		if mailtest.To("rania@example.net")(m) {
			last = m
		}
	}
	link, _ := url.Parse(linkIn(t, last, "/verify"))
	if p := e.browser().get(link.RequestURI()); p.Status != 200 {
		t.Fatalf("verify link: %d %s", p.Status, p.Body)
	}
	if got, _ := e.Store.GetUser(t.Context(), u.ID); !got.EmailVerified {
		t.Fatal("the link did not confirm the address")
	}
	if status, body := e.adminUser("POST", u.ID, "/verification", nil); status != 409 {
		t.Fatalf("resend to a confirmed address: %d %v", status, body)
	}
}

// TestAdminUnlock: an account throttled by wrong passwords refuses even
// the right one; unlocked by an operator, it signs in at once.
func TestAdminUnlock(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid")
	b := e.browser()
	login := b.get(r.url()).Location
	var p page
	for range 6 {
		p = b.login(login, userName, "wrong password, again")
	}
	if p = b.login(login, userName, userPassword); p.Status != http.StatusTooManyRequests {
		t.Fatalf("right password while throttled: %d", p.Status)
	}
	if status, body := e.adminUser("POST", e.UserID, "/unlock", nil); status != 204 {
		t.Fatalf("unlock: %d %v", status, body)
	}
	if p = b.login(login, userName, userPassword); p.Status != http.StatusSeeOther {
		t.Fatalf("sign-in after unlock: %d %s", p.Status, p.Body)
	}
}

// TestBackupFactorsToPostgres: a user with an authenticator app and a
// passkey, exported from SQLite and imported into PostgreSQL whose store
// holds the same factor-seal key, signs in there with password and code;
// the passkey's credential record and the disabled flag arrive as they
// were.
func TestBackupFactorsToPostgres(t *testing.T) {
	ctx := context.Background()
	src := start(t)
	id := addUser(t, src, "rania", "a long and unusual phrase")
	b := src.browser()
	if p := b.login("/login", "rania", "a long and unusual phrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("rania's sign-in: %d", p.Status)
	}
	secret, _ := b.enrolTOTP()
	pk := storage.Passkey{ID: "cred-rania-1", UserID: id, Name: "YubiKey", Credential: `{"ID":"Y3JlZA","PublicKey":"pQECAyYgASFY"}`,
		SignCount: 7, CreatedAt: time.Now().Truncate(time.Second), LastUsedAt: time.Now().Truncate(time.Second)}
	if err := src.Store.CreatePasskey(ctx, pk); err != nil {
		t.Fatal(err)
	}
	badr := addUser(t, src, "badr", "another good passphrase")
	if status, _ := src.adminUser("POST", badr, "/disable", nil); status != 200 {
		t.Fatalf("disable badr: %d", status)
	}
	status, raw := jsonCall(t, "GET", src.AdminURL+"/admin/export", adminToken, nil)
	if status != 200 {
		t.Fatalf("export: %d %s", status, raw)
	}

	dsn, schema := testenv.PostgresSchema(t)
	store, err := postgres.Open(ctx, dsn, postgres.Options{SearchPath: schema})
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { store.Close() })
	key, err := src.Store.Secret(ctx, "factor-seal", nil)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := store.Secret(ctx, "factor-seal", key); err != nil {
		t.Fatal(err)
	}
	dst := startOn(t, store)
	var backup any
	_ = json.Unmarshal(raw, &backup)
	var imported map[string]any
	if status, out := dst.adminCall("POST", "/admin/import", adminToken, backup, &imported); status != 200 || imported["users_added"] != 2.0 || imported["totp_skipped"] != 0.0 {
		t.Fatalf("import: %d %s", status, out)
	}
	got, err := store.ListPasskeys(ctx, id)
	if err != nil || len(got) != 1 || got[0].ID != pk.ID || got[0].Credential != pk.Credential || got[0].SignCount != pk.SignCount ||
		got[0].Name != pk.Name || !got[0].CreatedAt.Equal(pk.CreatedAt) || !got[0].LastUsedAt.Equal(pk.LastUsedAt) {
		t.Fatalf("passkey after import: %+v %v, want %+v", got, err, pk)
	}
	if u, _ := store.GetUser(ctx, badr); u == nil || !u.Disabled {
		t.Fatal("badr is not disabled after the import")
	}
	dst.Clock.Advance(90 * time.Second)
	r := dst.notesRequest("openid")
	nb := dst.browser()
	p := nb.login(nb.get(r.url()).Location, "rania", "a long and unusual phrase")
	if p.Status != http.StatusOK || !strings.Contains(p.Body, `name="step" value="totp"`) {
		t.Fatalf("no code asked after the import: %d %s", p.Status, p.Body)
	}
	code, _ := totp.GenerateCode(secret, dst.Clock.Now())
	if p = nb.answer(p, r, "totp", code); p.Status != http.StatusSeeOther {
		t.Fatalf("TOTP sign-in after the import: %d %s", p.Status, p.Body)
	}
}

// TestCLIUserFactors runs the operator's user commands of the bawwab
// binary against a running server (--server) and a store directly: each
// did what it says, names the operator in the audit log, and explains a
// mistake with a non-zero exit.
func TestCLIUserFactors(t *testing.T) {
	e := start(t)
	run := newCLI(t, "BAWWAB_ADMIN_TOKEN="+adminToken, "BAWWAB_OPERATOR=noor").run
	remote := func(args ...string) []string { return append(args, "--server", e.AdminURL) }
	ctx := t.Context()
	if err := e.Store.CreatePasskey(ctx, storage.Passkey{ID: "cred-1", UserID: e.UserID, Name: "Phone", Credential: "{}", CreatedAt: time.Now()}); err != nil {
		t.Fatal(err)
	}
	if out := run(true, remote("user", "factors", userName)...); !strings.Contains(out, "cred-1") || !strings.Contains(out, "0 left") || !strings.Contains(out, "FACTOR") {
		t.Fatalf("user factors:\n%s", out)
	}
	if out := run(true, remote("user", "factors", e.UserID, "-o", "json")...); !strings.Contains(out, `"recovery_codes_left": 0`) {
		t.Fatalf("user factors -o json:\n%s", out)
	}
	run(true, remote("user", "disable", userName, "--reason", "on leave")...)
	if u, _ := e.Store.GetUser(ctx, e.UserID); !u.Disabled {
		t.Fatal("user disable did not disable")
	}
	evs, _ := e.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: e.UserID, Type: "user_disabled"})
	if len(evs) != 1 || evs[0].Detail != "by admin API; operator=noor; reason=on leave" || evs[0].IP == "" {
		t.Fatalf("audit of user disable: %+v", evs)
	}
	run(true, remote("user", "enable", userName)...)
	if u, _ := e.Store.GetUser(ctx, e.UserID); u.Disabled {
		t.Fatal("user enable did not enable")
	}
	run(true, remote("user", "unlock", userName)...)
	if out := run(false, remote("user", "reset-mfa", userName, "--passkey", "nope")...); !strings.Contains(out, "no passkey with this id") {
		t.Fatalf("reset-mfa of an unknown passkey:\n%s", out)
	}
	run(true, remote("user", "reset-mfa", userName, "--passkey", "cred-1")...)
	if pks, _ := e.Store.ListPasskeys(ctx, e.UserID); len(pks) != 0 {
		t.Fatalf("passkey left: %v", pks)
	}
	run(true, remote("user", "reset-mfa", userName)...)
	if out := run(false, remote("user", "resend-verification", userName)...); !strings.Contains(out, "confirmed already") {
		t.Fatalf("resend-verification of a confirmed address:\n%s", out)
	}
	if out := run(false, remote("user", "disable", "nobody")...); !strings.Contains(out, "no user has the id or username") {
		t.Fatalf("disable of an unknown user:\n%s", out)
	}
	if out := run(false, remote("user", "disable", userName, "--reasn", "x")...); !strings.Contains(out, "did you mean --reason?") {
		t.Fatalf("mistyped flag:\n%s", out)
	}
	if out := run(false, "user", "disabel", userName); !strings.Contains(out, "Did you mean this?\n\tdisable") {
		t.Fatalf("mistyped subcommand:\n%s", out)
	}

	// Local: on a store of its own.
	dir := t.TempDir()
	run(true, "user", "add", "--username", "rania", "--password", "a long and unusual phrase", "--email", "rania@example.net", "--data-dir", dir)
	run(true, "user", "disable", "rania", "--data-dir", dir)
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !strings.Contains(out, `"disabled": true`) {
		t.Fatalf("local user disable:\n%s", out)
	}
	if out := run(false, "user", "resend-verification", "rania", "--data-dir", dir); !strings.Contains(out, "--server") {
		t.Fatalf("local resend-verification:\n%s", out)
	}
}

// TestAdminDisableDevice: a device code the user approved before being
// disabled gives the device no token.
func TestAdminDisableDevice(t *testing.T) {
	e := start(t)
	status, d := e.deviceAuthorize("tv", "openid offline_access")
	wantStatus(t, status, 200, "device_authorization", d)
	if done := e.browser().enterCode(d.UserCode, true, "offline_access"); done.Status != 200 {
		t.Fatalf("approve: %d %s", done.Status, done.Body)
	}
	if status, _ := e.adminUser("POST", e.UserID, "/disable", nil); status != 200 {
		t.Fatalf("disable: %d", status)
	}
	e.Clock.Advance(6 * time.Second)
	wantTokenError(t, e.devicePoll(d.DeviceCode), 400, "invalid_grant")
}
