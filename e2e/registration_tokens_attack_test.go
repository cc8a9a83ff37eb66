package e2e

import (
	"bufio"
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"net"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
)

// registerRaw posts metadata to /register with the given headers and
// query, and returns the status, the error code and the body.
func registerRaw(t *testing.T, e *env, query string, header http.Header, body []byte) (int, string, string) {
	t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/register"+query, bytes.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	for k, v := range header {
		req.Header[k] = v
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	var out struct {
		Error string `json:"error"`
	}
	_ = json.Unmarshal(raw, &out)
	return resp.StatusCode, out.Error, string(raw)
}

// TestRegistrationTokenAttacks: an initial access token is taken only as
// a Bearer in the Authorization header: not in the query, not in the
// body, not as its id or its stored hash, and a registration access token
// (RFC 7592) is none, nor is an initial access token a registration
// access token. Odd Authorization headers are refused 401 (or 431 when
// too large), never 500. A registration the policy refuses costs no use;
// nothing is fetched for a request whose token is not live; and a token
// revoked, or expiring, while its registration fetches the
// sector_identifier_uri registers nothing.
func TestRegistrationTokenAttacks(t *testing.T) {
	e := start(t)
	e.Clock.Freeze()
	once := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "once", MaxUses: 1})
	meta, _ := json.Marshal(appMeta)

	// Where the token may not be.
	hdr := func(v string) http.Header { return http.Header{"Authorization": {v}} }
	for name, tc := range map[string]struct {
		query  string
		header http.Header
		body   []byte
	}{
		"query access_token":     {"?access_token=" + url.QueryEscape(once.Token), nil, meta},
		"body access_token":      {"", nil, must(json.Marshal(map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "access_token": once.Token}))},
		"id as token":            {"", hdr("Bearer " + once.ID), meta},
		"hash as token":          {"", hdr("Bearer " + storage.Hash(once.Token)), meta},
		"lower-case scheme":      {"", hdr("bearer " + once.Token), meta},
		"Basic scheme":           {"", hdr("Basic " + once.Token), meta},
		"no space":               {"", hdr("Bearer" + once.Token), meta},
		"two spaces":             {"", hdr("Bearer  " + once.Token), meta},
		"trailing junk":          {"", hdr("Bearer " + once.Token + " x"), meta},
		"token twice":            {"", http.Header{"Authorization": {"Bearer x", "Bearer " + once.Token}}, meta},
		"token prefix":           {"", hdr("Bearer " + once.Token[:len(once.Token)-1]), meta},
		"64 KiB token":           {"", hdr("Bearer " + strings.Repeat("A", 64<<10)), meta},
		"bare Bearer":            {"", hdr("Bearer "), meta},
		"empty Authorization":    {"", hdr(""), meta},
		"tab instead of a space": {"", hdr("Bearer\t" + once.Token), meta},
	} {
		st, code, raw := registerRaw(t, e, tc.query, tc.header, tc.body)
		if st != http.StatusUnauthorized && st != http.StatusBadRequest && st != http.StatusRequestHeaderFieldsTooLarge {
			t.Errorf("%s: %d %s %.200s; want 401 (400 or 431 for a header Go's server refuses)", name, st, code, raw)
		}
	}
	// Bytes Go's client will not send, written on the wire.
	for name, v := range map[string]string{"NUL": "Bearer \x00" + once.Token, "invalid UTF-8": "Bearer \xff\xfe" + once.Token,
		"CR": "Bearer " + once.Token + "\r"} {
		if st := rawRegister(t, e, v, meta); st != http.StatusUnauthorized && st != http.StatusBadRequest {
			t.Errorf("%s: %d; want 401 or 400", name, st)
		}
	}
	// Larger than the server reads: refused before any handler.
	if st, _, _ := registerRaw(t, e, "", hdr("Bearer "+strings.Repeat("A", 2<<20)), meta); st != http.StatusRequestHeaderFieldsTooLarge {
		t.Errorf("a 2 MiB Authorization header: %d; want 431", st)
	}

	// The two kinds of tokens of registration are not each other.
	app := e.register("POST", "/register", registrationToken, appMeta)
	wantStatus(t, app.Status, http.StatusCreated, "registration", app)
	refused(t, e, app.RegistrationAccessToken, "not valid")
	if r := e.register("GET", app.RegistrationClientURI, once.Token, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("an initial access token read a registration: %+v", r)
	}
	if r := e.register("DELETE", app.RegistrationClientURI, registrationToken, nil); r.Status != http.StatusUnauthorized {
		t.Fatalf("the configured initial access token deleted a registration: %+v", r)
	}

	// Refusals cost no use: the single-use token is still good after them.
	for name, m := range map[string]map[string]any{
		"client_credentials": {"grant_types": []string{"client_credentials"}},
		"http redirect":      {"redirect_uris": []string{"http://evil.example/cb"}},
		"unknown scope":      {"redirect_uris": []string{"https://app.example/cb"}, "scope": "openid admin"},
	} {
		if r := e.register("POST", "/register", once.Token, m); r.Status != http.StatusBadRequest {
			t.Fatalf("%s: %+v", name, r)
		}
	}
	if st, _, raw := registerRaw(t, e, "", hdr("Bearer "+once.Token), []byte("{not json")); st != http.StatusBadRequest {
		t.Fatalf("bad JSON: %d %s", st, raw)
	}
	if toks, _ := listTokens(t, e); toks[once.ID].Uses != 0 {
		t.Fatalf("refused registrations spent uses: %+v", toks[once.ID])
	}

	// Nothing is fetched for a token that is not live; the revocation of
	// a token while its registration fetches stops the registration.
	var fetched atomic.Int64
	var onFetch atomic.Pointer[func()]
	sector := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		fetched.Add(1)
		if f := onFetch.Load(); f != nil {
			(*f)()
		}
		_, _ = w.Write([]byte(`["https://a.example/cb","https://b.example/cb"]`))
	}))
	defer sector.Close()
	pairwise := map[string]any{"redirect_uris": []string{"https://a.example/cb", "https://b.example/cb"}, "subject_type": "pairwise",
		"sector_identifier_uri": sector.URL + "/s.json", "logo_uri": sector.URL + "/logo.png",
		"token_endpoint_auth_method": "none"}
	revoked := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "revoked"})
	if st, raw := e.adminCall("DELETE", "/admin/registration/tokens/"+revoked.ID, adminToken, nil, nil); st != http.StatusNoContent {
		t.Fatalf("revoke: %d %s", st, raw)
	}
	for _, tok := range []string{"", "wrong", revoked.Token, storage.Hash(revoked.Token), app.RegistrationAccessToken} {
		if r := e.register("POST", "/register", tok, pairwise); r.Status != http.StatusUnauthorized {
			t.Fatalf("registration with %q: %+v", tok, r)
		}
	}
	if n := fetched.Load(); n != 0 {
		t.Fatalf("%d fetches for registrations without a live token", n)
	}

	mid := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "mid"})
	revoke := func() {
		if st, raw := e.adminCall("DELETE", "/admin/registration/tokens/"+mid.ID, adminToken, nil, nil); st != http.StatusNoContent {
			t.Errorf("revoke mid-request: %d %s", st, raw)
		}
	}
	onFetch.Store(&revoke)
	var before []adminapi.Client
	e.adminCall("GET", "/admin/clients", adminToken, nil, &before)
	if r := e.register("POST", "/register", mid.Token, pairwise); r.Status != http.StatusUnauthorized || !strings.Contains(r.Description, "revoked") {
		t.Fatalf("a token revoked while its registration fetched: %+v", r)
	}
	expiring := issueToken(t, e, "nadia", adminapi.NewRegistrationToken{Label: "expiring", ExpiresIn: 60})
	expire := func() { e.Clock.Advance(time.Minute) }
	onFetch.Store(&expire)
	if r := e.register("POST", "/register", expiring.Token, pairwise); r.Status != http.StatusUnauthorized || !strings.Contains(r.Description, "expired") {
		t.Fatalf("a token expiring while its registration fetched: %+v", r)
	}
	var after []adminapi.Client
	e.adminCall("GET", "/admin/clients", adminToken, nil, &after)
	if len(after) != len(before) {
		t.Fatalf("clients %d → %d: a registration with a dead token stored a client", len(before), len(after))
	}
	toks, _ := listTokens(t, e)
	if toks[mid.ID].Uses != 0 || toks[expiring.ID].Uses != 0 {
		t.Fatalf("uses of dead tokens: %+v %+v", toks[mid.ID], toks[expiring.ID])
	}
	onFetch.Store(nil)
	if r := e.register("POST", "/register", once.Token, pairwise); r.Status != http.StatusCreated {
		t.Fatalf("the single-use token after every refusal: %+v", r)
	}
}

// rawRegister posts metadata to /register with the Authorization value
// written as is on the connection, and returns the status.
func rawRegister(t *testing.T, e *env, auth string, body []byte) int {
	t.Helper()
	u, _ := url.Parse(e.URL)
	conn, err := net.Dial("tcp", u.Host)
	if err != nil {
		t.Fatal(err)
	}
	defer conn.Close()
	_, err = fmt.Fprintf(conn, "POST /register HTTP/1.1\r\nHost: %s\r\nContent-Type: application/json\r\nAuthorization: %s\r\nContent-Length: %d\r\nConnection: close\r\n\r\n%s",
		u.Host, auth, len(body), body)
	if err != nil {
		t.Fatal(err)
	}
	resp, err := http.ReadResponse(bufio.NewReader(conn), nil)
	if err != nil {
		t.Fatal(err)
	}
	resp.Body.Close()
	return resp.StatusCode
}

func must[T any](v T, err error) T {
	if err != nil {
		panic(err)
	}
	return v
}
