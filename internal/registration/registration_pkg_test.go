package registration

import (
	"context"
	"encoding/json"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

type regEnv struct {
	t     *testing.T
	e     *Endpoint
	mux   *http.ServeMux
	store storage.Storage
}

func newRegEnv(t *testing.T, mode string) *regEnv {
	t.Helper()
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	e := &Endpoint{Store: s, Scopes: scope.Default(), Issuer: "https://issuer.example", Log: slog.New(slog.DiscardHandler), Now: time.Now,
		Mode: mode, InitialToken: "initial-token", Outbound: outbound.New(outbound.Options{})}
	mux := http.NewServeMux()
	e.Register(mux)
	return &regEnv{t: t, e: e, mux: mux, store: s}
}

func (r *regEnv) do(method, path, bearer, body string) (int, map[string]any) {
	r.t.Helper()
	req := httptest.NewRequest(method, path, strings.NewReader(body))
	req.Header.Set("Content-Type", "application/json")
	if bearer != "" {
		req.Header.Set("Authorization", "Bearer "+bearer)
	}
	rec := httptest.NewRecorder()
	r.mux.ServeHTTP(rec, req)
	var out map[string]any
	if rec.Body.Len() > 0 {
		_ = json.Unmarshal(rec.Body.Bytes(), &out)
	}
	return rec.Code, out
}

// TestRegister pins dynamic client registration (RFC 7591 §3.2): each row
// metadata and the error (§3.2.2) or the registered client.
func TestRegister(t *testing.T) {
	r := newRegEnv(t, Open)
	tests := []struct {
		name       string
		body       string
		wantStatus int
		wantErr    string
		wantDesc   string
	}{
		{"not JSON", `redirect_uris=x`, 400, InvalidClientMetadata, "JSON object"},
		{"client_credentials", `{"redirect_uris":["https://a.example/cb"],"grant_types":["client_credentials"]}`, 400, InvalidClientMetadata, "cannot be registered"},
		{"token exchange", `{"redirect_uris":["https://a.example/cb"],"grant_types":["urn:ietf:params:oauth:grant-type:token-exchange"]}`, 400, InvalidClientMetadata, "cannot be registered"},
		{"implicit", `{"redirect_uris":["https://a.example/cb"],"response_types":["token"]}`, 400, InvalidClientMetadata, "only the code response type"},
		{"unknown auth method", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"tls_client_auth"}`, 400, InvalidClientMetadata, "token_endpoint_auth_method must be"},
		{"no redirect URI", `{"client_name":"x"}`, 400, InvalidRedirectURI, "needs redirect_uris"},
		{"http redirect URI", `{"redirect_uris":["http://a.example/cb"]}`, 400, InvalidRedirectURI, "is not allowed"},
		{"bad subject type", `{"redirect_uris":["https://a.example/cb"],"subject_type":"secret"}`, 400, InvalidClientMetadata, "subject_type"},
		{"bad ID token alg", `{"redirect_uris":["https://a.example/cb"],"id_token_signed_response_alg":"none"}`, 400, InvalidClientMetadata, "id_token_signed_response_alg"},
		{"nonce instead, not allowed here", `{"redirect_uris":["https://a.example/cb"],"pkce_policy":"nonce_instead"}`, 400, InvalidClientMetadata, "not allowed here"},
		{"unknown PKCE policy", `{"redirect_uris":["https://a.example/cb"],"pkce_policy":"never"}`, 400, InvalidClientMetadata, "pkce_policy"},
		{"malformed scope", `{"redirect_uris":["https://a.example/cb"],"scope":"open\"id"}`, 400, InvalidClientMetadata, "not allowed by RFC 6749"},
		{"unknown scope", `{"redirect_uris":["https://a.example/cb"],"scope":"openid admin"}`, 400, InvalidClientMetadata, "unknown scope admin"},
		{"jwks_uri at an internal address", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"private_key_jwt","jwks_uri":"https://10.1.2.3/jwks"}`,
			400, InvalidClientMetadata, "jwks_uri"},
		{"http logo", `{"redirect_uris":["https://a.example/cb"],"logo_uri":"http://a.example/l.png"}`, 400, InvalidClientMetadata, "logo_uri"},
		{"confidential", `{"redirect_uris":["https://a.example/cb"],"client_name":"Notes","scope":"openid profile"}`, 201, "", ""},
		{"public", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`, 201, "", ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := r.do("POST", "/register", "", tt.body)
			if status != tt.wantStatus || tt.wantErr != "" && (body["error"] != tt.wantErr || !strings.Contains(body["error_description"].(string), tt.wantDesc)) {
				t.Fatalf("got %d %v, want %d %s mentioning %q", status, body, tt.wantStatus, tt.wantErr, tt.wantDesc)
			}
			if tt.wantErr != "" {
				return
			}
			id, _ := body["client_id"].(string)
			c, err := r.store.GetClient(context.Background(), id)
			if err != nil || body["registration_access_token"] == "" || body["registration_client_uri"] != "https://issuer.example/register/"+id ||
				c.RegistrationTokenHash != storage.Hash(body["registration_access_token"].(string)) {
				t.Fatalf("response %v, stored %+v, %v", body, c, err)
			}
			public := body["token_endpoint_auth_method"] == "none"
			if public != c.Public || (body["client_secret"] == nil) != public || !public && c.SecretHash != storage.Hash(body["client_secret"].(string)) {
				t.Fatalf("secret %v for client %+v", body["client_secret"], c)
			}
			if body["pkce_policy"] != "required" || body["subject_type"] != "public" || body["dpop_bound_access_tokens"] != false || c.DPoPBound {
				t.Fatalf("defaults %v", body)
			}
		})
	}
}

// TestManage pins RFC 7592: a registered client reads, updates and
// deletes itself with its registration access token, and nobody else can.
func TestManage(t *testing.T) {
	r := newRegEnv(t, Open)
	_, created := r.do("POST", "/register", "", `{"redirect_uris":["https://a.example/cb"],"client_name":"Notes"}`)
	id, tok, secret := created["client_id"].(string), created["registration_access_token"].(string), created["client_secret"].(string)
	_, other := r.do("POST", "/register", "", `{"redirect_uris":["https://b.example/cb"]}`)
	otherTok := other["registration_access_token"].(string)
	path := "/register/" + id
	tests := []struct {
		name, method, bearer, body string
		wantStatus                 int
		wantErr                    string
	}{
		{"read without token", "GET", "", "", 401, oautherr.InvalidToken},
		{"read with another client's token", "GET", otherTok, "", 401, oautherr.InvalidToken},
		{"read", "GET", tok, "", 200, ""},
		{"update not JSON", "PUT", tok, "x", 400, InvalidClientMetadata},
		{"update another client_id", "PUT", tok, `{"client_id":"someone","redirect_uris":["https://a.example/cb"]}`, 400, InvalidClientMetadata},
		{"update invalid", "PUT", tok, `{"client_id":"` + id + `","redirect_uris":["http://a.example/cb"]}`, 400, InvalidRedirectURI},
		{"update", "PUT", tok, `{"client_id":"` + id + `","redirect_uris":["https://a.example/new"],"client_name":"Renamed"}`, 200, ""},
		{"delete with another client's token", "DELETE", otherTok, "", 401, oautherr.InvalidToken},
		{"delete", "DELETE", tok, "", 204, ""},
		{"read after delete", "GET", tok, "", 401, oautherr.InvalidToken},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := r.do(tt.method, path, tt.bearer, tt.body)
			if status != tt.wantStatus || tt.wantErr != "" && body["error"] != tt.wantErr {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantErr)
			}
			if tt.name == "read" && (body["client_secret"] != nil || body["client_name"] != "Notes") {
				t.Fatalf("read %v: want the metadata without the secret", body)
			}
			if tt.name == "update" {
				c, err := r.store.GetClient(context.Background(), id)
				if err != nil || c.Name != "Renamed" || c.RedirectURIs[0] != "https://a.example/new" || c.SecretHash != storage.Hash(secret) ||
					c.RegistrationTokenHash != storage.Hash(tok) {
					t.Fatalf("after update %+v, %v: want new metadata, the same secret and token", c, err)
				}
			}
		})
	}
}

// TestModes: off registers no route; token mode needs the initial
// access token (RFC 7591 §3).
func TestModes(t *testing.T) {
	body := `{"redirect_uris":["https://a.example/cb"]}`
	tests := []struct {
		name, mode, bearer string
		wantStatus         int
	}{
		{"off", Off, "", 404},
		{"unset", "", "", 404},
		{"token, none sent", Token, "", 401},
		{"token, wrong", Token, "guess", 401},
		{"token, right", Token, "initial-token", 201},
		{"open", Open, "", 201},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := newRegEnv(t, tt.mode)
			req := httptest.NewRequest("POST", "/register", strings.NewReader(body))
			if tt.bearer != "" {
				req.Header.Set("Authorization", "Bearer "+tt.bearer)
			}
			rec := httptest.NewRecorder()
			r.mux.ServeHTTP(rec, req)
			if rec.Code != tt.wantStatus {
				t.Fatalf("got %d %s, want %d", rec.Code, rec.Body, tt.wantStatus)
			}
		})
	}
	// An empty initial token never matches an empty bearer.
	r := newRegEnv(t, Token)
	r.e.InitialToken = ""
	if status, _ := r.do("POST", "/register", "", body); status != 401 {
		t.Fatalf("token mode without a configured token: %d", status)
	}
}

// TestDPoPBoundMetadata: dpop_bound_access_tokens (RFC 9449 §5.2) is
// client metadata: registered, stored, stated in every response (false
// too), and set by an RFC 7592 update; an update never clears it, neither
// by false nor by leaving it out (whoever stole the registration access
// token must not turn the protection off first): only the operator does.
func TestDPoPBoundMetadata(t *testing.T) {
	r := newRegEnv(t, Open)
	_, created := r.do("POST", "/register", "", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none","dpop_bound_access_tokens":true}`)
	id, _ := created["client_id"].(string)
	tok, _ := created["registration_access_token"].(string)
	if created["dpop_bound_access_tokens"] != true {
		t.Fatalf("registration response %v: want dpop_bound_access_tokens true", created)
	}
	update := func(more string) string {
		return `{"client_id":"` + id + `","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"` + more + `}`
	}
	tests := []struct {
		name, method, body string
		wantStatus         int
		wantErr            string
		want               bool
	}{
		{"read", "GET", "", 200, "", true},
		{"update clearing it", "PUT", update(`,"dpop_bound_access_tokens":false`), 200, "", true},
		{"read after the update", "GET", "", 200, "", true},
		{"not a boolean", "PUT", update(`,"dpop_bound_access_tokens":"yes"`), 400, InvalidClientMetadata, true},
		{"update without it", "PUT", update(""), 200, "", true},
		{"read after an update without it", "GET", "", 200, "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			status, body := r.do(tt.method, "/register/"+id, tok, tt.body)
			if status != tt.wantStatus || body["error"] != nil && body["error"] != tt.wantErr {
				t.Fatalf("got %d %v, want %d %s", status, body, tt.wantStatus, tt.wantErr)
			}
			if tt.wantErr == "" && body["dpop_bound_access_tokens"] != tt.want {
				t.Fatalf("response %v: want dpop_bound_access_tokens %v", body, tt.want)
			}
			c, err := r.store.GetClient(context.Background(), id)
			if err != nil || c.DPoPBound != tt.want {
				t.Fatalf("stored %+v, %v: want DPoPBound %v", c, err, tt.want)
			}
		})
	}
}

