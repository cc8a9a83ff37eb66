package e2e

import (
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"strings"
	"testing"
)

// jsonCall sends a JSON request (body marshalled when not nil) with an
// optional Bearer token and returns the status and the raw answer.
func jsonCall(t *testing.T, method, uri, bearer string, body any) (int, []byte) {
	t.Helper()
	var r io.Reader
	if body != nil {
		raw, _ := json.Marshal(body)
		r = strings.NewReader(string(raw))
	}
	req, _ := http.NewRequest(method, uri, r)
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	raw, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, raw
}

// adminCall sends one admin API request and decodes a JSON answer into out.
func (e *env) adminCall(method, path, token string, body any, out any) (int, string) {
	e.t.Helper()
	status, raw := jsonCall(e.t, method, e.AdminURL+path, token, body)
	if out != nil && len(raw) > 0 {
		if err := json.Unmarshal(raw, out); err != nil {
			e.t.Fatalf("%s %s: %d %s", method, path, status, raw)
		}
	}
	return status, string(raw)
}

// TestAdminAPI drives every admin route against the real server: clients,
// users, grants, scopes, keys and the audit log, with the admin token and
// without it.
func TestAdminAPI(t *testing.T) {
	e := start(t)
	call := func(method, path string, body, out any) (int, string) {
		t.Helper()
		return e.adminCall(method, path, adminToken, body, out)
	}
	want := func(got int, body string, status int, what string) {
		t.Helper()
		if got != status {
			t.Fatalf("%s: %d, want %d: %s", what, got, status, body)
		}
	}

	// Without the token, or with another, nothing.
	for _, tok := range []string{"", "wrong-token", adminToken + "x"} {
		if status, body := e.adminCall("GET", "/admin/clients", tok, nil, nil); status != 401 || !strings.Contains(body, `"error":"unauthorized"`) {
			t.Fatalf("token %q: %d %s", tok, status, body)
		}
	}
	// The admin API is not on the public listener.
	if status, _, _ := getBody(t, e.URL+"/admin/clients", "Authorization", "Bearer "+adminToken); status != 404 {
		t.Fatalf("admin API reachable on the public listener: %d", status)
	}

	// Clients.
	var created struct {
		ClientID string `json:"client_id"`
		Secret   string `json:"client_secret"`
	}
	status, body := call("POST", "/admin/clients", map[string]any{"client_id": "reports", "name": "Reports",
		"grant_types": []string{"client_credentials"}, "scopes": []string{"files.read"}}, &created)
	want(status, body, 201, "create client")
	if created.ClientID != "reports" || len(created.Secret) < 32 {
		t.Fatalf("created client %+v", created)
	}
	tok := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "reports", created.Secret)
	wantStatus(t, tok.Status, 200, "token of the new client", tok.Description)
	status, body = call("POST", "/admin/clients", map[string]any{"client_id": "reports", "grant_types": []string{"client_credentials"}}, nil)
	want(status, body, 409, "duplicate client")
	status, body = call("POST", "/admin/clients", map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, nil)
	want(status, body, 400, "client with an http redirect")
	if !strings.Contains(body, "redirect URI") {
		t.Fatalf("400 does not explain: %s", body)
	}
	status, body = call("POST", "/admin/clients", map[string]any{"client_id": "x", "secret": "chosen"}, nil)
	want(status, body, 400, "unknown field")
	var clients []map[string]any
	status, body = call("GET", "/admin/clients", nil, &clients)
	want(status, body, 200, "list clients")
	if len(clients) != 6 || strings.Contains(body, `"client_secret"`) || strings.Contains(body, "secret_hash") {
		t.Fatalf("clients: %s", body)
	}
	var one map[string]any
	status, body = call("GET", "/admin/clients/reports", nil, &one)
	want(status, body, 200, "get client")
	status, body = call("GET", "/admin/clients/ghost", nil, nil)
	want(status, body, 404, "unknown client")

	// Users.
	status, body = call("POST", "/admin/users", map[string]any{"username": "badr", "password": "password123"}, nil)
	want(status, body, 400, "breached password")
	var user struct {
		ID       string `json:"id"`
		Username string `json:"username"`
	}
	status, body = call("POST", "/admin/users", map[string]any{"username": "badr", "password": "a long and unusual phrase", "email": "badr@example.com"}, &user)
	want(status, body, 201, "create user")
	if user.Username != "badr" || strings.Contains(body, "argon2") {
		t.Fatalf("user: %s", body)
	}
	status, body = call("GET", "/admin/users/"+user.ID, nil, nil)
	want(status, body, 200, "get user")
	var users []map[string]any
	status, body = call("GET", "/admin/users", nil, &users)
	want(status, body, 200, "list users")
	if len(users) != 2 {
		t.Fatalf("users: %s", body)
	}

	// Grants: amal uses Notes; the admin sees it and revokes it.
	r := e.notesRequest("openid email offline_access")
	notes := e.redeem(e.browser().authorize(r, "email", "offline_access").Get("code"), r)
	var grants []struct {
		ClientID string   `json:"client_id"`
		Scopes   []string `json:"scopes"`
	}
	status, body = call("GET", "/admin/users/"+e.UserID+"/grants", nil, &grants)
	want(status, body, 200, "list grants")
	if len(grants) != 1 || grants[0].ClientID != "notes" {
		t.Fatalf("grants: %s", body)
	}
	status, body = call("DELETE", "/admin/users/"+e.UserID+"/grants/notes", nil, nil)
	want(status, body, 204, "revoke grant")
	if in := e.introspect(notes.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatalf("token alive after the admin revoked the grant: %v", in)
	}
	status, body = call("GET", "/admin/users/nobody/grants", nil, nil)
	want(status, body, 404, "grants of an unknown user")

	// Scopes, with both languages and the sensitive flag.
	var scopes []struct {
		Name        string            `json:"name"`
		Sensitive   bool              `json:"sensitive"`
		Description map[string]string `json:"description"`
	}
	status, body = call("GET", "/admin/scopes", nil, &scopes)
	want(status, body, 200, "scopes")
	found := false
	for _, s := range scopes {
		if s.Name == "payment" {
			found = s.Sensitive && s.Description["en"] != "" && s.Description["ar"] != ""
		}
	}
	if !found {
		t.Fatalf("payment scope not listed as sensitive with en/ar text: %s", body)
	}

	// Keys: rotate, and the new key signs.
	var rotated struct {
		KID string `json:"kid"`
	}
	status, body = call("POST", "/admin/keys/rotate", nil, &rotated)
	want(status, body, 200, "rotate")
	var keys []struct {
		KID    string `json:"kid"`
		Alg    string `json:"alg"`
		Active bool   `json:"active"`
	}
	status, body = call("GET", "/admin/keys", nil, &keys)
	want(status, body, 200, "keys")
	active := map[string]string{} // alg -> kid
	for _, k := range keys {
		if k.Active {
			active[k.Alg] = k.KID
		}
	}
	if len(keys) != 4 || active["ES256"] != rotated.KID || active["RS256"] == "" || len(active) != 2 || strings.Contains(body, `"d"`) {
		t.Fatalf("keys after rotation: %s", body)
	}
	if e.Server.Keys.ActiveKID() != rotated.KID {
		t.Fatal("the server does not sign with the rotated key")
	}

	// Audit: per user and type, bounded, with bad input explained.
	var events []struct {
		Type string `json:"type"`
	}
	status, body = call("GET", "/admin/audit?user="+e.UserID+"&type=login&limit=5", nil, &events)
	want(status, body, 200, "audit")
	if len(events) != 1 || events[0].Type != "login" {
		t.Fatalf("audit: %s", body)
	}
	status, body = call("GET", "/admin/audit?since=yesterday", nil, nil)
	want(status, body, 400, "bad since")
	status, body = call("GET", "/admin/audit?limit=0", nil, nil)
	want(status, body, 400, "bad limit")

	// Delete a client: its tokens stop working.
	status, body = call("DELETE", "/admin/clients/reports", nil, nil)
	want(status, body, 204, "delete client")
	wantTokenError(t, e.token(url.Values{"grant_type": {"client_credentials"}}, "reports", created.Secret), 401, "invalid_client")
	status, body = call("DELETE", "/admin/clients/reports", nil, nil)
	want(status, body, 404, "delete twice")

	// The document, and unknown routes.
	var doc map[string]any
	status, body = call("GET", "/admin/openapi.json", nil, &doc)
	want(status, body, 200, "openapi")
	if doc["openapi"] == nil {
		t.Fatal("not an OpenAPI document")
	}
	status, body = call("GET", "/admin/nothing", nil, nil)
	want(status, body, 404, "unknown route")
}

