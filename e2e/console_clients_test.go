package e2e

import (
	"context"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestConsoleClientEdit: the clients page searches by id, name or
// redirect URI; a client's settings are edited through the admin API's
// update (redirect URIs, scopes, grant types, PAR, DPoP, verified, second
// factor) and its secret stays; a refused setting (a redirect URI of
// plain http, a jwks_uri at an internal address, a JWK Set that is not
// JSON) is shown beside the form and changes nothing; without the CSRF
// token nothing changes.
func TestConsoleClientEdit(t *testing.T) {
	e := start(t)
	makeAdmin(t, e, e.UserID, true)
	b := e.browser()
	csrf := consoleToken(t, e, b)
	ctx := context.Background()

	found := b.get(e.AdminURL + "/console/clients?q=NOTES.example")
	if !strings.Contains(found.Body, `id="client-notes"`) || strings.Contains(found.Body, `id="client-cli"`) {
		t.Fatalf("search by redirect URI: %s", found.Body)
	}
	edit := b.get(e.AdminURL + "/console/clients/notes")
	wantStatus(t, edit.Status, http.StatusOK, "edit page", edit.Body)
	if !strings.Contains(edit.Body, notesRedirect) || strings.Contains(edit.Body, e.NotesSecret) {
		t.Fatalf("edit page: %s", edit.Body)
	}
	before, _ := e.Store.GetClient(ctx, "notes")
	form := url.Values{"csrf_token": {csrf}, "name": {"Notes Two"}, "redirect_uris": {notesRedirect + "\nhttps://notes.example/second"},
		"scopes": {"openid email"}, "grant_types": {"authorization_code refresh_token"}, "auth_method": {"client_secret_basic"},
		"require_par": {"on"}, "verified": {"on"}, "second_factor": {"on"}, "dpop_bound": {"on"}}
	if p := b.post(e.AdminURL+"/console/clients/notes", url.Values{"name": {"Forged"}}); p.Status != http.StatusForbidden {
		t.Fatalf("edit without CSRF token: %d", p.Status)
	}
	for name, change := range map[string][2]string{
		"plain http redirect": {"redirect_uris", "http://notes.example/cb"},
		"internal jwks_uri":   {"jwks_uri", "https://127.0.0.1/jwks"},
		"jwks not JSON":       {"jwks", "{not json"},
	} {
		bad := url.Values{}
		for k, v := range form {
			bad[k] = v
		}
		bad.Set(change[0], change[1])
		p := b.post(e.AdminURL+"/console/clients/notes", bad)
		if p.Status != http.StatusBadRequest || !strings.Contains(p.Body, `id="error"`) || !strings.Contains(p.Body, "Notes Two") {
			t.Fatalf("%s: %d %s", name, p.Status, p.Body)
		}
	}
	if c, _ := e.Store.GetClient(ctx, "notes"); c.Name != before.Name || c.RequirePAR {
		t.Fatalf("a refused or forged edit changed the client: %+v", c)
	}
	if p := b.post(e.AdminURL+"/console/clients/notes", form); p.Status != http.StatusSeeOther {
		t.Fatalf("save: %d %s", p.Status, p.Body)
	}
	c, err := e.Store.GetClient(ctx, "notes")
	if err != nil || c.Name != "Notes Two" || len(c.RedirectURIs) != 2 || !c.RequirePAR || !c.Verified || !c.SecondFactor || !c.DPoPBound ||
		strings.Join(c.Scopes, " ") != "openid email" || c.SecretHash != storage.Hash(e.NotesSecret) {
		t.Fatalf("saved client: %v %+v", err, c)
	}
	// The DPoP requirement (RFC 9449 §5.2) shows ticked, and unticking it
	// clears it.
	if p := b.get(e.AdminURL + "/console/clients/notes"); !strings.Contains(p.Body, `name="dpop_bound" checked`) {
		t.Fatalf("edit page of a DPoP-bound client: %s", p.Body)
	}
	form.Del("dpop_bound")
	if p := b.post(e.AdminURL+"/console/clients/notes", form); p.Status != http.StatusSeeOther {
		t.Fatalf("save without dpop_bound: %d %s", p.Status, p.Body)
	}
	if c, _ := e.Store.GetClient(ctx, "notes"); c.DPoPBound || !c.RequirePAR {
		t.Fatalf("unticking Require DPoP: %+v", c)
	}
	if p := b.get(e.AdminURL + "/console/clients/notes"); !strings.Contains(p.Body, `name="dpop_bound">`) {
		t.Fatalf("edit page of a client without DPoP: %s", p.Body)
	}
	// The console's own client: its second factor may be required, its
	// sign-in (callbacks, confidential with its secret, code flow) stays.
	ownBefore, _ := e.Store.GetClient(ctx, "bawwab-console")
	own := url.Values{"csrf_token": {csrf}, "name": {"bawwab admin console"}, "redirect_uris": {"https://evil.example/cb"},
		"scopes": {"openid"}, "grant_types": {"client_credentials"}, "auth_method": {"client_secret_basic"}, "verified": {"on"}, "second_factor": {"on"},
		"dpop_bound": {"on"}}
	if p := b.post(e.AdminURL+"/console/clients/bawwab-console", own); p.Status != http.StatusSeeOther {
		t.Fatalf("edit the console's client: %d %s", p.Status, p.Body)
	}
	if c, _ := e.Store.GetClient(ctx, "bawwab-console"); !c.SecondFactor || c.Public || c.DPoPBound || c.SecretHash != ownBefore.SecretHash || strings.Contains(strings.Join(c.RedirectURIs, " "), "evil") ||
		strings.Join(c.GrantTypes, " ") != "authorization_code" {
		t.Fatalf("the console's client after editing: %+v", c)
	}
	if p := b.get(e.AdminURL + "/console/clients/nobody"); p.Status != http.StatusNotFound {
		t.Fatalf("no such client: %d", p.Status)
	}
}
