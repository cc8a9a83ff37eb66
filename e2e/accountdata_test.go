package e2e

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/mail/mailtest"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// consentOf is what the test user granted client, as stored.
func (e *env) consentOf(client string) storage.Consent {
	e.t.Helper()
	c, err := e.Store.GetConsent(context.Background(), e.UserID, client)
	if err != nil {
		e.t.Fatalf("consent of %s: %v", client, err)
	}
	return *c
}

// TestConnectedAppsLastUsed: Connected apps says when access was granted
// and when the app last used it, in English and Arabic. A refresh, an
// introspection by the API and a userinfo call each count as a use; uses
// within a minute of the recorded one write nothing.
func TestConnectedAppsLastUsed(t *testing.T) {
	e := start(t)
	b := e.browser()
	r := e.notesRequest("openid profile offline_access")
	tok := e.redeem(b.authorize(r, "openid", "profile", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	granted := e.consentOf("notes").GrantedAt
	if p := b.get("/account"); !strings.Contains(p.Body, "Access granted on "+ui.Date("en", granted)) || !strings.Contains(p.Body, "not used yet") {
		t.Fatalf("Connected apps before any use: %s", p.Body)
	}

	tok = e.refreshOr(t, tok)
	used := e.consentOf("notes").LastUsedAt
	if now := e.Clock.Now(); used.IsZero() || now.Sub(used) > 2*time.Second || used.Sub(now) > time.Second {
		t.Fatalf("last used after a refresh: %v, now %v", used, now)
	}
	e.Clock.Advance(30 * time.Second)
	tok = e.refreshOr(t, tok) // within the minute: no write
	if got := e.consentOf("notes").LastUsedAt; !got.Equal(used) {
		t.Fatalf("a second refresh within a minute wrote: %v, then %v", used, got)
	}
	if p := b.get("/account"); !strings.Contains(p.Body, "last used just now") {
		t.Fatalf("Connected apps after a refresh: %s", p.Body)
	}

	// The API introspecting the app's access token is a use of the app's.
	e.Clock.Advance(61 * time.Second)
	if in := e.introspect(tok.AccessToken, "api", "api-secret-for-tests-0123456789"); in["active"] != true {
		t.Fatalf("introspection by the API: %v", in)
	}
	next := e.consentOf("notes").LastUsedAt
	if !next.After(used) {
		t.Fatalf("introspection did not record a use: %v, then %v", used, next)
	}
	e.Clock.Advance(61 * time.Second)
	if status, _, _ := e.userinfo(tok.AccessToken); status != 200 {
		t.Fatalf("userinfo: %d", status)
	}
	if got := e.consentOf("notes").LastUsedAt; !got.After(next) {
		t.Fatalf("userinfo did not record a use: %v, then %v", next, got)
	}
	// Another client probing the app's tokens learns nothing and records
	// no use.
	e.Clock.Advance(61 * time.Second)
	before := e.consentOf("notes").LastUsedAt
	for _, probe := range []string{tok.AccessToken, tok.RefreshToken} {
		if in := e.introspect(probe, "robot", e.RobotSecret); in["active"] != false {
			t.Fatalf("robot introspected notes' token: %v", in)
		}
	}
	if got := e.consentOf("notes").LastUsedAt; !got.Equal(before) {
		t.Fatalf("another client's introspection recorded a use: %v, then %v", before, got)
	}
	// A client's own token (client_credentials) is nobody's use.
	robot := e.token(url.Values{"grant_type": {"client_credentials"}}, "robot", e.RobotSecret)
	if in := e.introspect(robot.AccessToken, "robot", e.RobotSecret); in["active"] != true {
		t.Fatalf("robot token: %v", in)
	}

	e.Clock.Advance(5 * time.Minute)
	if p := b.get("/account"); !strings.Contains(p.Body, "last used 6 minutes ago") {
		t.Fatalf("Connected apps six minutes after the last use: %s", p.Body)
	}
	if p := b.get("/account?lang=ar"); !strings.Contains(p.Body, "مُنح الإذن في "+ui.Date("ar", granted)) || !strings.Contains(p.Body, "آخر استخدام منذ 6 دقائق") {
		t.Fatalf("Connected apps in Arabic: %s", p.Body)
	}
}

// failingTouch is a store whose record of uses always fails.
type failingTouch struct{ storage.Storage }

func (failingTouch) TouchConsent(context.Context, string, string, time.Time, time.Duration) (bool, error) {
	return false, storage.ErrUnavailable
}

// TestLastUsedFailureHarmless: a use that cannot be recorded fails
// nothing: the refresh, the introspection and userinfo answer as always,
// and the failure is logged.
func TestLastUsedFailureHarmless(t *testing.T) {
	store := sqliteStore(t)
	e := startOn(t, failingTouch{store})
	r := e.notesRequest("openid offline_access")
	tok := e.redeem(e.browser().authorize(r, "openid", "offline_access").Get("code"), r)
	tok = e.refreshOr(t, tok)
	if in := e.introspect(tok.RefreshToken, "notes", e.NotesSecret); in["active"] != true {
		t.Fatalf("introspection: %v", in)
	}
	if status, _, _ := e.userinfo(tok.AccessToken); status != 200 {
		t.Fatalf("userinfo: %d", status)
	}
	if !strings.Contains(e.Logs.String(), "could not record an app's use") {
		t.Fatal("the failed write was not logged")
	}
}

// TestDownloadMyData: the Security page's "Download my data" is a POST
// with the CSRF token, answered with a JSON attachment nobody caches. It
// holds the account, its sign-in methods, apps, sessions and events, and
// no secret: no password hash, TOTP secret, recovery code hash, passkey
// public key, token or session id.
func TestDownloadMyData(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	at := e.Clock.Now()
	sealed := "SEALED-TOTP-SECRET-0123456789"
	credential := `{"publicKey":"PUBLIC-KEY-MATERIAL-0123456789"}`
	mustNil := func(err error, what string) {
		t.Helper()
		if err != nil {
			t.Fatalf("%s: %v", what, err)
		}
	}
	// Signed in and the app allowed first: the factors are added behind
	// the sign-in's back, which only the export needs.
	b := e.browser()
	r := e.notesRequest("openid email offline_access")
	q := b.authorize(r, "openid", "email", "offline_access")
	tok := e.redeem(q.Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	mustNil(e.Store.SaveTOTP(ctx, storage.TOTP{UserID: e.UserID, SecretSealed: sealed, CreatedAt: at}), "totp")
	mustNil(e.Store.ConfirmTOTP(ctx, e.UserID, sealed, at), "confirm totp")
	recovery := []string{storage.Hash("recovery-one"), storage.Hash("recovery-two")}
	mustNil(e.Store.ReplaceRecoveryCodes(ctx, e.UserID, recovery, at), "recovery")
	mustNil(e.Store.CreatePasskey(ctx, storage.Passkey{ID: "cred-id-1", UserID: e.UserID, Name: "Laptop", Credential: credential, CreatedAt: at}), "passkey")
	sec := b.get("/account/security")
	if !strings.Contains(sec.Body, `action="/account/security/data"`) {
		t.Fatalf("no download form on the security page: %s", sec.Body)
	}

	if p := b.post("/account/security/data", url.Values{}); p.Status != http.StatusForbidden || strings.Contains(p.Body, e.UserID) {
		t.Fatalf("a download without the CSRF token: %d %s", p.Status, p.Body)
	}
	if p := b.get("/account/security/data"); p.Status != http.StatusMethodNotAllowed {
		t.Fatalf("a GET download: %d", p.Status)
	}
	if p := e.browser().post("/account/security/data", url.Values{"csrf_token": {csrfOf(t, sec)}}); p.Status == 200 {
		t.Fatalf("a download without a session: %d", p.Status)
	}
	p := b.post("/account/security/data", url.Values{"csrf_token": {csrfOf(t, sec)}})
	if p.Status != 200 || !strings.HasPrefix(p.Header.Get("Content-Type"), "application/json") || p.Header.Get("Cache-Control") != "no-store" ||
		!strings.HasPrefix(p.Header.Get("Content-Disposition"), "attachment") {
		t.Fatalf("download: %d %v", p.Status, p.Header)
	}
	var x struct {
		Account struct {
			ID, Username, Email string
			EmailVerified       bool `json:"email_verified"`
		}
		Factors struct {
			Password bool
			TOTP     *struct {
				ConfirmedAt *time.Time `json:"confirmed_at"`
			} `json:"authenticator_app"`
			RecoveryCodesLeft int `json:"recovery_codes_left"`
			Passkeys          []struct {
				ID   string `json:"credential_id"`
				Name string
			}
		} `json:"sign_in_methods"`
		Apps []struct {
			ClientID  string     `json:"client_id"`
			Scopes    []string   `json:"scopes"`
			GrantedAt time.Time  `json:"granted_at"`
			LastUsed  *time.Time `json:"last_used_at"`
		} `json:"connected_apps"`
		Sessions []struct{ Current bool }
		Events   []struct{ Type string } `json:"security_events"`
	}
	if err := json.Unmarshal([]byte(p.Body), &x); err != nil {
		t.Fatalf("download is not JSON: %v %s", err, p.Body)
	}
	if x.Account.ID != e.UserID || x.Account.Username != userName || x.Account.Email != "amal@example.com" || !x.Account.EmailVerified ||
		!x.Factors.Password || x.Factors.TOTP == nil || x.Factors.TOTP.ConfirmedAt == nil || x.Factors.RecoveryCodesLeft != 2 ||
		len(x.Factors.Passkeys) != 1 || x.Factors.Passkeys[0].ID != "cred-id-1" || x.Factors.Passkeys[0].Name != "Laptop" ||
		len(x.Apps) != 1 || x.Apps[0].ClientID != "notes" || strings.Join(x.Apps[0].Scopes, " ") != "openid email offline_access" || x.Apps[0].GrantedAt.IsZero() ||
		len(x.Sessions) != 1 || !x.Sessions[0].Current || len(x.Events) == 0 {
		t.Fatalf("download contents: %+v\n%s", x, p.Body)
	}
	u, _ := e.Store.GetUser(ctx, e.UserID)
	cookie := ""
	for _, c := range b.Jar.Cookies(mustURL(t, e.URL)) {
		if c.Name == "bawwab_session" {
			cookie = c.Value
		}
	}
	secrets := map[string]string{"password hash": u.PasswordHash, "argon2": "argon2", "TOTP secret": sealed, "passkey key": "PUBLIC-KEY-MATERIAL",
		"recovery hash 1": recovery[0], "recovery hash 2": recovery[1], "access token": tok.AccessToken, "refresh token": tok.RefreshToken,
		"ID token": tok.IDToken, "refresh hash": storage.Hash(tok.RefreshToken), "session id": cookie, "session hash": storage.Hash(cookie),
		"CSRF token": csrfOf(t, sec), "client secret": e.NotesSecret}
	for what, s := range secrets {
		if s == "" {
			t.Fatalf("%s: nothing to look for, the check proves nothing", what)
		}
		if strings.Contains(p.Body, s) {
			t.Errorf("the download carries the %s", what)
		}
	}
	if ev, _ := e.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: e.UserID, Type: "data_exported"}); len(ev) != 1 {
		t.Fatalf("%d exports audited, want 1", len(ev))
	}
}

func mustURL(t *testing.T, s string) *url.URL {
	t.Helper()
	u, err := url.Parse(s)
	if err != nil {
		t.Fatal(err)
	}
	return u
}

// deleteAccount posts the deletion form with password pw.
func (b *browser) deleteAccount(pw string) page {
	b.e.t.Helper()
	p := b.get("/account/security/delete")
	if p.Status != 200 {
		b.e.t.Fatalf("delete page: %d %s", p.Status, p.Body)
	}
	return b.post("/account/security/delete", url.Values{"csrf_token": {csrfOf(b.e.t, p)}, "current": {pw}})
}

// TestDeleteAccount: deleting the account asks for the password again
// (a wrong one is refused and throttled like sign-in, a missing CSRF token
// too); then every token of the account dies, the apps get a back-channel
// logout, nobody can sign in as it, an audit event under its internal id
// stays, and the username and address are free for a new account, which
// gets a new internal id and so new subjects.
func TestDeleteAccount(t *testing.T) {
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
	b := e.browser()
	b.authorize(authRequest{ClientID: "feed", RedirectURI: "https://feed.example/cb", Scope: "openid", State: "s", Verifier: strings.Repeat("f", 43)})

	sec := b.get("/account/security")
	if !strings.Contains(sec.Body, `href="/account/security/delete"`) {
		t.Fatalf("no way to delete the account on the security page: %s", sec.Body)
	}
	if p := b.post("/account/security/delete", url.Values{"current": {userPassword}}); p.Status != http.StatusForbidden {
		t.Fatalf("a deletion without the CSRF token: %d", p.Status)
	}
	for i := range 5 {
		if p := b.deleteAccount("wrong password"); p.Status != http.StatusUnauthorized || !strings.Contains(p.Body, `id="error"`) {
			t.Fatalf("wrong password %d: %d %s", i, p.Status, p.Body)
		}
	}
	if p := b.deleteAccount(userPassword); p.Status != http.StatusTooManyRequests || p.Header.Get("Retry-After") == "" {
		t.Fatalf("after five wrong passwords, even the right one must wait: %d", p.Status)
	}
	if _, err := e.Store.GetUser(ctx, e.UserID); err != nil {
		t.Fatalf("the account went without its password: %v", err)
	}
	e.Clock.Advance(2 * time.Second)

	r := e.notesRequest("openid offline_access")
	tok := e.redeem(b.authorize(r, "openid", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	pending := e.notesRequest("openid")
	code := b.authorize(pending).Get("code") // issued before the deletion, redeemed after
	p := b.deleteAccount(userPassword)
	if p.Status != 200 || !strings.Contains(p.Body, "Your account was deleted") {
		t.Fatalf("delete: %d %s", p.Status, p.Body)
	}
	if _, err := e.Store.GetUser(ctx, e.UserID); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the user is still there: %v", err)
	}
	wantTokenError(t, e.refresh(tok.RefreshToken), 400, "invalid_grant")
	wantTokenError(t, e.redeem(code, pending), 400, "invalid_grant")
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("the access token is active: %v", in)
	}
	if in := e.introspect(tok.RefreshToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("the refresh token is active: %v", in)
	}
	if status, _, _ := e.userinfo(tok.AccessToken); status != http.StatusUnauthorized {
		t.Fatalf("userinfo: %d", status)
	}
	select {
	case raw := <-got:
		var c backchannel.Claims
		if err := e.Server.Keys.Verify(ctx, raw, jwks.TypeLogout, &c); err != nil || c.Subject != e.UserID || !c.Audience.Contains("feed") {
			t.Fatalf("logout token: %+v %v", c, err)
		}
	case <-time.After(5 * time.Second):
		t.Fatal("no back-channel logout after the deletion")
	}
	if p := b.get("/account"); p.Status != http.StatusFound || !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("the session outlived the account: %d %s", p.Status, p.Location)
	}
	loginURL := e.browser().get(e.notesRequest("openid").url()).Location
	if p := e.browser().login(loginURL, userName, userPassword); p.Status != http.StatusUnauthorized {
		t.Fatalf("the deleted account signs in: %d", p.Status)
	}
	notice := relay.Wait(t, 10*time.Second, func(m mailtest.Received) bool {
		return mailtest.To("amal@example.com")(m) && strings.Contains(m.Body(), "account was deleted")
	})
	if strings.Contains(notice.Body(), userPassword) {
		t.Fatal("the notice carries the password")
	}
	if ev, _ := e.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: e.UserID, Type: "account_deleted"}); len(ev) != 1 || strings.Contains(ev[0].Detail, userName) {
		t.Fatalf("account deletion audit: %+v", ev)
	}

	// The username and address are free again: a new person, a new id.
	p = e.browser().signup("/signup", url.Values{"name": {"Amal Again"}, "email": {"amal@example.com"}, "username": {userName}, "password": {"a long new passphrase"}})
	if p.Status != http.StatusSeeOther {
		t.Fatalf("sign-up with the deleted account's name and address: %d %s", p.Status, p.Body)
	}
	u, err := e.Store.GetUserByUsername(ctx, userName)
	if err != nil || u.ID == e.UserID {
		t.Fatalf("the new account: %+v %v", u, err)
	}
}