// TestAdminAPIChanges: updating a client, what users granted a client,
// password changes and user deletion, each with its effect on tokens and
// sessions.
func TestAdminAPIChanges(t *testing.T) {
	e := start(t)
	call := func(method, path string, body, out any) int {
		t.Helper()
		status, _ := e.adminCall(method, path, adminToken, body, out)
		return status
	}
	b := e.browser()
	r := e.notesRequest("openid email offline_access")
	tok := e.redeem(b.authorize(r, "email", "offline_access").Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem", tok.Description)

	// Update: new name, same secret.
	var updated struct {
		Name   string `json:"name"`
		Secret string `json:"client_secret"`
	}
	if s := call("PUT", "/admin/clients/notes", map[string]any{"name": "Notes Pro", "redirect_uris": []string{notesRedirect},
		"grant_types": []string{"authorization_code", "refresh_token"}, "scopes": []string{"openid", "email", "offline_access"}}, &updated); s != 200 ||
		updated.Name != "Notes Pro" || updated.Secret != "" {
		t.Fatalf("update client: %d %+v", s, updated)
	}
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != true {
		t.Fatalf("the secret stopped working after an update: %v", in)
	}
	if s := call("PUT", "/admin/clients/notes", map[string]any{"client_id": "other", "redirect_uris": []string{notesRedirect}}, nil); s != 400 {
		t.Fatalf("update renaming the client_id: %d", s)
	}

	// What users granted Notes, and revoking all of it.
	var grants []struct {
		UserID string `json:"user_id"`
	}
	if s := call("GET", "/admin/clients/notes/grants", nil, &grants); s != 200 || len(grants) != 1 || grants[0].UserID != e.UserID {
		t.Fatalf("grants of notes: %d %+v", s, grants)
	}
	var revoked struct {
		Revoked int `json:"revoked"`
	}
	if s := call("DELETE", "/admin/clients/notes/grants", nil, &revoked); s != 200 || revoked.Revoked != 1 {
		t.Fatalf("revoke all grants of notes: %d %+v", s, revoked)
	}
	if in := e.introspect(tok.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatal("token alive after its client's grants were revoked")
	}

	// A new password ends every session; the new password works.
	if s := call("PUT", "/admin/users/"+e.UserID+"/password", map[string]string{"password": "iloveyou"}, nil); s != 400 {
		t.Fatalf("breached password accepted: %d", s)
	}
	if s := call("PUT", "/admin/users/"+e.UserID+"/password", map[string]string{"password": "a brand new passphrase"}, nil); s != 204 {
		t.Fatalf("set password: %d", s)
	}
	if p := b.get("/account"); p.Status != http.StatusFound {
		t.Fatalf("session survived a password change: %d", p.Status)
	}
	if p := b.login(b.get(e.notesRequest("openid").url()).Location, userName, "a brand new passphrase"); p.Status != http.StatusSeeOther {
		t.Fatalf("login with the new password: %d", p.Status)
	}

	// Deleting the user ends its tokens.
	r2 := e.notesRequest("openid email offline_access")
	tok2 := e.redeem(b.authorize(r2, "email", "offline_access").Get("code"), r2)
	if s := call("DELETE", "/admin/users/"+e.UserID, nil, nil); s != 204 {
		t.Fatalf("delete user: %d", s)
	}
	if in := e.introspect(tok2.AccessToken, "notes", e.NotesSecret); in["active"] != false {
		t.Fatal("token of a deleted user still active")
	}
	wantTokenError(t, e.refresh(tok2.RefreshToken), 400, "invalid_grant")
	if s := call("DELETE", "/admin/users/"+e.UserID, nil, nil); s != 404 {
		t.Fatalf("delete twice: %d", s)
	}
}
