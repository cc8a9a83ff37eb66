package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// fakeNotifier records the notices it is asked to send.
type fakeNotifier struct {
	mu     sync.Mutex
	events []string
}

func (n *fakeNotifier) SecurityEvent(_ context.Context, userID, event string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	n.events = append(n.events, userID+" "+event)
}

// fakeVerifier sends up to budget mails.
type fakeVerifier struct{ sent, budget int }

func (v *fakeVerifier) ResendVerification(context.Context, storage.User) (bool, error) {
	if v.sent >= v.budget {
		return false, nil
	}
	v.sent++
	return true, nil
}

// newFactorsAPI is newAPI with an audit log, a notifier, a verifier of
// two mails, a sealer, and users: amal with every factor and an
// unconfirmed address, badr with a confirmed one.
func newFactorsAPI(t *testing.T) (*API, *fakeNotifier, *fakeVerifier) {
	t.Helper()
	ctx := context.Background()
	a, _ := newAPI(t)
	n, v := &fakeNotifier{}, &fakeVerifier{budget: 2}
	sealer, err := factors.StoreSealer(ctx, a.Store)
	if err != nil {
		t.Fatal(err)
	}
	a.Audit = &audit.Log{Store: a.Store, Log: slog.New(slog.DiscardHandler), Now: time.Now, Retention: time.Hour}
	a.Notify, a.Verify = n, v
	s := a.Store
	must := func(err error) {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
	}
	now := time.Now()
	must(s.CreateUser(ctx, storage.User{ID: "u-amal", Username: "amal", PasswordHash: "$argon2id$x", Email: "amal@example.com", CreatedAt: now}))
	must(s.CreateUser(ctx, storage.User{ID: "u-badr", Username: "badr", PasswordHash: "$argon2id$x", Email: "badr@example.com", EmailVerified: true, CreatedAt: now}))
	must(s.SaveTOTP(ctx, storage.TOTP{UserID: "u-amal", SecretSealed: sealer.Seal("u-amal", "JBSWY3DPEHPK3PXP"), CreatedAt: now}))
	t0, _ := s.GetTOTP(ctx, "u-amal")
	must(s.ConfirmTOTP(ctx, "u-amal", t0.SecretSealed, now))
	must(s.ReplaceRecoveryCodes(ctx, "u-amal", []string{storage.Hash("code-1"), storage.Hash("code-2")}, now))
	for _, id := range []string{"pk-1", "pk-2"} {
		must(s.CreatePasskey(ctx, storage.Passkey{ID: id, UserID: "u-amal", Name: "key " + id, Credential: `{"id":"` + id + `"}`, CreatedAt: now}))
	}
	must(s.CreatePasskey(ctx, storage.Passkey{ID: "pk-badr", UserID: "u-badr", Name: "badr's", Credential: `{}`, CreatedAt: now}))
	must(s.CreateSession(ctx, storage.Session{IDHash: "s-amal", UserID: "u-amal", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}))
	return a, n, v
}