// TestDeleteAccountWithoutPassword: an account without a password (a
// passkey only) is deleted only from a sign-in made in the last five
// minutes.
func TestDeleteAccountWithoutPassword(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	id := "user-without-password"
	if err := e.Store.CreateUser(ctx, storage.User{ID: id, Username: "nopass", Name: "No Pass", CreatedAt: e.Clock.Now()}); err != nil {
		t.Fatal(err)
	}
	raw := "session-id-of-a-passkey-sign-in-0123456789"
	now := e.Clock.Now()
	if err := e.Store.CreateSession(ctx, storage.Session{IDHash: storage.Hash(raw), UserID: id, AMR: []string{"hwk"}, AuthTime: now, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	b.Jar.SetCookies(mustURL(t, e.URL), []*http.Cookie{{Name: "bawwab_session", Value: raw, Path: "/"}})
	e.Clock.Advance(6 * time.Minute)
	p := b.get("/account/security/delete")
	if p.Status != 200 || !strings.Contains(p.Body, `id="delete-fresh"`) || strings.Contains(p.Body, `id="delete-confirm"`) {
		t.Fatalf("delete page of a stale sign-in: %d %s", p.Status, p.Body)
	}
	if p := b.post("/account/security/delete", url.Values{"csrf_token": {csrfOf(t, p)}}); p.Status != http.StatusForbidden {
		t.Fatalf("deletion from a stale sign-in: %d", p.Status)
	}
	e.Clock.Advance(-6 * time.Minute)
	if p := b.deleteAccount(""); p.Status != 200 {
		t.Fatalf("deletion from a fresh sign-in: %d %s", p.Status, p.Body)
	}
	if _, err := e.Store.GetUser(ctx, id); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("the user is still there: %v", err)
	}
}

// TestDeleteAccountDuringRefresh: refreshes racing the deletion of the
// account leave no live token: whatever a refresh returned, before or
// after the deletion committed, is inactive and refreshes no more.
func TestDeleteAccountDuringRefresh(t *testing.T) {
	e := start(t)
	b := e.browser()
	var chains []tokenResult
	for range 3 {
		r := e.notesRequest("openid offline_access")
		tok := e.redeem(b.authorize(r, "openid", "offline_access").Get("code"), r)
		wantStatus(t, tok.Status, 200, "redeem", tok.Description)
		chains = append(chains, tok)
	}
	refresh := func(rt string) (tokenResult, bool) {
		resp, err := http.PostForm(e.URL+"/token", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {rt},
			"client_id": {"notes"}, "client_secret": {e.NotesSecret}})
		if err != nil {
			return tokenResult{}, false
		}
		defer resp.Body.Close()
		var r tokenResult
		if json.NewDecoder(resp.Body).Decode(&r) != nil || resp.StatusCode != 200 {
			return r, false
		}
		return r, true
	}
	issued := make(chan tokenResult, 1000)
	done := make(chan struct{})
	for _, tok := range chains {
		go func() {
			defer func() { done <- struct{}{} }()
			for {
				next, ok := refresh(tok.RefreshToken)
				if !ok {
					return
				}
				issued <- next
				tok = next
			}
		}()
	}
	time.Sleep(50 * time.Millisecond)
	if p := b.deleteAccount(userPassword); p.Status != 200 {
		t.Fatalf("delete: %d %s", p.Status, p.Body)
	}
	for range chains {
		select {
		case <-done:
		case <-time.After(10 * time.Second):
			t.Fatal("a refresh chain went on after the deletion")
		}
	}
	close(issued)
	n := 0
	for tok := range issued {
		n++
		if in := e.introspect(tok.RefreshToken, "notes", e.NotesSecret); in["active"] != false {
			t.Fatalf("a refresh token issued during the deletion is active: %v", in)
		}
		if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
			t.Fatalf("an access token issued during the deletion is active: %v", in)
		}
	}
	for _, tok := range chains {
		if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
			t.Fatalf("a first access token is active: %v", in)
		}
	}
	if n == 0 {
		t.Fatal("no refresh ran before the deletion: the race was not tried")
	}
	t.Logf("%d refreshes raced the deletion", n)
}

