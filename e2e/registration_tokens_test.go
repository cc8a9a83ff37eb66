package e2e

import (
	"bytes"
	"encoding/json"
	"io"
	"net/http"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/adminapi"
)

// issueToken issues an initial access token through the admin API as the
// named operator.
func issueToken(t *testing.T, e *env, operator string, in adminapi.NewRegistrationToken) adminapi.RegistrationToken {
	t.Helper()
	raw, _ := json.Marshal(in)
	req, _ := http.NewRequest("POST", e.AdminURL+"/admin/registration/tokens", bytes.NewReader(raw))
	req.Header.Set("Authorization", "Bearer "+adminToken)
	req.Header.Set(adminapi.OperatorHeader, operator)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	body, _ := io.ReadAll(resp.Body)
	var out adminapi.RegistrationToken
	if resp.StatusCode != http.StatusCreated || json.Unmarshal(body, &out) != nil || len(out.Token) < 32 {
		t.Fatalf("issue %+v: %d %s", in, resp.StatusCode, body)
	}
	return out
}

// listTokens lists the initial access tokens by id, and the raw answer.
func listTokens(t *testing.T, e *env) (map[string]adminapi.RegistrationToken, string) {
	t.Helper()
	var list []adminapi.RegistrationToken
	st, raw := e.adminCall("GET", "/admin/registration/tokens", adminToken, nil, &list)
	wantStatus(t, st, http.StatusOK, "list initial access tokens", raw)
	out := map[string]adminapi.RegistrationToken{}
	for _, tok := range list {
		out[tok.ID] = tok
	}
	return out, raw
}

// refused checks a registration refused 401 invalid_token (RFC 6750 §3)
// with a description containing desc.
func refused(t *testing.T, e *env, bearer, desc string) {
	t.Helper()
	raw, _ := json.Marshal(map[string]any{"redirect_uris": []string{"https://app.example/cb"}})
	req, _ := http.NewRequest("POST", e.URL+"/register", bytes.NewReader(raw))
	req.Header.Set("Content-Type", "application/json")
	req.Header.Set("Authorization", "Bearer "+bearer)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var body struct {
		Error            string `json:"error"`
		ErrorDescription string `json:"error_description"`
	}
	_ = json.NewDecoder(resp.Body).Decode(&body)
	ch := resp.Header.Get("WWW-Authenticate")
	if resp.StatusCode != http.StatusUnauthorized || body.Error != "invalid_token" || !strings.Contains(body.ErrorDescription, desc) ||
		!strings.Contains(ch, `error="invalid_token"`) || !strings.HasPrefix(ch, "Bearer ") {
		t.Fatalf("registration with %q: %d %+v %q, want 401 invalid_token %q", bearer, resp.StatusCode, body, ch, desc)
	}
}

var appMeta = map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "App"}

// TestRegistrationInitialAccessTokens: operators issue initial access
// tokens through the admin API; each registers clients over HTTP until it
// is used up, expires or is revoked, and then is refused 401 invalid_token
// saying why; a wrong token is refused; the configured token keeps
// working. The list shows uses and states, never a token; the audit log
// names the operator who issued a token and the token that registered
// each client.
func TestRegistrationInitialAccessTokens(t *testing.T) {
	e := start(t)
	e.Clock.Freeze()
	once := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "partner", MaxUses: 1})
	day := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "hackathon", ExpiresIn: 86400})
	open := issueToken(t, e, "omar", adminapi.NewRegistrationToken{Label: "ci"})

	refused(t, e, "not-a-token", "not valid")
	refused(t, e, once.ID, "not valid") // the id is no token
	app := e.register("POST", "/register", once.Token, appMeta)
	wantStatus(t, app.Status, http.StatusCreated, "registration with a single-use token", app)
	refused(t, e, once.Token, "as many clients as it may")

	for range 2 {
		r := e.register("POST", "/register", day.Token, appMeta)
		wantStatus(t, r.Status, http.StatusCreated, "registration before expiry", r)
	}
	e.Clock.Advance(24 * time.Hour)
	refused(t, e, day.Token, "has expired")

	ci := e.register("POST", "/register", open.Token, appMeta)
	wantStatus(t, ci.Status, http.StatusCreated, "registration with an unlimited token", ci)
	if st, raw := e.adminCall("DELETE", "/admin/registration/tokens/"+open.ID, adminToken, nil, nil); st != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	refused(t, e, open.Token, "was revoked")
	if r := e.register("POST", "/register", registrationToken, appMeta); r.Status != http.StatusCreated {
		t.Fatalf("the configured token after the others: %+v", r)
	}
	// A registered client still works: revoking the token is not
	// revoking the clients it registered.
	if r := e.register("GET", ci.RegistrationClientURI, ci.RegistrationAccessToken, nil); r.Status != http.StatusOK {
		t.Fatalf("a client of a revoked token: %+v", r)
	}

	toks, raw := listTokens(t, e)
	for _, s := range []string{once.Token, day.Token, open.Token, `"token"`} {
		if strings.Contains(raw, s) {
			t.Fatalf("the list shows a token: %s", raw)
		}
	}
	for id, want := range map[string]struct {
		state   string
		uses    int
		creator string
	}{once.ID: {"used_up", 1, "nadia"}, day.ID: {"expired", 2, "nadia"}, open.ID: {"revoked", 1, "omar"}} {
		if got := toks[id]; got.State != want.state || got.Uses != want.uses || got.CreatedBy != want.creator {
			t.Errorf("token %s: %+v, want %+v", id, got, want)
		}
	}
	var pol adminapi.Registration
	if st, _ := e.adminCall("GET", "/admin/registration", adminToken, nil, &pol); st != http.StatusOK || pol.LiveTokens != 0 {
		t.Fatalf("policy: %+v", pol)
	}

	audited := func(query string) (out []adminapi.Event) {
		t.Helper()
		e.adminCall("GET", "/admin/audit?"+query, adminToken, nil, &out)
		return out
	}
	if evs := audited("client=" + app.ClientID); len(evs) != 1 || evs[0].Type != "client_registered" || evs[0].Detail != "initial_access_token="+once.ID {
		t.Fatalf("audit of the registration: %+v", evs)
	}
	evs := audited("type=registration_token_issued")
	issued := map[string]bool{}
	for _, ev := range evs {
		issued[ev.Detail] = true
	}
	if len(evs) != 3 || !issued["by admin API; operator=omar; initial_access_token="+open.ID] ||
		!issued["by admin API; operator=nadia; initial_access_token="+once.ID] {
		t.Fatalf("audit of the issued tokens: %+v", evs)
	}
	if evs := audited("type=registration_token_revoked"); len(evs) != 1 || !strings.Contains(evs[0].Detail, open.ID) {
		t.Fatalf("audit of the revocation: %+v", evs)
	}
}

