package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestBackupRegistrationTokens: an export carries the initial access
// tokens as stored; a restore keeps an issued token registering clients
// up to what it has left, a revoked one revoked, and adds nothing twice.
// A backup of version 3 (without tokens) still imports.
func TestBackupRegistrationTokens(t *testing.T) {
	ctx := context.Background()
	src, h := newAPI(t)
	issue := func(body string) (id, token string) {
		st, obj, raw := call(t, h, "POST", "/admin/registration/tokens", adminToken, body)
		if st != 201 {
			t.Fatalf("issue: %d %s", st, raw)
		}
		return obj["id"].(string), obj["token"].(string)
	}
	_, twice := issue(`{"label":"partner","max_uses":2,"expires_in":86400}`)
	revokedID, revoked := issue(`{"label":"gone"}`)
	_, unlimited := issue(`{}`)
	if _, err := src.Store.UseInitialAccessToken(ctx, storage.Hash(twice), time.Now()); err != nil {
		t.Fatal(err)
	}
	if st, _, raw := call(t, h, "DELETE", "/admin/registration/tokens/"+revokedID, adminToken, ""); st != 204 {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	st, _, raw := call(t, h, "GET", "/admin/export", adminToken, "")
	if st != 200 || strings.Contains(raw, twice) || strings.Contains(raw, revoked) || strings.Contains(raw, unlimited) {
		t.Fatalf("export (must hold hashes only): %d %s", st, raw)
	}
	var b Backup
	if err := json.Unmarshal([]byte(raw), &b); err != nil || b.Version != 4 || len(b.RegistrationTokens) != 3 {
		t.Fatalf("export: %v %+v", err, b)
	}

	dst := newEmptyAPI(t, false, nil)
	st, body, out := call(t, dst.Handler(), "POST", "/admin/import", adminToken, raw)
	if st != 200 || body["registration_tokens_added"] != 3.0 || body["registration_tokens_skipped"] != 0.0 {
		t.Fatalf("import: %d %s", st, out)
	}
	want, _ := src.Store.ListInitialAccessTokens(ctx)
	got, _ := dst.Store.ListInitialAccessTokens(ctx)
	if len(got) != len(want) {
		t.Fatalf("restored %d tokens, want %d", len(got), len(want))
	}
	for i := range want {
		w, g := want[i], got[i]
		if g.ID != w.ID || g.Hash != w.Hash || g.Label != w.Label || g.CreatedBy != w.CreatedBy || g.MaxUses != w.MaxUses || g.Uses != w.Uses ||
			!g.CreatedAt.Equal(w.CreatedAt) || !g.ExpiresAt.Equal(w.ExpiresAt) || !g.RevokedAt.Equal(w.RevokedAt) {
			t.Errorf("restored token %+v, want %+v", g, w)
		}
	}
	// The partner token has one use left, no more; the revoked one none.
	if _, err := dst.Store.UseInitialAccessToken(ctx, storage.Hash(twice), time.Now()); err != nil {
		t.Fatalf("last use of the restored token: %v", err)
	}
	for name, tok := range map[string]string{"used up": twice, "revoked": revoked} {
		if _, err := dst.Store.UseInitialAccessToken(ctx, storage.Hash(tok), time.Now()); !errors.Is(err, storage.ErrAlreadyUsed) {
			t.Errorf("%s token after restore: %v, want ErrAlreadyUsed", name, err)
		}
	}
	if _, err := dst.Store.UseInitialAccessToken(ctx, storage.Hash(unlimited), time.Now()); err != nil {
		t.Fatalf("unlimited token after restore: %v", err)
	}
	// Again: every token exists, none is reset to its backed-up uses.
	if st, body, out := call(t, dst.Handler(), "POST", "/admin/import", adminToken, raw); st != 200 || body["registration_tokens_skipped"] != 3.0 ||
		body["registration_tokens_added"] != 0.0 {
		t.Fatalf("import again: %d %s", st, out)
	}
	if tok, _ := dst.Store.GetInitialAccessToken(ctx, storage.Hash(twice)); tok.Uses != 2 {
		t.Fatalf("a second import reset the uses to %d", tok.Uses)
	}

	// A version 3 backup has no tokens and still imports; 5 is unknown.
	old := newEmptyAPI(t, false, nil)
	v3 := strings.Replace(raw, `"version":4`, `"version":3`, 1)
	v3 = v3[:strings.Index(v3, `,"registration_tokens"`)] + "}"
	if st, body, out := call(t, old.Handler(), "POST", "/admin/import", adminToken, v3); st != 200 || body["registration_tokens_added"] != 0.0 {
		t.Fatalf("import of version 3: %d %s", st, out)
	}
	v5 := strings.Replace(raw, `"version":4`, `"version":5`, 1)
	if st, _, out := call(t, old.Handler(), "POST", "/admin/import", adminToken, v5); st != 400 || !strings.Contains(out, "versions 1 to 4") {
		t.Fatalf("import of version 5: %d %s", st, out)
	}
}

// TestBackupRegistrationTokenCheck pins what an imported initial access
// token must meet; one bad token refuses the whole backup before anything
// is written.
func TestBackupRegistrationTokenCheck(t *testing.T) {
	good := BackupRegistrationToken{ID: "t1", Hash: storage.Hash("secret"), Label: "ci", CreatedBy: "ops", CreatedAt: time.Now(), MaxUses: 3, Uses: 1}
	with := func(f func(*BackupRegistrationToken)) BackupRegistrationToken {
		tok := good
		f(&tok)
		return tok
	}
	for _, tt := range []struct {
		name    string
		tok     BackupRegistrationToken
		wantErr string
	}{
		{"good", good, ""},
		{"revoked and expired", with(func(t *BackupRegistrationToken) { t.RevokedAt, t.ExpiresAt = time.Now(), time.Now() }), ""},
		{"no id", with(func(t *BackupRegistrationToken) { t.ID = "" }), "id must be text"},
		{"NUL in id", with(func(t *BackupRegistrationToken) { t.ID = "a\x00" }), "id must be text"},
		{"no hash", with(func(t *BackupRegistrationToken) { t.Hash = "" }), "hash must be a SHA-256 hash"},
		{"the token itself", with(func(t *BackupRegistrationToken) { t.Hash = "secret" }), "hash must be a SHA-256 hash"},
		{"uppercase hash", with(func(t *BackupRegistrationToken) { t.Hash = strings.ToUpper(storage.Hash("secret")) }), "hash must be a SHA-256 hash"},
		{"label too long", with(func(t *BackupRegistrationToken) { t.Label = strings.Repeat("l", 201) }), "label and created_by"},
		{"bad created_by", with(func(t *BackupRegistrationToken) { t.CreatedBy = "\xff" }), "label and created_by"},
		{"negative uses", with(func(t *BackupRegistrationToken) { t.Uses = -1 }), "max_uses and uses"},
		{"too many uses", with(func(t *BackupRegistrationToken) { t.MaxUses = 1_000_001 }), "max_uses and uses"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantBadRequest(t, tt.tok.check(), tt.wantErr)
		})
	}
	a, h := newAPI(t)
	b, _ := json.Marshal(Backup{Version: BackupVersion, Users: []BackupUser{}, Clients: []BackupClient{},
		RegistrationTokens: []BackupRegistrationToken{good, with(func(t *BackupRegistrationToken) { t.ID, t.Hash = "t2", "x" })}})
	if st, _, out := call(t, h, "POST", "/admin/import", adminToken, string(b)); st != 400 || !strings.Contains(out, "t2") || !strings.Contains(out, "hash must be") {
		t.Fatalf("import with a bad token: %d %s", st, out)
	}
	if toks, _ := a.Store.ListInitialAccessTokens(context.Background()); len(toks) != 0 {
		t.Fatalf("a refused backup wrote %d tokens", len(toks))
	}
}