// deletingStore deletes a user the moment its account was read, once
// armed: the deletion commits between a token request's read of the user
// and its writes, the narrowest window of a race with "Delete my account".
type deletingStore struct {
	storage.Storage
	armed atomic.Bool
	now   func() time.Time
}

func (s *deletingStore) GetUser(ctx context.Context, id string) (*storage.User, error) {
	u, err := s.Storage.GetUser(ctx, id)
	if err == nil {
		err = s.deleteOnce(ctx, id)
	}
	return u, err
}

// ConsumeAuthCode reads the code's user with the code.
func (s *deletingStore) ConsumeAuthCode(ctx context.Context, hash string, at time.Time) (*storage.AuthCode, *storage.User, error) {
	c, u, err := s.Storage.ConsumeAuthCode(ctx, hash, at)
	if err == nil && u != nil {
		err = s.deleteOnce(ctx, u.ID)
	}
	return c, u, err
}

// GetRefreshTokenChain reads the token's user with the token.
func (s *deletingStore) GetRefreshTokenChain(ctx context.Context, hash string) (*storage.RefreshTokenChain, error) {
	c, err := s.Storage.GetRefreshTokenChain(ctx, hash)
	if err == nil && c.User != nil {
		err = s.deleteOnce(ctx, c.User.ID)
	}
	return c, err
}