// TestUpdateKeepsRequirements: an RFC 7592 update may add the pushed
// request and DPoP requirements but never remove them, whether it says
// false or leaves them out.
func TestUpdateKeepsRequirements(t *testing.T) {
	r := newRegEnv(t, Open)
	_, created := r.do("POST", "/register", "", `{"redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"}`)
	id, _ := created["client_id"].(string)
	tok, _ := created["registration_access_token"].(string)
	body := func(more string) string {
		return `{"client_id":"` + id + `","redirect_uris":["https://a.example/cb"],"token_endpoint_auth_method":"none"` + more + `}`
	}
	for _, tt := range []struct {
		name      string
		more      string
		par, dpop bool
	}{
		{"neither", "", false, false},
		{"adds pushed requests", `,"require_pushed_authorization_requests":true`, true, false},
		{"adds DPoP, leaves pushed requests out", `,"dpop_bound_access_tokens":true`, true, true},
		{"says false to both", `,"require_pushed_authorization_requests":false,"dpop_bound_access_tokens":false`, true, true},
		{"leaves both out", "", true, true},
	} {
		if status, got := r.do("PUT", "/register/"+id, tok, body(tt.more)); status != 200 {
			t.Fatalf("%s: %d %v", tt.name, status, got)
		}
		c, err := r.store.GetClient(context.Background(), id)
		if err != nil || c.RequirePAR != tt.par || c.DPoPBound != tt.dpop {
			t.Fatalf("%s: stored %+v, %v; want PAR %v, DPoP %v", tt.name, c, err, tt.par, tt.dpop)
		}
	}
}
