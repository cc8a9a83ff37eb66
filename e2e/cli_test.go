package e2e

import (
	"context"
	"encoding/json"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestCLI runs the bawwab binary's admin commands against a running
// server's admin API (--server) and against a store directly, and checks
// that each did what it says: both paths are the one admin API.
func TestCLI(t *testing.T) {
	e := start(t)
	bin := buildBawwab(t)
	run := newCLI(t, "BAWWAB_ADMIN_TOKEN="+adminToken).run
	remote := func(args ...string) []string { return append(args, "--server", e.AdminURL) }

	// Remote: add a client, see it, use it.
	var created struct {
		ID     string `json:"client_id"`
		Secret string `json:"client_secret"`
	}
	out := run(true, remote("client", "add", "--id", "cron", "--grant-type", "client_credentials", "--scope", "files.read", "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &created); err != nil || created.Secret == "" {
		t.Fatalf("client add -o json: %v\n%s", err, out)
	}
	if tok := e.token(map[string][]string{"grant_type": {"client_credentials"}}, "cron", created.Secret); tok.Status != 200 {
		t.Fatalf("the client added by the CLI cannot get a token: %d %s", tok.Status, tok.Description)
	}
	if out := run(true, remote("client", "list")...); !strings.Contains(out, "cron") || !strings.Contains(out, "CLIENT_ID") {
		t.Fatalf("client list:\n%s", out)
	}
	// The ID token alg, the PKCE policy and the standard claims.
	run(true, remote("client", "add", "--id", "rp-cli", "--redirect-uri", "https://rp.example/cb", "--id-token-alg", "PS256",
		"--pkce-policy", "nonce_instead", "--require-second-factor")...)
	if c, err := e.Store.GetClient(context.Background(), "rp-cli"); err != nil || c.IDTokenAlg != "PS256" || c.PKCEPolicy != storage.PKCENonceInstead || !c.SecondFactor {
		t.Fatalf("client add --id-token-alg --pkce-policy --require-second-factor: %v %+v", err, c)
	}
	// --require-dpop sets dpop_bound_access_tokens (RFC 9449 §5.2), which
	// add, update and list show; an update without it clears it.
	if out := run(true, remote("client", "add", "--id", "dpop-cli", "--redirect-uri", "https://rp.example/cb", "--require-dpop")...); !strings.Contains(out, "dpop:") {
		t.Fatalf("client add --require-dpop does not say so:\n%s", out)
	}
	if c, err := e.Store.GetClient(context.Background(), "dpop-cli"); err != nil || !c.DPoPBound {
		t.Fatalf("client add --require-dpop: %v %+v", err, c)
	}
	if out := run(true, remote("client", "list")...); !strings.Contains(out, "DPOP") || !strings.Contains(out, "required") {
		t.Fatalf("client list does not show the DPoP requirement:\n%s", out)
	}
	run(true, remote("client", "update", "dpop-cli", "--redirect-uri", "https://rp.example/cb")...)
	if c, err := e.Store.GetClient(context.Background(), "dpop-cli"); err != nil || c.DPoPBound {
		t.Fatalf("client update without --require-dpop kept it: %v %+v", err, c)
	}
	run(false, remote("client", "add", "--id", "spa-cli", "--public", "--redirect-uri", "https://rp.example/cb", "--pkce-policy", "nonce_instead")...)
	run(true, remote("user", "profile", e.UserID, "--claim", "given_name=Amal", "--claim", "address.locality=Amman",
		"--claim", "phone_number=+962791234567", "--claim", "phone_number_verified=true")...)
	if u, _ := e.Store.GetUser(context.Background(), e.UserID); u.Profile.GivenName != "Amal" || u.Profile.Address.Locality != "Amman" ||
		!u.Profile.PhoneNumberVerified || u.Name != "Amal Haddad" || u.Profile.UpdatedAt.IsZero() {
		t.Fatalf("user profile: %+v", u)
	}
	run(false, remote("user", "profile", e.UserID, "--claim", "birthdate=yesterday")...)
	run(false, remote("user", "profile", e.UserID, "--claim", "shoe_size=44")...)

	kid := strings.Fields(run(true, remote("keys", "rotate")...))[3]
	if e.Server.Keys.ActiveKID() != strings.TrimSuffix(kid, ";") {
		t.Fatalf("keys rotate over the API: server signs with %s, CLI said %s", e.Server.Keys.ActiveKID(), kid)
	}
	if out := run(true, remote("audit", "list", "--type", "token_issued")...); !strings.Contains(out, "EVENT") {
		t.Fatalf("audit list:\n%s", out)
	}

	// The rest of the admin operations, through the binary.
	if out := run(true, remote("scope", "set", "calendar.read", "--en", "See your calendar", "--ar", "الاطلاع على تقويمك", "--sensitive")...); !strings.Contains(out, "saved") {
		t.Fatalf("scope set:\n%s", out)
	}
	if out := run(true, remote("scope", "list")...); !strings.Contains(out, "الاطلاع على تقويمك") {
		t.Fatalf("scope list:\n%s", out)
	}
	run(true, remote("scope", "delete", "calendar.read")...)
	run(true, remote("client", "update", "cron", "--name", "Nightly cron", "--grant-type", "client_credentials", "--scope", "files.read")...)
	if out := run(true, remote("client", "list")...); !strings.Contains(out, "Nightly cron") {
		t.Fatalf("client update:\n%s", out)
	}
	r := e.notesRequest("openid email")
	e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	if out := run(true, remote("grant", "list", "--client", "notes")...); !strings.Contains(out, e.UserID) {
		t.Fatalf("grant list --client:\n%s", out)
	}
	if out := run(true, remote("grant", "list", "--user", userName)...); !strings.Contains(out, "notes") {
		t.Fatalf("grant list --user USERNAME:\n%s", out)
	}
	if out := run(true, remote("grant", "revoke-all", "notes")...); !strings.Contains(out, "1 users") {
		t.Fatalf("grant revoke-all:\n%s", out)
	}
	pw := exec.Command(bin, remote("user", "password", e.UserID)...)
	pw.Env = append(os.Environ(), "BAWWAB_CONFIG=", "BAWWAB_ADMIN_TOKEN="+adminToken)
	pw.Stdin = strings.NewReader("another long passphrase\n")
	if out, err := pw.CombinedOutput(); err != nil {
		t.Fatalf("user password: %v\n%s", err, out)
	}
	if p := e.browser().login(e.browser().get(e.notesRequest("openid").url()).Location, userName, "another long passphrase"); p.Status != 303 {
		t.Fatalf("login with the password set by the CLI: %d", p.Status)
	}

	// Mistakes are explained, with a non-zero exit.
	if out := run(false, remote("client", "add", "--redirect-uri", "http://evil.example/cb")...); !strings.Contains(out, "redirect URI") {
		t.Fatalf("bad redirect URI:\n%s", out)
	}
	if out := run(false, "client", "list", "--server", e.AdminURL, "--admin-token", "wrong-token-wrong-token-wrong-token"); !strings.Contains(out, "admin token") {
		t.Fatalf("wrong admin token:\n%s", out)
	}
	if out := run(false, remote("client", "list", "-o", "yaml")...); !strings.Contains(out, "table or json") {
		t.Fatalf("bad --output:\n%s", out)
	}

	// config check explains mistakes and unwise settings.
	if out := run(false, "config", "check", "--issuer", "http://id.example"); !strings.Contains(out, "must use https outside localhost") {
		t.Fatalf("config check of an http issuer:\n%s", out)
	}
	bad := filepath.Join(t.TempDir(), "bad.yaml")
	_ = os.WriteFile(bad, []byte("isuer: https://id.example\n"), 0o600)
	if out := run(false, "config", "check", "--config", bad); !strings.Contains(out, `did you mean "issuer"`) {
		t.Fatalf("config check of a typo:\n%s", out)
	}
	if out := run(true, "config", "check", "--listen", "0.0.0.0:8080"); !strings.Contains(out, "warning: listen 0.0.0.0:8080") ||
		!strings.Contains(out, "configuration is valid") {
		t.Fatalf("config check warnings:\n%s", out)
	}

	// Local: the same commands on a store of its own.
	dir := t.TempDir()
	run(true, "user", "add", "--username", "rania", "--password", "a long and unusual phrase", "--data-dir", dir)
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !strings.Contains(out, `"username": "rania"`) || !strings.Contains(out, `"admin": false`) {
		t.Fatalf("local user list:\n%s", out)
	}
	run(true, "user", "add", "--username", "nadia", "--admin", "--password", "a long and unusual phrase", "--data-dir", dir)
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !strings.Contains(out, `"admin": true`) {
		t.Fatalf("user add --admin:\n%s", out)
	}
	run(true, "user", "admin", "rania", "--data-dir", dir)
	run(true, "user", "admin", "nadia", "--off", "--data-dir", dir)
	if out := run(true, "user", "list", "-o", "json", "--data-dir", dir); !regexp.MustCompile(`"username": "nadia",[^}]*"admin": false`).MatchString(out) ||
		!regexp.MustCompile(`"username": "rania",[^}]*"admin": true`).MatchString(out) {
		t.Fatalf("user admin:\n%s", out)
	}
	if out := run(false, "user", "add", "--username", "x", "--password", "password1", "--data-dir", dir); !strings.Contains(out, "breached") {
		t.Fatalf("breached password:\n%s", out)
	}

	// Export from the running server, import into another store: users keep
	// their passwords, clients their secrets; a second import adds nothing.
	backup := filepath.Join(t.TempDir(), "backup.json")
	iat := run(true, remote("registration", "token", "create", "--label", "partner", "--max-uses", "2", "-o", "json")...)
	exported := run(true, remote("export")...)
	if err := os.WriteFile(backup, []byte(exported), 0o600); err != nil {
		t.Fatal(err)
	}
	if out := run(true, "import", backup, "--data-dir", dir); !strings.Contains(out, "users: 1 added, 0 already there") || !strings.Contains(out, "clients: 8 added") ||
		!strings.Contains(out, "registration tokens: 1 added, 0 already there") {
		t.Fatalf("import:\n%s", out)
	}
	if out := run(true, "import", backup, "--data-dir", dir); !strings.Contains(out, "users: 0 added, 1 already there") ||
		!strings.Contains(out, "registration tokens: 0 added, 1 already there") {
		t.Fatalf("second import:\n%s", out)
	}
	store, err := sqlite.Open(context.Background(), filepath.Join(dir, "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	u, err := store.GetUserByUsername(context.Background(), userName)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := password.Verify("another long passphrase", u.PasswordHash, testPassword); err != nil || u.ID != e.UserID ||
		u.Profile.GivenName != "Amal" || u.Profile.Address.Locality != "Amman" || u.Profile.UpdatedAt.IsZero() {
		t.Fatalf("imported user: %v %+v", err, u)
	}
	if c, err := store.GetClient(context.Background(), "rp-cli"); err != nil || c.IDTokenAlg != "PS256" || c.PKCEPolicy != storage.PKCENonceInstead {
		t.Fatalf("imported client: %v %+v", err, c)
	}
	c, err := store.GetClient(context.Background(), "cron")
	if err != nil || c.SecretHash != storage.Hash(created.Secret) {
		t.Fatalf("imported client: %v %+v", err, c)
	}
	var issued adminapi.RegistrationToken
	if err := json.Unmarshal([]byte(iat), &issued); err != nil {
		t.Fatalf("registration token create: %v\n%s", err, iat)
	}
	if tok, err := store.GetInitialAccessToken(context.Background(), storage.Hash(issued.Token)); err != nil || tok.ID != issued.ID ||
		tok.MaxUses != 2 || tok.Label != "partner" {
		t.Fatalf("imported registration token: %v %+v", err, tok)
	}
	if out := run(false, "import", "/nonexistent.json", "--data-dir", dir); !strings.Contains(out, "no such file") {
		t.Fatalf("missing file:\n%s", out)
	}
}
