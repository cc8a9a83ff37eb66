package e2e

import (
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/registration"
)

type registered struct {
	Status int
	registration.Response
	Error       string `json:"error"`
	Description string `json:"error_description"`
}

// register sends a registration or management request.
func (e *env) register(method, uri, bearer string, body any) registered {
	e.t.Helper()
	if !strings.HasPrefix(uri, "http") {
		uri = e.URL + uri
	}
	status, raw := jsonCall(e.t, method, uri, bearer, body)
	out := registered{Status: status}
	if len(raw) > 0 {
		if err := json.Unmarshal(raw, &out); err != nil {
			e.t.Fatalf("%s %s: %d %s", method, uri, status, raw)
		}
	}
	return out
}

// TestDynamicRegistration plays RFC 7591 and RFC 7592: an app registers
// itself with the initial access token, signs a user in, reads, replaces
// and deletes its registration; the policy refuses what it must.
func TestDynamicRegistration(t *testing.T) {
	e := start(t)
	meta := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "Registered App",
		"grant_types": []string{"authorization_code", "refresh_token"}, "scope": "openid email"}

	if r := e.register("POST", "/register", "", meta); r.Status != 401 || r.Error != "invalid_token" {
		t.Fatalf("registration without the initial access token: %+v", r)
	}
	if r := e.register("POST", "/register", "wrong-token", meta); r.Status != 401 {
		t.Fatalf("registration with a wrong token: %+v", r)
	}
	app := e.register("POST", "/register", registrationToken, meta)
	if app.Status != 201 || app.ClientID == "" || len(app.ClientSecret) < 32 || len(app.RegistrationAccessToken) < 32 ||
		app.RegistrationClientURI != e.URL+"/register/"+app.ClientID || app.TokenEndpointAuthMethod != "client_secret_basic" ||
		app.ClientSecretExpiresAt != 0 || app.ClientIDIssuedAt == 0 || strings.Join(app.ResponseTypes, " ") != "code" {
		t.Fatalf("registration: %+v", app)
	}

	// The new client signs a user in like any other.
	r := authRequest{ClientID: app.ClientID, RedirectURI: "https://app.example/cb", Scope: "openid email", State: "s", Verifier: strings.Repeat("v", 43)}
	b := e.browser()
	p := b.get(r.url())
	p = b.login(p.Location, userName, userPassword)
	consent := b.get(p.Location)
	if !strings.Contains(consent.Body, "Registered App") {
		t.Fatalf("consent page does not name the registered app: %s", consent.Body)
	}
	p = b.consent(p.Location, true, "email")
	code, _ := url.Parse(p.Location)
	tok := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code.Query().Get("code")}, "redirect_uri": {r.RedirectURI},
		"code_verifier": {r.Verifier}}, app.ClientID, app.ClientSecret)
	wantStatus(t, tok.Status, 200, "token of the registered client", tok.Description)

	// Read (RFC 7592 §2.1): no secret, only with its own token.
	got := e.register("GET", app.RegistrationClientURI, app.RegistrationAccessToken, nil)
	if got.Status != 200 || got.ClientName != "Registered App" || got.ClientSecret != "" || got.RegistrationAccessToken != "" {
		t.Fatalf("read: %+v", got)
	}
	if r := e.register("GET", app.RegistrationClientURI, "wrong", nil); r.Status != 401 {
		t.Fatalf("read with a wrong token: %+v", r)
	}
	other := e.register("POST", "/register", registrationToken, meta)
	if r := e.register("GET", other.RegistrationClientURI, app.RegistrationAccessToken, nil); r.Status != 401 {
		t.Fatalf("read of another client with this token: %+v", r)
	}
	if r := e.register("GET", "/register/notes", app.RegistrationAccessToken, nil); r.Status != 401 {
		t.Fatalf("read of an admin-made client: %+v", r)
	}

	// Replace (§2.2): the old redirect URI stops working, the secret stays.
	upd := map[string]any{"client_id": app.ClientID, "redirect_uris": []string{"https://app.example/v2/cb"}, "client_name": "App v2",
		"grant_types": []string{"authorization_code"}, "scope": "openid"}
	if u := e.register("PUT", app.RegistrationClientURI, app.RegistrationAccessToken, upd); u.Status != 200 || u.ClientName != "App v2" || u.ClientSecret != "" {
		t.Fatalf("update: %+v", u)
	}
	if p := e.browser().get(r.url()); p.Status != http.StatusBadRequest {
		t.Fatalf("old redirect URI after update: %d %s", p.Status, p.Location)
	}
	if r := e.token(url.Values{"grant_type": {"client_credentials"}}, app.ClientID, app.ClientSecret); r.Error != "unauthorized_client" {
		t.Fatalf("the secret should survive an update (auth ok, grant not allowed): %+v", r)
	}
	upd["client_id"] = "notes"
	if u := e.register("PUT", app.RegistrationClientURI, app.RegistrationAccessToken, upd); u.Status != 400 {
		t.Fatalf("update naming another client: %+v", u)
	}

	// Policy.
	for name, tc := range map[string]struct {
		meta map[string]any
		code string
	}{
		"client_credentials": {map[string]any{"grant_types": []string{"client_credentials"}}, "invalid_client_metadata"},
		"http redirect":      {map[string]any{"redirect_uris": []string{"http://evil.example/cb"}}, "invalid_redirect_uri"},
		"fragment redirect":  {map[string]any{"redirect_uris": []string{"https://app.example/cb#x"}}, "invalid_redirect_uri"},
		"no redirect":        {map[string]any{"client_name": "x"}, "invalid_redirect_uri"},
		"implicit":           {map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "response_types": []string{"token"}}, "invalid_client_metadata"},
		"unknown scope":      {map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "scope": "openid admin"}, "invalid_client_metadata"},
		"unknown auth":       {map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "token_endpoint_auth_method": "private_key_jwt"}, "invalid_client_metadata"},
	} {
		if r := e.register("POST", "/register", registrationToken, tc.meta); r.Status != 400 || r.Error != tc.code || r.Description == "" {
			t.Errorf("%s: %d %s %s, want 400 %s", name, r.Status, r.Error, r.Description, tc.code)
		}
	}

	// A native app registers as a public client: no secret.
	native := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{"http://127.0.0.1/cb"},
		"token_endpoint_auth_method": "none", "scope": "openid"})
	if native.Status != 201 || native.ClientSecret != "" || native.TokenEndpointAuthMethod != "none" {
		t.Fatalf("public registration: %+v", native)
	}

	// Delete (§2.3): the client is gone.
	if d := e.register("DELETE", app.RegistrationClientURI, app.RegistrationAccessToken, nil); d.Status != 204 {
		t.Fatalf("delete: %+v", d)
	}
	if r := e.token(url.Values{"grant_type": {"client_credentials"}}, app.ClientID, app.ClientSecret); r.Status != 401 {
		t.Fatalf("deleted client authenticates: %+v", r)
	}
	if r := e.register("GET", app.RegistrationClientURI, app.RegistrationAccessToken, nil); r.Status != 401 {
		t.Fatalf("read after delete: %+v", r)
	}

	_, _, disc := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(disc, `"registration_endpoint":"`+e.URL+`/register"`) {
		t.Fatal("discovery lacks registration_endpoint")
	}
}