// TestUserAdminErrors: each new route refuses what it must, with the
// status and the error body of every admin answer.
func TestUserAdminErrors(t *testing.T) {
	a, _, _ := newFactorsAPI(t)
	h := a.Handler()
	for _, tt := range []struct {
		name, method, path, token, body string
		wantStatus                      int
		wantErr                         string
	}{
		{"no token", "GET", "/admin/users/u-amal/factors", "", "", 401, "unauthorized"},
		{"wrong token", "POST", "/admin/users/u-amal/disable", "user-access-token", "", 401, "unauthorized"},
		{"wrong token unlock", "POST", "/admin/users/u-amal/unlock", "guess", "", 401, "unauthorized"},
		{"unknown user factors", "GET", "/admin/users/nobody/factors", adminToken, "", 404, "not_found"},
		{"unknown user reset", "DELETE", "/admin/users/nobody/factors", adminToken, "", 404, "not_found"},
		{"unknown user disable", "POST", "/admin/users/nobody/disable", adminToken, "", 404, "not_found"},
		{"unknown user enable", "POST", "/admin/users/nobody/enable", adminToken, "", 404, "not_found"},
		{"unknown user verification", "POST", "/admin/users/nobody/verification", adminToken, "", 404, "not_found"},
		{"unknown user unlock", "POST", "/admin/users/nobody/unlock", adminToken, "", 404, "not_found"},
		{"id not UTF-8", "GET", "/admin/users/%ff%00/factors", adminToken, "", 404, "not_found"},
		{"id of NUL", "POST", "/admin/users/%00/disable", adminToken, "", 404, "not_found"},
		{"another user's passkey", "DELETE", "/admin/users/u-amal/factors/passkeys/pk-badr", adminToken, "", 404, "not_found"},
		{"unknown passkey", "DELETE", "/admin/users/u-amal/factors/passkeys/nope", adminToken, "", 404, "not_found"},
		{"disable bad JSON", "POST", "/admin/users/u-amal/disable", adminToken, `{"reason":`, 400, "invalid_request"},
		{"disable unknown field", "POST", "/admin/users/u-amal/disable", adminToken, `{"why":"x"}`, 400, "invalid_request"},
		{"disable not an object", "POST", "/admin/users/u-amal/disable", adminToken, `["x"]`, 400, "invalid_request"},
		{"verification confirmed", "POST", "/admin/users/u-badr/verification", adminToken, "", 409, "conflict"},
		{"other method", "PUT", "/admin/users/u-amal/unlock", adminToken, "", 404, "not_found"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			status, body, raw := call(t, h, tt.method, tt.path, tt.token, tt.body)
			if status != tt.wantStatus || tt.wantErr != "" && (body["error"] != tt.wantErr || body["error_description"] == "") {
				t.Fatalf("got %d %s, want %d %s", status, raw, tt.wantStatus, tt.wantErr)
			}
		})
	}
	u, _ := a.Store.GetUser(context.Background(), "u-amal")
	if u.Disabled {
		t.Fatal("a refused disable disabled the user")
	}
	if pk, err := a.Store.GetPasskey(context.Background(), "pk-badr"); err != nil || pk.UserID != "u-badr" {
		t.Fatalf("another user's passkey: %v %v", pk, err)
	}
}

// TestListFactors: what a user has, never a secret.
func TestListFactors(t *testing.T) {
	a, _, _ := newFactorsAPI(t)
	status, _, raw := call(t, a.Handler(), "GET", "/admin/users/u-amal/factors", adminToken, "")
	var f Factors
	if err := json.Unmarshal([]byte(raw), &f); status != 200 || err != nil {
		t.Fatalf("%d %s", status, raw)
	}
	if f.TOTP == nil || f.TOTP.ConfirmedAt.IsZero() || f.RecoveryCodes != 2 || len(f.Passkeys) != 2 || f.Passkeys[0].ID != "pk-1" || f.Passkeys[0].Name != "key pk-1" {
		t.Fatalf("factors %+v", f)
	}
	for _, secret := range []string{"sealed", "secret", "credential", "hash", storage.Hash("code-1")} {
		if strings.Contains(raw, secret) {
			t.Fatalf("the factors show %q: %s", secret, raw)
		}
	}
	_, _, raw = call(t, a.Handler(), "GET", "/admin/users/u-badr/factors", adminToken, "")
	if !strings.Contains(raw, `"recovery_codes_left":0`) || strings.Contains(raw, "totp") {
		t.Fatalf("badr's factors %s", raw)
	}
}

