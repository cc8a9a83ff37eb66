package e2e

import (
	"context"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/scope"
)

type parResult struct {
	Status      int
	RequestURI  string `json:"request_uri"`
	ExpiresIn   int    `json:"expires_in"`
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

func (e *env) push(form url.Values, user, pass string) parResult {
	e.t.Helper()
	status, h, body := e.post("/par", form, user, pass)
	var r parResult
	if err := json.Unmarshal(body, &r); err != nil {
		e.t.Fatalf("/par: %d %s", status, body)
	}
	if h.Get("Cache-Control") != "no-store" {
		e.t.Fatalf("/par answer is cacheable: %v", h)
	}
	r.Status = status
	return r
}

// TestPAR plays RFC 9126: the client pushes its request over the back
// channel, the browser carries only a short-lived, single-use request_uri,
// and a client marked "PAR required" cannot send its requests any other way.
func TestPAR(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email")
	pushed := e.push(r.query(), "notes", e.NotesSecret)
	if pushed.Status != http.StatusCreated || !strings.HasPrefix(pushed.RequestURI, "urn:ietf:params:oauth:request_uri:") || pushed.ExpiresIn != 60 {
		t.Fatalf("/par: %+v", pushed)
	}
	// The browser sends only client_id and request_uri; anything else in
	// the query is ignored (here a redirect_uri an attacker added).
	front := url.Values{"client_id": {"notes"}, "request_uri": {pushed.RequestURI}, "redirect_uri": {"https://evil.example/cb"}}
	b := e.browser()
	p := b.get("/authorize?" + front.Encode())
	if !strings.HasPrefix(p.Location, "/login") {
		t.Fatalf("authorize with request_uri: %d %s", p.Status, p.Location)
	}
	p = b.login(p.Location, userName, userPassword)
	p = b.consent(p.Location, true, "email")
	cb, _ := url.Parse(p.Location)
	if !strings.HasPrefix(p.Location, notesRedirect) || cb.Query().Get("state") != r.State || cb.Query().Get("iss") != e.URL {
		t.Fatalf("callback: %s", p.Location)
	}
	tok := e.redeem(cb.Query().Get("code"), r)
	wantStatus(t, tok.Status, 200, "redeem the code of a pushed request", tok.Description)

	// Single use.
	if p := e.browser().get("/authorize?" + front.Encode()); p.Status != http.StatusBadRequest {
		t.Fatalf("request_uri used twice: %d %s", p.Status, p.Location)
	}
	// Short-lived.
	late := e.push(e.notesRequest("openid").query(), "notes", e.NotesSecret)
	e.Clock.Advance(61 * time.Second)
	if p := e.browser().get("/authorize?" + url.Values{"client_id": {"notes"}, "request_uri": {late.RequestURI}}.Encode()); p.Status != http.StatusBadRequest {
		t.Fatalf("expired request_uri: %d", p.Status)
	}
	// Bound to the client that pushed it.
	mine := e.push(e.notesRequest("openid").query(), "notes", e.NotesSecret)
	if p := e.browser().get("/authorize?" + url.Values{"client_id": {"cli"}, "request_uri": {mine.RequestURI}}.Encode()); p.Status != http.StatusBadRequest {
		t.Fatalf("request_uri of another client: %d", p.Status)
	}

	// /par validates like /authorize, and answers in JSON.
	bad := r.query()
	bad.Del("code_challenge")
	if res := e.push(bad, "notes", e.NotesSecret); res.Status != 400 || res.Error != "invalid_request" {
		t.Fatalf("push without PKCE: %+v", res)
	}
	if res := e.push(r.query(), "notes", "wrong"); res.Status != 401 || res.Error != "invalid_client" {
		t.Fatalf("push with a wrong secret: %+v", res)
	}
	withURI := r.query()
	withURI.Set("request_uri", "urn:x")
	if res := e.push(withURI, "notes", e.NotesSecret); res.Status != 400 || res.Error != "invalid_request" {
		t.Fatalf("pushed request_uri: %+v", res)
	}
	otherRedirect := r.query()
	otherRedirect.Set("redirect_uri", "https://evil.example/cb")
	if res := e.push(otherRedirect, "notes", e.NotesSecret); res.Status != 400 {
		t.Fatalf("push with an unregistered redirect_uri: %+v", res)
	}

	// A client that must use PAR: front-channel requests are refused.
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "bank", Name: "Bank", RedirectURIs: []string{"https://bank.example/cb"},
		Scopes: []string{"openid"}, RequirePAR: true, Secret: "bank-secret-for-tests-0123456789"}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	direct := authRequest{ClientID: "bank", RedirectURI: "https://bank.example/cb", Scope: "openid", State: "s", Verifier: strings.Repeat("v", 43)}
	p = e.browser().get(direct.url())
	if q, _ := url.Parse(p.Location); !strings.HasPrefix(p.Location, "https://bank.example/cb") || q.Query().Get("error") != "invalid_request" {
		t.Fatalf("front-channel request of a PAR-only client: %d %s", p.Status, p.Location)
	}
	if res := e.push(direct.query(), "bank", "bank-secret-for-tests-0123456789"); res.Status != http.StatusCreated {
		t.Fatalf("pushed request of a PAR-only client: %+v", res)
	}

	_, _, meta := getBody(t, e.URL+"/.well-known/oauth-authorization-server")
	if !strings.Contains(meta, `"pushed_authorization_request_endpoint":"`+e.URL+`/par"`) {
		t.Fatalf("discovery lacks PAR: %s", meta)
	}
}