// deleteOnce deletes the user whose account was just read, once armed.
func (s *deletingStore) deleteOnce(ctx context.Context, id string) error {
	if s.armed.CompareAndSwap(true, false) {
		return s.Storage.DeleteUser(ctx, id, s.now())
	}
	return nil
}

// TestDeleteAccountRacingTokens: a code redemption, a device poll and a
// refresh that read the user just before its deletion committed answer
// with tokens, but dead ones: the grant a redemption or poll creates was
// created revoked by the deletion, and a refresh rotates within a revoked
// grant.
func TestDeleteAccountRacingTokens(t *testing.T) {
	for _, flow := range []string{"code", "device", "refresh"} {
		t.Run(flow, func(t *testing.T) {
			sq := sqliteStore(t)
			c := &clock{}
			store := &deletingStore{Storage: sq, now: c.Now}
			e := startNode(t, store, listen(t), "", c)
			b := e.browser()
			var tok tokenResult
			switch flow {
			case "code", "refresh":
				r := e.notesRequest("openid offline_access")
				code := b.authorize(r, "openid", "offline_access").Get("code")
				if flow == "refresh" {
					tok = e.redeem(code, r)
					store.armed.Store(true)
					tok = e.refresh(tok.RefreshToken)
				} else {
					store.armed.Store(true)
					tok = e.redeem(code, r)
				}
			case "device":
				_, d := e.deviceAuthorize("tv", "openid offline_access")
				b.enterCode(d.UserCode, true, "offline_access")
				store.armed.Store(true)
				tok = e.devicePoll(d.DeviceCode)
			}
			if store.armed.Load() {
				t.Fatal("the user was never read: the race was not run")
			}
			if _, err := sq.GetUser(context.Background(), e.UserID); !errors.Is(err, storage.ErrNotFound) {
				t.Fatalf("the user was not deleted: %v", err)
			}
			if tok.Status != 200 {
				return // refused outright: nothing issued
			}
			form, client, secret := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}, "notes", e.NotesSecret
			if flow == "device" { // a public client
				form.Set("client_id", "tv")
				client, secret = "", ""
			}
			if in := e.introspect(tok.AccessToken, "api", "api-secret-for-tests-0123456789"); in["active"] != false {
				t.Fatalf("an access token issued racing the deletion is active: %v", in)
			}
			if tok.RefreshToken != "" {
				status, _, body := e.post("/token", form, client, secret)
				if status != 400 || !strings.Contains(string(body), "invalid_grant") {
					t.Fatalf("a refresh token issued racing the deletion: %d %s", status, body)
				}
			}
		})
	}
}

// TestLastUsedMultiNode: nodes sharing a PostgreSQL store record a use of
// one app at most once a minute between them: the store's conditional
// UPDATE refuses a second node's write within the minute.
func TestLastUsedMultiNode(t *testing.T) {
	nodes := startCluster(t, 2)
	n1, n2 := nodes[0], nodes[1]
	r := n1.notesRequest("openid offline_access")
	tok := n1.redeem(n1.browser().authorize(r, "openid", "offline_access").Get("code"), r)
	tok = n1.refreshOr(t, tok)
	first := n1.consentOf("notes").LastUsedAt
	if first.IsZero() {
		t.Fatal("no use recorded")
	}
	n1.Clock.Advance(30 * time.Second)
	tok = n2.refreshOr(t, tok)
	if got := n2.consentOf("notes").LastUsedAt; !got.Equal(first) {
		t.Fatalf("node 2 wrote within the minute: %v, then %v", first, got)
	}
	n1.Clock.Advance(61 * time.Second)
	n2.refreshOr(t, tok)
	if got := n2.consentOf("notes").LastUsedAt; got.Sub(first) < 90*time.Second {
		t.Fatalf("node 2 did not record a use after the minute: %v, then %v", first, got)
	}
}