// TestResetFactors: one passkey, then everything; the sessions end, the
// user is told, the operator is in the audit log, others keep theirs.
func TestResetFactors(t *testing.T) {
	ctx := context.Background()
	a, n, _ := newFactorsAPI(t)
	h := a.Handler()
	r := httptest.NewRequest("DELETE", "/admin/users/u-amal/factors/passkeys/pk-1", nil)
	r.Header.Set("Authorization", "Bearer "+adminToken)
	r.Header.Set(OperatorHeader, "noor")
	rec := httptest.NewRecorder()
	h.ServeHTTP(rec, r)
	if rec.Code != 204 {
		t.Fatalf("remove one passkey: %d %s", rec.Code, rec.Body)
	}
	if pks, _ := a.Store.ListPasskeys(ctx, "u-amal"); len(pks) != 1 || pks[0].ID != "pk-2" {
		t.Fatalf("passkeys after removing one: %v", pks)
	}
	if status, _, raw := call(t, h, "DELETE", "/admin/users/u-amal/factors", adminToken, ""); status != 204 {
		t.Fatalf("reset: %d %s", status, raw)
	}
	if _, err := a.Store.GetTOTP(ctx, "u-amal"); err == nil {
		t.Fatal("TOTP stayed")
	}
	if n, _ := a.Store.CountRecoveryCodes(ctx, "u-amal"); n != 0 {
		t.Fatalf("%d recovery codes stayed", n)
	}
	if pks, _ := a.Store.ListPasskeys(ctx, "u-amal"); len(pks) != 0 {
		t.Fatalf("passkeys stayed: %v", pks)
	}
	if ss, _ := a.Store.ListUserSessions(ctx, "u-amal"); len(ss) != 0 {
		t.Fatalf("sessions stayed: %v", ss)
	}
	if pk, err := a.Store.GetPasskey(ctx, "pk-badr"); err != nil || pk == nil {
		t.Fatalf("another user's passkey went: %v", err)
	}
	if strings.Join(n.events, ",") != "u-amal passkey_removed,u-amal mfa_reset" {
		t.Fatalf("notices %v", n.events)
	}
	evs, _ := a.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: "u-amal"})
	var got []string
	for _, e := range evs {
		got = append(got, e.Type+": "+e.Detail)
	}
	want := []string{"mfa_reset: by admin API; operator=unnamed; removed every second factor",
		"passkey_removed: by admin API; operator=noor; removed passkey=key pk-1"}
	if strings.Join(got, "|") != strings.Join(want, "|") {
		t.Fatalf("audit:\n%s\nwant\n%s", strings.Join(got, "\n"), strings.Join(want, "\n"))
	}
}