// TestRegistrationTokenRace: registrations racing with one single-use
// initial access token over HTTP: exactly one 201 and one client, every
// other 401 (or 429, throttled).
func TestRegistrationTokenRace(t *testing.T) { raceSingleUse(t, []*env{start(t)}) }

// TestRegistrationTokenRaceCluster: the same race spread over three nodes
// of one PostgreSQL store, the token issued on the first.
func TestRegistrationTokenRaceCluster(t *testing.T) { raceSingleUse(t, startCluster(t, 3)) }

func raceSingleUse(t *testing.T, nodes []*env) {
	e := nodes[0]
	tok := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{MaxUses: 1})
	var before []adminapi.Client
	e.adminCall("GET", "/admin/clients", adminToken, nil, &before)
	const n = 12
	var mu sync.Mutex
	statuses := map[int]int{}
	var wg sync.WaitGroup
	for i := range n {
		wg.Go(func() {
			st, _ := jsonCall(t, "POST", nodes[i%len(nodes)].URL+"/register", tok.Token, appMeta)
			mu.Lock()
			defer mu.Unlock()
			statuses[st]++
		})
	}
	wg.Wait()
	var after []adminapi.Client
	e.adminCall("GET", "/admin/clients", adminToken, nil, &after)
	toks, _ := listTokens(t, e)
	// The losers are refused (401), or throttled before they are looked
	// at (429: refused registrations of one token are counted).
	if statuses[http.StatusCreated] != 1 || statuses[http.StatusUnauthorized]+statuses[http.StatusTooManyRequests] != n-1 ||
		len(after) != len(before)+1 || toks[tok.ID].Uses != 1 {
		t.Fatalf("statuses %v, clients %d → %d, uses %d: want one 201, one client, one use", statuses, len(before), len(after), toks[tok.ID].Uses)
	}
}

// TestCLIRegistrationTokens: bawwab registration token create, list and
// revoke, against a running server (--server) and against a store
// directly; the token the CLI shows once registers a client, and is
// refused once used up and once revoked.
func TestCLIRegistrationTokens(t *testing.T) {
	e := start(t)
	run := newCLI(t, "BAWWAB_ADMIN_TOKEN="+adminToken, "BAWWAB_OPERATOR=nadia").run
	remote := func(args ...string) []string {
		return append(append([]string{"registration", "token"}, args...), "--server", e.AdminURL)
	}

	var tok adminapi.RegistrationToken
	out := run(true, remote("create", "--label", "cli", "--expires", "24h", "--max-uses", "1", "-o", "json")...)
	if err := json.Unmarshal([]byte(out), &tok); err != nil || len(tok.Token) < 32 || tok.CreatedBy != "nadia" || tok.MaxUses != 1 || tok.ExpiresAt == nil {
		t.Fatalf("create -o json: %v\n%s", err, out)
	}
	if r := e.register("POST", "/register", tok.Token, appMeta); r.Status != http.StatusCreated {
		t.Fatalf("registration with the CLI's token: %+v", r)
	}
	refused(t, e, tok.Token, "as many clients as it may")
	unlimited := run(true, remote("create", "--label", "ci")...)
	if !strings.Contains(unlimited, "shown this once") || !strings.Contains(unlimited, "no limit") {
		t.Fatalf("create:\n%s", unlimited)
	}
	list := run(true, remote("list")...)
	if !strings.Contains(list, tok.ID) || !strings.Contains(list, "used_up") || strings.Contains(list, tok.Token) {
		t.Fatalf("list:\n%s", list)
	}
	if out := run(true, remote("revoke", tok.ID)...); !strings.Contains(out, "revoked") {
		t.Fatalf("revoke:\n%s", out)
	}
	if out := run(false, remote("revoke", "nosuch")...); !strings.Contains(out, "no such initial access token") {
		t.Fatalf("revoke unknown:\n%s", out)
	}
	run(false, remote("create", "--expires", "-1h")...)
	run(false, remote("create", "--max-uses", "-1")...)

	// In process, against a store of its own.
	dir := t.TempDir()
	run(true, "registration", "token", "create", "--label", "local", "--data-dir", dir)
	if out := run(true, "registration", "token", "list", "--data-dir", dir); !strings.Contains(out, "local") || !strings.Contains(out, "nadia") {
		t.Fatalf("list in process:\n%s", out)
	}
}
