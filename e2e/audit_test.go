package e2e

import (
	"context"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestAuditLog plays a user's story with an attack in it and reads the
// audit log back per user and per client: every login, failure, consent,
// denial, token, refresh, revocation and attack is there, attributed to an
// address, and no secret appears in the logs or the store.
func TestAuditLog(t *testing.T) {
	e := start(t)
	b := e.browser()

	// A failed login, a login, consent, a code redeemed, a refresh.
	r := e.notesRequest("openid email offline_access")
	loginURL := b.get(r.url()).Location
	b.login(loginURL, userName, "wrong password")
	q := b.authorize(r, "email", "offline_access")
	tok := e.redeem(q.Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)
	next := e.refresh(tok.RefreshToken)
	wantStatus(t, next.Status, 200, "refresh", next.Description)
	wantStatus(t, e.refresh(next.RefreshToken).Status, 200, "second refresh", "")
	// Attacks: the old refresh token reused once the client moved on (a
	// retry within the grace period would be answered), the code replayed.
	e.refresh(tok.RefreshToken)
	e.redeem(q.Get("code"), r)
	// A denial, then the user revokes the app, then logs out.
	r2 := e.notesRequest("openid payment")
	p := b.get(r2.url())
	b.consent(p.Location, false)
	acct := b.get("/account")
	b.post("/account/revoke", url.Values{"csrf_token": {csrfOf(t, acct)}, "client_id": {"notes"}})
	b.post("/logout", url.Values{"csrf_token": {csrfOf(t, b.get("/account?x=1"))}})
	// A form without its CSRF token.
	if p := b.post("/account/revoke", url.Values{"client_id": {"notes"}}); p.Status != http.StatusForbidden {
		t.Fatalf("revoke without CSRF: %d", p.Status)
	}
	// client_credentials: logged, not stored (no user).
	e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)

	events, err := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{UserID: e.UserID})
	if err != nil {
		t.Fatal(err)
	}
	var types []string
	for _, ev := range events {
		types = append(types, ev.Type)
		if ev.IP != "127.0.0.1" {
			t.Errorf("event %s attributed to %q", ev.Type, ev.IP)
		}
	}
	slices.Reverse(types)
	want := []string{"login_failed", "login", "consent", "token_issued", "token_refreshed", "token_refreshed", "refresh_reuse", "code_replay",
		"consent_denied", "app_revoked", "logout"}
	if strings.Join(types, " ") != strings.Join(want, " ") {
		t.Fatalf("audit log of the user:\n got %v\nwant %v", types, want)
	}
	perClient, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{ClientID: "notes", Type: "code_replay"})
	if len(perClient) != 1 || !strings.Contains(perClient[0].Detail, "grant revoked") {
		t.Fatalf("code replay per client: %+v", perClient)
	}
	csrf, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{Type: "csrf_rejected"})
	if len(csrf) != 1 {
		t.Fatalf("CSRF attack events: %+v", csrf)
	}
	if cc, _ := e.Store.ListAuditEvents(context.Background(), storage.AuditFilter{ClientID: "robot"}); len(cc) != 0 {
		t.Fatalf("client_credentials issuance stored: %+v", cc)
	}
	logs := e.Logs.String()
	if !strings.Contains(logs, `"event":"token_issued"`) || !strings.Contains(logs, `"client_id":"robot"`) {
		t.Fatal("client_credentials issuance not logged")
	}
	for name, secret := range map[string]string{"password": userPassword, "wrong password": "wrong password", "client secret": e.NotesSecret,
		"robot secret": e.RobotSecret, "code": q.Get("code"), "refresh token": tok.RefreshToken, "access token": tok.AccessToken} {
		if strings.Contains(logs, secret) {
			t.Errorf("the %s appears in the logs", name)
		}
		for _, ev := range events {
			if strings.Contains(ev.Detail, secret) {
				t.Errorf("the %s appears in audit event %s", name, ev.Type)
			}
		}
	}
}