// TestDisableEnable: disabling sets the flag, ends the sessions and
// revokes the grants; enabling clears the flag only.
func TestDisableEnable(t *testing.T) {
	ctx := context.Background()
	a, _, _ := newFactorsAPI(t)
	h := a.Handler()
	now := time.Now()
	if err := a.Store.CreateGrant(ctx, storage.Grant{ID: "g1", UserID: "u-amal", ClientID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	for _, body := range []string{"", `{"reason":"left the company"}`} {
		status, obj, raw := call(t, h, "POST", "/admin/users/u-amal/disable", adminToken, body)
		if status != 200 || obj["disabled"] != true {
			t.Fatalf("disable %q: %d %s", body, status, raw)
		}
	}
	if g, _ := a.Store.GetGrant(ctx, "g1"); g.RevokedAt.IsZero() {
		t.Fatal("the grant stayed live")
	}
	if ss, _ := a.Store.ListUserSessions(ctx, "u-amal"); len(ss) != 0 {
		t.Fatalf("sessions stayed: %v", ss)
	}
	evs, _ := a.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: "u-amal", Type: audit.UserDisabled, Limit: 1})
	if len(evs) != 1 || !strings.Contains(evs[0].Detail, "reason=left the company") {
		t.Fatalf("audit %v", evs)
	}
	// A grant a request racing the disabling made after the revocation.
	if err := a.Store.CreateGrant(ctx, storage.Grant{ID: "g2", UserID: "u-amal", ClientID: "c", CreatedAt: now, ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	status, obj, raw := call(t, h, "POST", "/admin/users/u-amal/enable", adminToken, "")
	if status != 200 || obj["disabled"] != false {
		t.Fatalf("enable: %d %s", status, raw)
	}
	for _, id := range []string{"g1", "g2"} {
		if g, _ := a.Store.GetGrant(ctx, id); g.RevokedAt.IsZero() {
			t.Fatalf("grant %s is live after enabling", id)
		}
	}
	if u, _ := a.Store.GetUser(ctx, "u-badr"); u.Disabled {
		t.Fatal("another user disabled")
	}
}

// TestResendVerification: queued while the budget lasts, then 429; an
// admin API without mail answers 503.
func TestResendVerification(t *testing.T) {
	a, _, v := newFactorsAPI(t)
	h := a.Handler()
	for i, want := range []int{202, 202, 429, 429} {
		status, body, raw := call(t, h, "POST", "/admin/users/u-amal/verification", adminToken, "")
		if status != want || want == 429 && body["error"] != "too_many_requests" {
			t.Fatalf("resend %d: %d %s, want %d", i, status, raw, want)
		}
	}
	if v.sent != 2 {
		t.Fatalf("sent %d mails", v.sent)
	}
	a.Verify = nil
	if status, body, _ := call(t, a.Handler(), "POST", "/admin/users/u-amal/verification", adminToken, ""); status != 503 || body["error"] != "temporarily_unavailable" {
		t.Fatalf("without mail: %d %v", status, body)
	}
}

// TestUnlock: the account's password and second-factor throttles are
// lifted; a network's is not.
func TestUnlock(t *testing.T) {
	ctx := context.Background()
	a, _, _ := newFactorsAPI(t)
	b := &ratelimit.Backoff{Counter: a.Store, Free: 1, Base: time.Hour, Max: time.Hour, Now: time.Now}
	keys := []string{signin.UserKey("amal"), factors.GuardKey("u-amal"), "login-ip:192.0.2.0"}
	for _, k := range keys {
		for range 2 {
			if at, _, err := b.Reserve(ctx, k); err == nil && at != nil {
				_, _ = at.Fail(ctx)
			}
		}
		if _, wait, _ := b.Reserve(ctx, k); wait == 0 {
			t.Fatalf("%s not throttled", k)
		}
	}
	if status, _, raw := call(t, a.Handler(), "POST", "/admin/users/u-amal/unlock", adminToken, ""); status != 204 {
		t.Fatalf("unlock: %d %s", status, raw)
	}
	for i, k := range keys {
		at, wait, err := b.Reserve(ctx, k)
		if err != nil || (wait == 0) != (i < 2) {
			t.Fatalf("%s after unlock: wait %v err %v", k, wait, err)
		}
		if at != nil {
			_ = at.Release(ctx)
		}
	}
}

// TestBackupFactors: export carries the factors and the disabled flag;
// an import into a store with the same factor-seal key restores them,
// into one with another key leaves the TOTP out and says so.
func TestBackupFactors(t *testing.T) {
	ctx := context.Background()
	src, _, _ := newFactorsAPI(t)
	if err := src.Store.SetUserDisabled(ctx, "u-badr", true); err != nil {
		t.Fatal(err)
	}
	status, _, raw := call(t, src.Handler(), "GET", "/admin/export", adminToken, "")
	if status != 200 {
		t.Fatalf("export %d %s", status, raw)
	}
	key, err := src.Store.Secret(ctx, "factor-seal", nil)
	if err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		sameKey  bool
		wantTOTP bool
	}{{"same key", true, true}, {"other key", false, false}} {
		t.Run(tt.name, func(t *testing.T) {
			dst := newEmptyAPI(t, tt.sameKey, key)
			status, body, out := call(t, dst.Handler(), "POST", "/admin/import", adminToken, raw)
			if status != 200 || body["users_added"] != 2.0 || (body["totp_skipped"] == 0.0) != tt.wantTOTP {
				t.Fatalf("import %d %s", status, out)
			}
			for _, id := range []string{"u-amal", "u-badr"} {
				sameFactors(t, src.Store, dst.Store, id, tt.wantTOTP)
			}
			if u, _ := dst.Store.GetUser(ctx, "u-badr"); !u.Disabled {
				t.Fatal("the disabled flag was lost")
			}
			if tt.wantTOTP {
				tp, _ := dst.Store.GetTOTP(ctx, "u-amal")
				sealer, _ := factors.StoreSealer(ctx, dst.Store)
				if secret, err := sealer.Open("u-amal", tp.SecretSealed); err != nil || secret != "JBSWY3DPEHPK3PXP" {
					t.Fatalf("TOTP secret after import: %q %v", secret, err)
				}
			}
			// Again: the users exist, nothing is added twice.
			if status, body, out := call(t, dst.Handler(), "POST", "/admin/import", adminToken, raw); status != 200 || body["users_skipped"] != 2.0 || body["passkeys_skipped"] != 0.0 {
				t.Fatalf("import again %d %s", status, out)
			}
		})
	}
}

// newEmptyAPI is an API on an empty store whose factor-seal key is key
// when sameKey, or a key of its own.
func newEmptyAPI(t *testing.T, sameKey bool, key []byte) *API {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	if sameKey {
		if _, err := s.Secret(ctx, "factor-seal", key); err != nil {
			t.Fatal(err)
		}
	}
	return &API{Store: s, Log: slog.New(slog.DiscardHandler), Now: time.Now, Token: adminToken}
}

// sameFactors compares a user's factors in two stores.
func sameFactors(t *testing.T, a, b storage.Storage, id string, totp bool) {
	t.Helper()
	ctx := context.Background()
	ta, _ := a.GetTOTP(ctx, id)
	tb, errb := b.GetTOTP(ctx, id)
	if totp && ta != nil && (errb != nil || tb.SecretSealed != ta.SecretSealed || !tb.ConfirmedAt.Equal(ta.ConfirmedAt)) {
		t.Fatalf("%s: TOTP %+v, want %+v", id, tb, ta)
	}
	if !totp && errb == nil {
		t.Fatalf("%s: a TOTP under another key was imported", id)
	}
	ra, _ := a.ListRecoveryCodes(ctx, id)
	rb, _ := b.ListRecoveryCodes(ctx, id)
	if strings.Join(ra, ",") != strings.Join(rb, ",") {
		t.Fatalf("%s: recovery codes %v, want %v", id, rb, ra)
	}
	pa, _ := a.ListPasskeys(ctx, id)
	pb, _ := b.ListPasskeys(ctx, id)
	if len(pa) != len(pb) {
		t.Fatalf("%s: passkeys %v, want %v", id, pb, pa)
	}
	for i := range pa {
		x, y := pa[i], pb[i]
		if x.ID != y.ID || x.Name != y.Name || x.Credential != y.Credential || x.SignCount != y.SignCount || !x.CreatedAt.Equal(y.CreatedAt) {
			t.Fatalf("%s: passkey %+v, want %+v", id, y, x)
		}
	}
}

// TestLastAdminRefused: demoting, disabling or deleting the last enabled
// admin is 409 last_admin and changes nothing; with NoAdminOK (the
// command line's --force on the store) each is made.
func TestLastAdminRefused(t *testing.T) {
	a, _, _ := newFactorsAPI(t)
	ctx := context.Background()
	if err := a.Store.SetUserAdmin(ctx, "u-badr", true); err != nil {
		t.Fatal(err)
	}
	routes := []struct{ method, path string }{
		{"DELETE", "/admin/users/u-badr/admin"}, {"POST", "/admin/users/u-badr/disable"}, {"DELETE", "/admin/users/u-badr"},
	}
	for _, rt := range routes {
		status, body, raw := call(t, a.Handler(), rt.method, rt.path, adminToken, "")
		if status != http.StatusConflict || body["error"] != "last_admin" || body["error_description"] == "" {
			t.Fatalf("%s %s: %d %s", rt.method, rt.path, status, raw)
		}
	}
	if u, err := a.Store.GetUser(ctx, "u-badr"); err != nil || !u.Admin || u.Disabled {
		t.Fatalf("the last admin after the refusals: %+v %v", u, err)
	}
	a.NoAdminOK = true
	for _, rt := range routes {
		if status, _, raw := call(t, a.Handler(), rt.method, rt.path, adminToken, ""); status >= 300 {
			t.Fatalf("%s %s with NoAdminOK: %d %s", rt.method, rt.path, status, raw)
		}
	}
	if _, err := a.Store.GetUser(ctx, "u-badr"); !errors.Is(err, storage.ErrNotFound) {
		t.Fatalf("deleted with NoAdminOK: %v", err)
	}
}

// TestRevokeAdminOfNonAdmin: taking the role of someone who has none
// changes nothing and signs nobody out.
func TestRevokeAdminOfNonAdmin(t *testing.T) {
	a, _, _ := newFactorsAPI(t)
	ctx := context.Background()
	now := time.Now()
	if err := a.Store.CreateSession(ctx, storage.Session{IDHash: storage.Hash("s-badr"), UserID: "u-badr", AuthTime: now, CreatedAt: now,
		ExpiresAt: now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	if status, body, raw := call(t, a.Handler(), "DELETE", "/admin/users/u-badr/admin", adminToken, ""); status != http.StatusOK || body["admin"] == true {
		t.Fatalf("revoke the role of a non-admin: %d %s", status, raw)
	}
	if _, err := a.Store.GetSession(ctx, storage.Hash("s-badr")); err != nil {
		t.Fatalf("a non-admin was signed out: %v", err)
	}
}
