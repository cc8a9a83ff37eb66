package token

import (
	"cmp"
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"fmt"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/url"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"
	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// The tests of this file drive POST /token through the Endpoint's own mux,
// as a client would, on a real SQLite store: one table per grant, each row
// a request and the RFC 6749 §5.2 error (code and status) it must get.

const (
	tIssuer   = "https://issuer.example"
	tTokenURL = tIssuer + "/token"
	tAPI      = "https://api.example"
	tRedirect = "https://app.example/cb"
	tVerifier = "dBjftJeZ4CVP-mB92K27uhbUJU1p1r_wW1gFWFOEjXk" // RFC 7636 appendix B
)

// tokenEnv is a token endpoint on a store (SQLite unless said) with a user, clients of each
// kind and a clock the test moves.
type tokenEnv struct {
	t      *testing.T
	store  storage.Storage
	issuer *Issuer
	mux    *http.ServeMux
	now    time.Time
	// secrets of the confidential clients, by id
	secrets map[string]string
}

func newTokenEnv(t *testing.T) *tokenEnv {
	t.Helper()
	s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	return newTokenEnvOn(t, s)
}

// newTokenEnvOn is newTokenEnv on the store s, empty.
func newTokenEnvOn(t *testing.T, s storage.Storage) *tokenEnv {
	t.Helper()
	ctx := context.Background()
	e := &tokenEnv{t: t, store: s, now: time.Now().Truncate(time.Second), secrets: map[string]string{}}
	clock := func() time.Time { return e.now }
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), clock, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	e.issuer = &Issuer{URL: tIssuer, Audience: []string{tAPI, "https://other-api.example"}, Keys: keys, Store: s, Scopes: scope.Default(),
		AccessTTL: time.Minute, RefreshTTL: time.Hour, GrantTTL: 24 * time.Hour, IDTokenTTL: time.Minute, Now: clock,
		PairwiseKey: []byte("pairwise-key-of-the-test-0123456")}
	all := []string{"authorization_code", "refresh_token", "client_credentials", DeviceCodeGrantType, TokenExchangeGrantType}
	clients := []storage.Client{
		{ID: "web", GrantTypes: all, RedirectURIs: []string{tRedirect}, Scopes: []string{"openid", "profile", "email", "offline_access", "files.read"}},
		{ID: "web2", GrantTypes: all, RedirectURIs: []string{tRedirect}, Scopes: []string{"openid", "files.read"}},
		{ID: "spa", Public: true, GrantTypes: []string{"authorization_code", "refresh_token", DeviceCodeGrantType, "client_credentials", TokenExchangeGrantType},
			RedirectURIs: []string{tRedirect}, Scopes: []string{"openid", "offline_access"}},
		{ID: "svc", GrantTypes: []string{"client_credentials"}, Scopes: []string{"files.read"}},
	}
	for _, c := range clients {
		if !c.Public {
			var secret string
			secret, c.SecretHash = clientauth.NewSecret()
			e.secrets[c.ID] = secret
		}
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	if err := s.CreateUser(ctx, storage.User{ID: "u1", Username: "amal", Name: "Amal", Email: "amal@example.com", EmailVerified: true, CreatedAt: e.now}); err != nil {
		t.Fatal(err)
	}
	auth := &clientauth.Authenticator{Store: s, Now: clock, Audiences: []string{tIssuer, tTokenURL}}
	ep := NewEndpoint(auth, slog.New(slog.DiscardHandler),
		AuthorizationCode{Issuer: e.issuer}, RefreshToken{Issuer: e.issuer}, ClientCredentials{Issuer: e.issuer},
		DeviceCode{Issuer: e.issuer}, TokenExchange{Issuer: e.issuer})
	ep.DPoP = &dpop.Checker{Replays: s, Now: clock}
	ep.URL = tTokenURL
	e.mux = http.NewServeMux()
	ep.Register(e.mux)
	return e
}

// tokenReply is a decoded answer of the token endpoint.
type tokenReply struct {
	Status           int
	Error            string `json:"error"`
	ErrorDescription string `json:"error_description"`
	AccessToken      string `json:"access_token"`
	TokenType        string `json:"token_type"`
	RefreshToken     string `json:"refresh_token"`
	IDToken          string `json:"id_token"`
	Scope            string `json:"scope"`
	IssuedTokenType  string `json:"issued_token_type"`
}

// post sends form to /token as client (its secret in HTTP Basic when it
// has one, else client_id in the body), with the DPoP proof when set.
func (e *tokenEnv) post(client string, form url.Values, proof string) tokenReply {
	e.t.Helper()
	body := url.Values{}
	for k, v := range form {
		body[k] = v
	}
	req := httptest.NewRequest("POST", tTokenURL, strings.NewReader(body.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if secret, ok := e.secrets[client]; ok {
		req.SetBasicAuth(client, secret)
	} else if client != "" {
		q, _ := url.ParseQuery(body.Encode())
		q.Set("client_id", client)
		req = httptest.NewRequest("POST", tTokenURL, strings.NewReader(q.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	}
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	return e.do(req)
}

func (e *tokenEnv) do(req *http.Request) tokenReply {
	e.t.Helper()
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, req)
	var r tokenReply
	if err := json.Unmarshal(rec.Body.Bytes(), &r); err != nil {
		e.t.Fatalf("token endpoint answered %d with a body that is not JSON: %q", rec.Code, rec.Body)
	}
	r.Status = rec.Code
	if got := rec.Header().Get("Cache-Control"); got != "no-store" {
		e.t.Errorf("Cache-Control = %q, want no-store (RFC 6749 section 5.1)", got)
	}
	return r
}

// check compares a reply with the wanted error code and status (or, with
// an empty want, success), and that the description mentions wantDesc.
func (r tokenReply) check(t *testing.T, wantErr string, wantStatus int, wantDesc string) {
	t.Helper()
	if r.Error != wantErr || r.Status != wantStatus {
		t.Fatalf("got %d %q (%s), want %d %q", r.Status, r.Error, r.ErrorDescription, wantStatus, wantErr)
	}
	if wantErr != "" && !strings.Contains(r.ErrorDescription, wantDesc) {
		t.Fatalf("error_description %q does not mention %q", r.ErrorDescription, wantDesc)
	}
	if wantErr == "" && r.AccessToken == "" {
		t.Fatalf("success without an access_token: %+v", r)
	}
}

// dpopKey signs DPoP proofs (RFC 9449 §4.2) for one key.
type dpopKey struct {
	priv *ecdsa.PrivateKey
	jkt  string
}

func newDPoPKey(t *testing.T) *dpopKey {
	t.Helper()
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	tp, err := (&jose.JSONWebKey{Key: k.Public()}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return &dpopKey{priv: k, jkt: base64.RawURLEncoding.EncodeToString(tp)}
}

func (k *dpopKey) proof(t *testing.T, now time.Time) string {
	t.Helper()
	opts := (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt")
	sig, err := jose.NewSigner(jose.SigningKey{Algorithm: jose.ES256, Key: k.priv}, opts)
	if err != nil {
		t.Fatal(err)
	}
	raw, err := jwt.Signed(sig).Claims(map[string]any{"jti": NewID(), "htm": "POST", "htu": tTokenURL, "iat": now.Unix()}).Serialize()
	if err != nil {
		t.Fatal(err)
	}
	return raw
}

// code stores an authorization code for web, u1, openid profile, with
// the RFC 7636 verifier, changed by mod, and returns it.
func (e *tokenEnv) code(mod func(*storage.AuthCode)) string {
	e.t.Helper()
	raw := NewOpaque()
	c := storage.AuthCode{Hash: storage.Hash(raw), GrantID: NewID(), ClientID: "web", UserID: "u1", RedirectURI: tRedirect,
		Scopes: []string{"openid", "profile"}, Nonce: "n-0S6_WzA2Mj", CodeChallenge: S256(tVerifier), CodeChallengeMethod: PKCEMethodS256,
		AuthTime: e.now, CreatedAt: e.now, ExpiresAt: e.now.Add(time.Minute)}
	if mod != nil {
		mod(&c)
	}
	if err := e.store.CreateAuthCode(context.Background(), c); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

func codeForm(code string) url.Values {
	return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {tRedirect}, "code_verifier": {tVerifier}}
}

func (e *tokenEnv) grantRevoked(id string) bool {
	e.t.Helper()
	g, err := e.store.GetGrant(context.Background(), id)
	if err != nil {
		e.t.Fatalf("grant %s: %v", id, err)
	}
	return !g.RevokedAt.IsZero()
}

// TestEndpointRequestErrors pins what the endpoint itself refuses before
// any grant runs (RFC 6749 §3.2, §5.2).
func TestEndpointRequestErrors(t *testing.T) {
	e := newTokenEnv(t)
	basic := func(form string, ct string) *http.Request {
		r := httptest.NewRequest("POST", tTokenURL, strings.NewReader(form))
		r.Header.Set("Content-Type", ct)
		r.SetBasicAuth("web", e.secrets["web"])
		return r
	}
	const formCT = "application/x-www-form-urlencoded"
	tests := []struct {
		name       string
		req        *http.Request
		wantErr    string
		wantStatus int
		wantDesc   string
	}{
		{"JSON body", basic(`{"grant_type":"client_credentials"}`, "application/json"), oautherr.InvalidRequest, 400, "x-www-form-urlencoded"},
		{"no content type", basic("grant_type=client_credentials", ""), oautherr.InvalidRequest, 400, "x-www-form-urlencoded"},
		{"form with charset", basic("grant_type=client_credentials", formCT+"; charset=utf-8"), "", 200, ""},
		{"repeated grant_type", basic("grant_type=client_credentials&grant_type=client_credentials", formCT), oautherr.InvalidRequest, 400, "more than once"},
		{"repeated scope", basic("grant_type=client_credentials&scope=a&scope=b", formCT), oautherr.InvalidRequest, 400, "scope appears more than once"},
		{"body too large", basic("grant_type=client_credentials&x="+strings.Repeat("a", MaxFormBytes), formCT), oautherr.InvalidRequest, 400, "too large"},
		{"missing grant_type", basic("scope=files.read", formCT), oautherr.InvalidRequest, 400, "grant_type is required"},
		{"unknown grant_type", basic("grant_type=password", formCT), oautherr.UnsupportedGrantType, 400, `'password' is not supported`},
		{"wrong secret", func() *http.Request {
			r := basic("grant_type=client_credentials", formCT)
			r.SetBasicAuth("web", "not-the-secret")
			return r
		}(), oautherr.InvalidClient, 401, "wrong credentials"},
		{"no client authentication", func() *http.Request {
			r := httptest.NewRequest("POST", tTokenURL, strings.NewReader("grant_type=client_credentials"))
			r.Header.Set("Content-Type", formCT)
			return r
		}(), oautherr.InvalidClient, 401, "client authentication is missing"},
		{"grant type not allowed to the client", func() *http.Request {
			r := basic("grant_type=refresh_token&refresh_token=x", formCT)
			r.SetBasicAuth("svc", e.secrets["svc"])
			return r
		}(), oautherr.UnauthorizedClient, 400, "not allowed the refresh_token grant"},
		{"malformed DPoP proof", func() *http.Request {
			r := basic("grant_type=client_credentials", formCT)
			r.Header.Set("DPoP", "not-a-jwt")
			return r
		}(), dpop.InvalidProof, 400, "DPoP proof"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.do(tt.req).check(t, tt.wantErr, tt.wantStatus, tt.wantDesc)
		})
	}
}

// TestEndpointBasicChallenge: invalid_client after HTTP Basic carries a
// WWW-Authenticate challenge (RFC 6749 §5.2).
func TestEndpointBasicChallenge(t *testing.T) {
	e := newTokenEnv(t)
	r := httptest.NewRequest("POST", tTokenURL, strings.NewReader("grant_type=client_credentials"))
	r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	r.SetBasicAuth("web", "wrong")
	rec := httptest.NewRecorder()
	e.mux.ServeHTTP(rec, r)
	if rec.Code != 401 || !strings.HasPrefix(rec.Header().Get("WWW-Authenticate"), "Basic ") {
		t.Fatalf("got %d, WWW-Authenticate %q; want 401 with a Basic challenge", rec.Code, rec.Header().Get("WWW-Authenticate"))
	}
}

func TestGrantTypes(t *testing.T) {
	tests := []struct {
		name   string
		grants []Grant
		want   string
	}{
		{"none", nil, ""},
		{"all, in a fixed order", []Grant{TokenExchange{}, DeviceCode{}, ClientCredentials{}, RefreshToken{}, AuthorizationCode{}},
			"authorization_code refresh_token client_credentials " + DeviceCodeGrantType + " " + TokenExchangeGrantType},
		{"two", []Grant{ClientCredentials{}, AuthorizationCode{}}, "authorization_code client_credentials"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if got := strings.Join(NewEndpoint(nil, nil, tt.grants...).GrantTypes(), " "); got != tt.want {
				t.Fatalf("GrantTypes = %q, want %q", got, tt.want)
			}
		})
	}
}

// TestAuthorizationCodeGrant pins each error branch of the
// authorization_code grant (RFC 6749 §4.1.3, RFC 7636 §4.6, RFC 8707,
// RFC 9449 §10).
func TestAuthorizationCodeGrant(t *testing.T) {
	e := newTokenEnv(t)
	key := newDPoPKey(t)
	tests := []struct {
		name       string
		client     string
		form       func() url.Values
		proof      bool
		wantErr    string
		wantStatus int
		wantDesc   string
	}{
		{"missing code", "web", func() url.Values { f := codeForm(""); f.Del("code"); return f }, false, oautherr.InvalidRequest, 400, "code is required"},
		{"missing redirect_uri", "web", func() url.Values { f := codeForm(e.code(nil)); f.Del("redirect_uri"); return f }, false,
			oautherr.InvalidRequest, 400, "redirect_uri is required"},
		{"missing code_verifier", "web", func() url.Values { f := codeForm(e.code(nil)); f.Del("code_verifier"); return f }, false,
			oautherr.InvalidRequest, 400, "requires PKCE"},
		{"code_verifier too short", "web", func() url.Values { f := codeForm(e.code(nil)); f.Set("code_verifier", "short"); return f }, false,
			oautherr.InvalidRequest, 400, "43 to 128 characters"},
		{"code_verifier with a bad character", "web", func() url.Values {
			f := codeForm(e.code(nil))
			f.Set("code_verifier", strings.Repeat("a", 42)+"+")
			return f
		}, false, oautherr.InvalidRequest, 400, "43 to 128 characters"},
		{"unknown code", "web", func() url.Values { return codeForm("no-such-code") }, false, oautherr.InvalidGrant, 400, "unknown or expired"},
		{"code of another client", "web2", func() url.Values { return codeForm(e.code(nil)) }, false, oautherr.InvalidGrant, 400, "another client"},
		{"expired code", "web", func() url.Values {
			return codeForm(e.code(func(c *storage.AuthCode) { c.ExpiresAt = e.now }))
		}, false, oautherr.InvalidGrant, 400, "expired"},
		{"other redirect_uri", "web", func() url.Values {
			f := codeForm(e.code(nil))
			f.Set("redirect_uri", "https://app.example/other")
			return f
		}, false, oautherr.InvalidGrant, 400, "redirect_uri does not match"},
		{"wrong code_verifier", "web", func() url.Values {
			f := codeForm(e.code(nil))
			f.Set("code_verifier", strings.Repeat("b", 43))
			return f
		}, false, oautherr.InvalidGrant, 400, "does not match the code_challenge"},
		{"DPoP-bound code without a proof", "web", func() url.Values {
			return codeForm(e.code(func(c *storage.AuthCode) { c.DPoPJKT = key.jkt }))
		}, false, oautherr.InvalidGrant, 400, "bound to a DPoP key"},
		{"DPoP-bound code with a proof of another key", "web", func() url.Values {
			return codeForm(e.code(func(c *storage.AuthCode) { c.DPoPJKT = "another-key" }))
		}, true, oautherr.InvalidGrant, 400, "bound to a DPoP key"},
		{"unknown resource", "web", func() url.Values {
			f := codeForm(e.code(nil))
			f.Set("resource", "https://evil.example")
			return f
		}, false, oautherr.InvalidTarget, 400, "unknown audience or resource"},
		{"resource beyond the authorization request", "web", func() url.Values {
			f := codeForm(e.code(func(c *storage.AuthCode) { c.Resources = []string{tAPI} }))
			f.Set("resource", "https://other-api.example")
			return f
		}, false, oautherr.InvalidTarget, 400, "not part of the authorization request"},
		{"user deleted since", "web", func() url.Values {
			return codeForm(e.code(func(c *storage.AuthCode) { c.UserID = "gone" }))
		}, false, oautherr.InvalidGrant, 400, "no longer exists"},
		{"public client, valid", "spa", func() url.Values {
			return codeForm(e.code(func(c *storage.AuthCode) { c.ClientID = "spa" }))
		}, false, "", 200, ""},
		{"DPoP-bound code with its proof", "web", func() url.Values {
			return codeForm(e.code(func(c *storage.AuthCode) { c.DPoPJKT = key.jkt }))
		}, true, "", 200, ""},
		{"valid", "web", func() url.Values { return codeForm(e.code(nil)) }, false, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof := ""
			if tt.proof {
				proof = key.proof(t, e.now)
			}
			e.post(tt.client, tt.form(), proof).check(t, tt.wantErr, tt.wantStatus, tt.wantDesc)
		})
	}
}

// TestAuthorizationCodeResponse: a valid redemption returns a Bearer
// access token, a refresh token, and an ID token with the request's nonce
// and an at_hash (OpenID Connect Core §3.1.3.3); the resources of the
// authorization request become the audience (RFC 8707 §2.2).
func TestAuthorizationCodeResponse(t *testing.T) {
	e := newTokenEnv(t)
	r := e.post("web", codeForm(e.code(func(c *storage.AuthCode) { c.Resources = []string{"https://other-api.example"} })), "")
	r.check(t, "", 200, "")
	if r.TokenType != "Bearer" || r.RefreshToken == "" || r.IDToken == "" || r.Scope != "openid profile" {
		t.Fatalf("response %+v: want Bearer, a refresh token, an ID token and scope \"openid profile\"", r)
	}
	at, err := e.issuer.ValidateAccess(context.Background(), r.AccessToken)
	if err != nil {
		t.Fatalf("ValidateAccess: %v", err)
	}
	if at.Subject != "u1" || at.ClientID != "web" || !at.Audience.Contains("https://other-api.example") || at.UserID != "u1" {
		t.Fatalf("access token claims %+v", at)
	}
	id, err := e.issuer.IDTokenHint(context.Background(), r.IDToken)
	if err != nil {
		t.Fatalf("IDTokenHint: %v", err)
	}
	if id.Nonce != "n-0S6_WzA2Mj" || id.AtHash == "" || id.AZP != "web" || !id.Audience.Contains("web") {
		t.Fatalf("ID token claims %+v", id)
	}

	// DPoP: the access token is bound to the proof's key (RFC 9449 §5).
	key := newDPoPKey(t)
	r = e.post("web", codeForm(e.code(nil)), key.proof(t, e.now))
	r.check(t, "", 200, "")
	at, err = e.issuer.ValidateAccess(context.Background(), r.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if r.TokenType != "DPoP" || at.Cnf == nil || at.Cnf.JKT != key.jkt {
		t.Fatalf("token_type %q, cnf %+v: want DPoP bound to %s", r.TokenType, at.Cnf, key.jkt)
	}
}

// TestAuthorizationCodeMisuseRevokes: a replayed code, or one presented
// by another client, revokes what it issued (RFC 6749 §4.1.2, RFC 9700
// §4.5).
func TestAuthorizationCodeMisuseRevokes(t *testing.T) {
	tests := []struct {
		name        string
		second      string // the client presenting the code the second time
		secondFirst bool   // the wrong client comes first
		wantDesc    string
	}{
		{"replay by the same client", "web", false, "already used"},
		{"replay by another client", "web2", false, "already used"},
		{"another client first", "web2", true, "another client"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTokenEnv(t)
			grant := NewID()
			code := e.code(func(c *storage.AuthCode) { c.GrantID = grant })
			if tt.secondFirst {
				e.post(tt.second, codeForm(code), "").check(t, oautherr.InvalidGrant, 400, tt.wantDesc)
				if !e.grantRevoked(grant) {
					t.Fatal("the grant of a code presented by another client was not revoked")
				}
				return
			}
			first := e.post("web", codeForm(code), "")
			first.check(t, "", 200, "")
			e.post(tt.second, codeForm(code), "").check(t, oautherr.InvalidGrant, 400, tt.wantDesc)
			if !e.grantRevoked(grant) {
				t.Fatal("the grant of a replayed code was not revoked")
			}
			if _, err := e.issuer.ValidateAccess(context.Background(), first.AccessToken); oautherr.Code(err) != oautherr.InvalidToken {
				t.Fatalf("the first access token after the replay: %v, want invalid_token", err)
			}
			e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, "").
				check(t, oautherr.InvalidGrant, 400, "revoked")
		})
	}
}

// refreshOf redeems a fresh code of client and returns its refresh token.
func (e *tokenEnv) refreshOf(client string, scopes ...string) (refresh, grant string) {
	e.t.Helper()
	grant = NewID()
	code := e.code(func(c *storage.AuthCode) {
		c.ClientID, c.GrantID = client, grant
		if len(scopes) > 0 {
			c.Scopes = scopes
		}
	})
	r := e.post(client, codeForm(code), "")
	if r.RefreshToken == "" {
		e.t.Fatalf("no refresh token for %s: %+v", client, r)
	}
	return r.RefreshToken, grant
}

// storeRefresh stores a refresh token of a fresh grant of web and u1,
// changed by mod, and returns it.
func (e *tokenEnv) storeRefresh(grantMod func(*storage.Grant), mod func(*storage.RefreshToken)) string {
	e.t.Helper()
	ctx := context.Background()
	g := storage.Grant{ID: NewID(), ClientID: "web", UserID: "u1", Scopes: []string{"openid", "profile"}, AuthTime: e.now,
		CreatedAt: e.now, ExpiresAt: e.now.Add(24 * time.Hour)}
	if grantMod != nil {
		grantMod(&g)
	}
	if g.ID != "" {
		if err := e.store.CreateGrant(ctx, g); err != nil {
			e.t.Fatal(err)
		}
	} else {
		g.ID = "no-such-grant"
	}
	raw := NewOpaque()
	t := storage.RefreshToken{Hash: storage.Hash(raw), GrantID: g.ID, ClientID: "web", UserID: "u1", Scopes: g.Scopes,
		AuthTime: e.now, CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour)}
	if mod != nil {
		mod(&t)
	}
	if err := e.store.CreateRefreshToken(ctx, t); err != nil {
		e.t.Fatal(err)
	}
	return raw
}

// TestRefreshTokenGrant pins each error branch of the refresh_token grant
// (RFC 6749 §6, RFC 9700 §4.14.2, RFC 9449 §5).
func TestRefreshTokenGrant(t *testing.T) {
	e := newTokenEnv(t)
	key := newDPoPKey(t)
	form := func(raw string, more ...string) url.Values {
		f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}
		for i := 0; i+1 < len(more); i += 2 {
			f.Set(more[i], more[i+1])
		}
		return f
	}
	tests := []struct {
		name       string
		client     string
		form       func() url.Values
		proof      bool
		wantErr    string
		wantStatus int
		wantDesc   string
	}{
		{"missing refresh_token", "web", func() url.Values { return url.Values{"grant_type": {"refresh_token"}} }, false,
			oautherr.InvalidRequest, 400, "refresh_token is required"},
		{"malformed scope", "web", func() url.Values { return form(e.storeRefresh(nil, nil), "scope", `open"id`) }, false,
			oautherr.InvalidScope, 400, "not allowed by RFC 6749"},
		{"unknown token", "web", func() url.Values { return form("no-such-token") }, false, oautherr.InvalidGrant, 400, "unknown or expired"},
		{"token of another client", "web2", func() url.Values { return form(e.storeRefresh(nil, nil)) }, false,
			oautherr.InvalidGrant, 400, "issued to another client"},
		{"rotated token", "web", func() url.Values {
			return form(e.storeRefresh(nil, func(t *storage.RefreshToken) { t.UsedAt = e.now.Add(-time.Minute) }))
		}, false, oautherr.InvalidGrant, 400, "already used"},
		{"expired token", "web", func() url.Values {
			return form(e.storeRefresh(nil, func(t *storage.RefreshToken) { t.ExpiresAt = e.now }))
		}, false, oautherr.InvalidGrant, 400, "has expired"},
		{"DPoP-bound token without a proof", "web", func() url.Values {
			return form(e.storeRefresh(nil, func(t *storage.RefreshToken) { t.JKT = key.jkt }))
		}, false, oautherr.InvalidGrant, 400, "bound to a DPoP key"},
		{"DPoP-bound token with another key's proof", "web", func() url.Values {
			return form(e.storeRefresh(nil, func(t *storage.RefreshToken) { t.JKT = "another-key" }))
		}, true, oautherr.InvalidGrant, 400, "bound to a DPoP key"},
		{"grant gone", "web", func() url.Values {
			return form(e.storeRefresh(func(g *storage.Grant) { g.ID = "" }, nil))
		}, false, oautherr.InvalidGrant, 400, "grant of this refresh token has ended"},
		{"grant revoked", "web", func() url.Values {
			return form(e.storeRefresh(func(g *storage.Grant) { g.RevokedAt = e.now }, nil))
		}, false, oautherr.InvalidGrant, 400, "was revoked"},
		{"grant expired", "web", func() url.Values {
			return form(e.storeRefresh(func(g *storage.Grant) { g.ExpiresAt = e.now }, nil))
		}, false, oautherr.InvalidGrant, 400, "ask the user again"},
		{"scope beyond the grant", "web", func() url.Values { return form(e.storeRefresh(nil, nil), "scope", "openid email") }, false,
			oautherr.InvalidScope, 400, "beyond those originally granted"},
		{"user deleted since", "web", func() url.Values {
			return form(e.storeRefresh(func(g *storage.Grant) { g.UserID = "gone" }, func(t *storage.RefreshToken) { t.UserID = "gone" }))
		}, false, oautherr.InvalidGrant, 400, "no longer exists"},
		{"narrower scope", "web", func() url.Values { return form(e.storeRefresh(nil, nil), "scope", "profile") }, false, "", 200, ""},
		{"DPoP-bound token with its proof", "web", func() url.Values {
			return form(e.storeRefresh(nil, func(t *storage.RefreshToken) { t.JKT = key.jkt }))
		}, true, "", 200, ""},
		{"valid", "web", func() url.Values { return form(e.storeRefresh(nil, nil)) }, false, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof := ""
			if tt.proof {
				proof = key.proof(t, e.now)
			}
			e.post(tt.client, tt.form(), proof).check(t, tt.wantErr, tt.wantStatus, tt.wantDesc)
		})
	}
}

// TestRefreshTokenRotation: each use rotates the token (RFC 9700
// §4.14.2); the narrower scope of a refresh applies to its access token
// only, and reusing a rotated token revokes the grant.
func TestRefreshTokenRotation(t *testing.T) {
	e := newTokenEnv(t)
	first, grant := e.refreshOf("web", "openid", "profile", "offline_access")
	r := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}, "scope": {"profile"}}, "")
	r.check(t, "", 200, "")
	if r.Scope != "profile" || r.IDToken != "" || r.RefreshToken == "" || r.RefreshToken == first {
		t.Fatalf("refresh response %+v: want scope profile, no ID token, a new refresh token", r)
	}
	second := r.RefreshToken
	r = e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {second}}, "")
	r.check(t, "", 200, "")
	if r.Scope != "openid profile offline_access" {
		t.Fatalf("scope %q after a narrowed refresh: the chain keeps the granted scopes", r.Scope)
	}
	e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first}}, "").check(t, oautherr.InvalidGrant, 400, "already used")
	if !e.grantRevoked(grant) {
		t.Fatal("reuse of a rotated refresh token did not revoke the grant")
	}
	e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}, "").check(t, oautherr.InvalidGrant, 400, "revoked")
}

// TestClientCredentialsGrant pins the client_credentials grant (RFC 6749
// §4.4): confidential clients only, scopes of the client only, none that
// need a user.
func TestClientCredentialsGrant(t *testing.T) {
	e := newTokenEnv(t)
	tests := []struct {
		name       string
		client     string
		scope      string
		wantErr    string
		wantStatus int
		wantDesc   string
		wantScope  string
	}{
		{"public client", "spa", "", oautherr.UnauthorizedClient, 400, "public clients cannot use client_credentials", ""},
		{"malformed scope", "svc", "files\\read", oautherr.InvalidScope, 400, "not allowed by RFC 6749", ""},
		{"openid", "web", "openid", oautherr.InvalidScope, 400, "needs a user", ""},
		{"offline_access", "web", "offline_access", oautherr.InvalidScope, 400, "needs a user", ""},
		{"scope the client may not ask for", "svc", "files.read payment", oautherr.InvalidScope, 400, "may not ask for scope payment", ""},
		{"no scope", "svc", "", "", 200, "", ""},
		{"allowed scope", "svc", "files.read", "", 200, "", "files.read"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			f := url.Values{"grant_type": {"client_credentials"}}
			if tt.scope != "" {
				f.Set("scope", tt.scope)
			}
			r := e.post(tt.client, f, "")
			r.check(t, tt.wantErr, tt.wantStatus, tt.wantDesc)
			if tt.wantErr != "" {
				return
			}
			if r.RefreshToken != "" || r.IDToken != "" || r.Scope != tt.wantScope {
				t.Fatalf("response %+v: want scope %q and no refresh or ID token (RFC 6749 section 4.4.3)", r, tt.wantScope)
			}
			at, err := e.issuer.ValidateAccess(context.Background(), r.AccessToken)
			if err != nil || at.Subject != tt.client || at.GrantID != "" {
				t.Fatalf("claims %+v, %v: want sub = client id and no grant (RFC 9068 section 2.2)", at, err)
			}
		})
	}
}

// device stores a device code of client, decided as status (for u1 with
// openid when approved), and returns it. polls and redeemed say what
// happened to it before: polls polls (the last one now), redeemed a
// successful redemption.
type deviceState struct {
	status   string
	user     string
	expired  bool
	polled   bool // polled just now
	redeemed bool
}

func (e *tokenEnv) device(client string, st deviceState) string {
	e.t.Helper()
	ctx := context.Background()
	raw := NewOpaque()
	userCode := strings.ToUpper(NewID()[:8])
	exp := e.now.Add(10 * time.Minute)
	decided := e.now
	if st.expired {
		exp, decided = e.now, e.now.Add(-time.Second)
	}
	d := storage.DeviceCode{Hash: storage.Hash(raw), UserCode: userCode, ClientID: client, Scopes: []string{"openid"},
		Interval: 5, CreatedAt: e.now, ExpiresAt: exp}
	if err := e.store.CreateDeviceCode(ctx, d); err != nil {
		e.t.Fatal(err)
	}
	if st.status != storage.DevicePending && st.status != "" {
		user := cmp.Or(st.user, "u1")
		if err := e.store.DecideDeviceCode(ctx, userCode, st.status == storage.DeviceApproved, user, []string{"openid"}, nil, e.now, decided); err != nil {
			e.t.Fatal(err)
		}
	}
	if st.redeemed {
		if err := e.store.ConsumeDeviceCode(ctx, d.Hash, e.now); err != nil {
			e.t.Fatal(err)
		}
	}
	if st.polled {
		if _, err := e.store.PollDeviceCode(ctx, d.Hash, e.now); err != nil {
			e.t.Fatal(err)
		}
	}
	return raw
}

// TestDeviceCodeGrant pins the answers of the device grant (RFC 8628
// §3.5): the waiting answers are 400 errors, slow_down included.
func TestDeviceCodeGrant(t *testing.T) {
	e := newTokenEnv(t)
	form := func(raw string) url.Values {
		return url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {raw}}
	}
	approved := deviceState{status: storage.DeviceApproved}
	tests := []struct {
		name       string
		client     string
		form       func() url.Values
		wantErr    string
		wantStatus int
		wantDesc   string
	}{
		{"missing device_code", "spa", func() url.Values { return url.Values{"grant_type": {DeviceCodeGrantType}} }, oautherr.InvalidRequest, 400, "device_code is required"},
		{"unknown device_code", "spa", func() url.Values { return form("no-such-code") }, oautherr.InvalidGrant, 400, "unknown or expired"},
		{"device_code of another client", "web", func() url.Values { return form(e.device("spa", approved)) }, oautherr.InvalidGrant, 400, "another client"},
		{"expired", "spa", func() url.Values {
			return form(e.device("spa", deviceState{status: storage.DeviceApproved, expired: true}))
		},
			oautherr.ExpiredToken, 400, "has expired"},
		{"polling too fast", "spa", func() url.Values { return form(e.device("spa", deviceState{polled: true})) },
			oautherr.SlowDown, 400, "polling too fast"},
		{"pending", "spa", func() url.Values { return form(e.device("spa", deviceState{})) }, oautherr.AuthorizationPending, 400, "not decided"},
		{"denied", "spa", func() url.Values { return form(e.device("spa", deviceState{status: storage.DeviceDenied})) },
			oautherr.AccessDenied, 400, "denied"},
		{"already redeemed", "spa", func() url.Values {
			return form(e.device("spa", deviceState{status: storage.DeviceApproved, redeemed: true}))
		},
			oautherr.InvalidGrant, 400, "already issued"},
		{"user deleted since", "spa", func() url.Values {
			return form(e.device("spa", deviceState{status: storage.DeviceApproved, user: "gone"}))
		},
			oautherr.InvalidGrant, 400, "no longer exists"},
		{"approved", "spa", func() url.Values { return form(e.device("spa", approved)) }, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e.post(tt.client, tt.form(), "").check(t, tt.wantErr, tt.wantStatus, tt.wantDesc)
		})
	}
}

// TestDevicePollInterval: a poll within the interval is slow_down, one
// after it is answered (RFC 8628 §3.5).
func TestDevicePollInterval(t *testing.T) {
	e := newTokenEnv(t)
	form := url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {e.device("spa", deviceState{})}}
	e.post("spa", form, "").check(t, oautherr.AuthorizationPending, 400, "not decided")
	e.now = e.now.Add(3 * time.Second)
	e.post("spa", form, "").check(t, oautherr.SlowDown, 400, "polling too fast")
	e.now = e.now.Add(5 * time.Second)
	e.post("spa", form, "").check(t, oautherr.AuthorizationPending, 400, "not decided")
}

// TestDeviceCodeOnce: an approved device code gives tokens once; the
// next poll, even after the interval, is invalid_grant.
func TestDeviceCodeOnce(t *testing.T) {
	e := newTokenEnv(t)
	raw := e.device("spa", deviceState{status: storage.DeviceApproved})
	form := url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {raw}}
	r := e.post("spa", form, "")
	r.check(t, "", 200, "")
	if r.IDToken == "" || r.RefreshToken == "" {
		t.Fatalf("device grant with openid for a refresh-capable client: %+v", r)
	}
	e.now = e.now.Add(10 * time.Second)
	e.post("spa", form, "").check(t, oautherr.InvalidGrant, 400, "already issued")
}

// TestTokenExchangeGrant pins the token exchange grant (RFC 8693 §2.2.2):
// each row a request and the error it gets.
func TestTokenExchangeGrant(t *testing.T) {
	e := newTokenEnv(t)
	key := newDPoPKey(t)
	userCode := e.code(nil)
	userToken := e.post("web", codeForm(userCode), "").AccessToken
	svcToken := e.post("svc", url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "").AccessToken
	webToken := e.post("web", url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "").AccessToken
	bound := e.post("web", codeForm(e.code(nil)), key.proof(t, e.now)).AccessToken
	if userToken == "" || svcToken == "" || webToken == "" || bound == "" {
		t.Fatal("could not mint the subject tokens")
	}
	form := func(subject string, more ...string) url.Values {
		f := url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token": {subject}, "subject_token_type": {AccessTokenType}}
		for i := 0; i+1 < len(more); i += 2 {
			f.Set(more[i], more[i+1])
		}
		return f
	}
	tests := []struct {
		name       string
		client     string
		form       url.Values
		proof      bool
		wantErr    string
		wantStatus int
		wantDesc   string
	}{
		{"public client", "spa", form(userToken), false, oautherr.UnauthorizedClient, 400, "public clients may not exchange"},
		{"missing subject_token", "web", url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token_type": {AccessTokenType}}, false,
			oautherr.InvalidRequest, 400, "subject_token and subject_token_type are required"},
		{"missing subject_token_type", "web", url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token": {userToken}}, false,
			oautherr.InvalidRequest, 400, "subject_token and subject_token_type are required"},
		{"ID token type", "web", form(userToken, "subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), false,
			oautherr.InvalidRequest, 400, "subject_token_type must be"},
		{"actor_token without its type", "web", form(userToken, "actor_token", webToken), false, oautherr.InvalidRequest, 400, "go together"},
		{"actor_token_type without a token", "web", form(userToken, "actor_token_type", AccessTokenType), false, oautherr.InvalidRequest, 400, "go together"},
		{"actor_token_type a JWT", "web", form(userToken, "actor_token", webToken, "actor_token_type", "urn:ietf:params:oauth:token-type:jwt"), false,
			oautherr.InvalidRequest, 400, "actor_token_type must be"},
		{"refresh token requested", "web", form(userToken, "requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), false,
			oautherr.InvalidRequest, 400, "only access tokens"},
		{"subject_token not a token", "web", form("garbage"), false, oautherr.InvalidGrant, 400, "not an active access token"},
		{"subject_token of another client, not meant for this one", "web2", form(svcToken), false, oautherr.InvalidGrant, 400, "issued to it or meant for it"},
		{"DPoP-bound subject_token without a proof", "web", form(bound), false, oautherr.InvalidGrant, 400, "subject_token is DPoP-bound"},
		{"actor_token not a token", "web", form(userToken, "actor_token", "garbage", "actor_token_type", AccessTokenType), false,
			oautherr.InvalidGrant, 400, "actor_token is not an active access token"},
		{"DPoP-bound actor_token without a proof", "web", form(userToken, "actor_token", bound, "actor_token_type", AccessTokenType), false,
			oautherr.InvalidGrant, 400, "actor_token is DPoP-bound"},
		{"malformed scope", "web", form(userToken, "scope", "a\\b"), false, oautherr.InvalidScope, 400, "not allowed by RFC 6749"},
		{"wider scope", "web", form(userToken, "scope", "openid email"), false, oautherr.InvalidScope, 400, "only narrow"},
		{"unknown audience", "web", form(userToken, "audience", "https://evil.example"), false, oautherr.InvalidTarget, 400, "unknown audience"},
		{"unknown resource", "web", form(userToken, "resource", "https://evil.example"), false, oautherr.InvalidTarget, 400, "unknown audience"},
		{"impersonation", "web", form(userToken, "scope", "openid", "audience", tAPI), false, "", 200, ""},
		{"delegation", "web", form(userToken, "actor_token", webToken, "actor_token_type", AccessTokenType), false, "", 200, ""},
		{"DPoP-bound subject_token with its proof", "web", form(bound), true, "", 200, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			proof := ""
			if tt.proof {
				proof = key.proof(t, e.now)
			}
			r := e.post(tt.client, tt.form, proof)
			r.check(t, tt.wantErr, tt.wantStatus, tt.wantDesc)
			if tt.wantErr == "" && (r.IssuedTokenType != AccessTokenType || r.RefreshToken != "") {
				t.Fatalf("response %+v: want issued_token_type %s and no refresh token (RFC 8693 section 2.2.1)", r, AccessTokenType)
			}
		})
	}
}

// TestTokenExchangeClaims: the exchanged token keeps the user and grant,
// narrows scope and audience, names the actor (RFC 8693 §4.1), and dies
// with the grant.
func TestTokenExchangeClaims(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	grant := NewID()
	user := e.post("web", codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant })), "").AccessToken
	// Another client's token, meant for another audience, may not name the
	// one acting; the exchanging client's own token may.
	foreign := e.post("web2", url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "").AccessToken
	e.post("web", url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token": {user}, "subject_token_type": {AccessTokenType},
		"actor_token": {foreign}, "actor_token_type": {AccessTokenType}, "scope": {"openid"}, "audience": {tAPI}}, "").check(t, oautherr.InvalidGrant, 400, "actor_token")
	actor := e.post("web", url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "").AccessToken
	r := e.post("web", url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token": {user}, "subject_token_type": {AccessTokenType},
		"actor_token": {actor}, "actor_token_type": {AccessTokenType}, "scope": {"openid"}, "audience": {tAPI}}, "")
	r.check(t, "", 200, "")
	c, err := e.issuer.ValidateAccess(ctx, r.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if c.Subject != "u1" || c.Scope != "openid" || len(c.Audience) != 1 || c.Audience[0] != tAPI || c.GrantID != grant ||
		c.Act == nil || c.Act.Subject != "web" || c.Act.ClientID != "web" {
		t.Fatalf("exchanged claims %+v (act %+v)", c, c.Act)
	}
	if err := e.store.RevokeGrant(ctx, grant, e.now); err != nil {
		t.Fatal(err)
	}
	if _, err := e.issuer.ValidateAccess(ctx, r.AccessToken); oautherr.Code(err) != oautherr.InvalidToken {
		t.Fatalf("exchanged token after its grant was revoked: %v, want invalid_token", err)
	}
}

// outageStore fails the named methods as an unreachable database does.
type outageStore struct {
	storage.Storage
	down string
}

var errStoreDown = fmt.Errorf("test: %w: connection refused", storage.ErrUnavailable)

func (s *outageStore) GetClient(ctx context.Context, id string) (*storage.Client, error) {
	if s.down == "GetClient" {
		return nil, errStoreDown
	}
	return s.Storage.GetClient(ctx, id)
}

func (s *outageStore) ConsumeAuthCode(ctx context.Context, hash string, at time.Time) (*storage.AuthCode, *storage.User, error) {
	if s.down == "ConsumeAuthCode" {
		return nil, nil, errStoreDown
	}
	return s.Storage.ConsumeAuthCode(ctx, hash, at)
}

func (s *outageStore) GetRefreshToken(ctx context.Context, hash string) (*storage.RefreshToken, error) {
	if s.down == "GetRefreshToken" {
		return nil, errStoreDown
	}
	return s.Storage.GetRefreshToken(ctx, hash)
}

func (s *outageStore) GetRefreshTokenChain(ctx context.Context, hash string) (*storage.RefreshTokenChain, error) {
	if s.down == "GetRefreshTokenChain" {
		return nil, errStoreDown
	}
	return s.Storage.GetRefreshTokenChain(ctx, hash)
}

func (s *outageStore) StartGrant(ctx context.Context, g storage.Grant, first *storage.RefreshToken, events ...storage.AuditEvent) error {
	if s.down == "StartGrant" {
		return errStoreDown
	}
	return s.Storage.StartGrant(ctx, g, first, events...)
}

func (s *outageStore) RotateRefreshToken(ctx context.Context, old string, next storage.RefreshToken, at time.Time, events ...storage.AuditEvent) error {
	if s.down == "RotateRefreshToken" {
		return errStoreDown
	}
	return s.Storage.RotateRefreshToken(ctx, old, next, at, events...)
}

func (s *outageStore) PollDeviceCode(ctx context.Context, hash string, at time.Time) (*storage.DeviceCode, error) {
	if s.down == "PollDeviceCode" {
		return nil, errStoreDown
	}
	return s.Storage.PollDeviceCode(ctx, hash, at)
}

func (s *outageStore) IsTokenRevoked(ctx context.Context, jti string) (bool, error) {
	if s.down == "IsTokenRevoked" {
		return false, errStoreDown
	}
	return s.Storage.IsTokenRevoked(ctx, jti)
}

// TestTokenStoreOutage: while the store cannot be reached, every grant
// answers 503 temporarily_unavailable with Retry-After, never 500 and
// never an invalid_grant that would make a client drop its tokens.
func TestTokenStoreOutage(t *testing.T) {
	e := newTokenEnv(t)
	user := e.post("web", codeForm(e.code(nil)), "")
	st := &outageStore{Storage: e.store}
	e.issuer.Store = st
	auth := &clientauth.Authenticator{Store: st, Now: e.issuer.Now}
	ep := NewEndpoint(auth, slog.New(slog.DiscardHandler), AuthorizationCode{Issuer: e.issuer}, RefreshToken{Issuer: e.issuer},
		ClientCredentials{Issuer: e.issuer}, DeviceCode{Issuer: e.issuer}, TokenExchange{Issuer: e.issuer})
	ep.DPoP, ep.URL = &dpop.Checker{Replays: st, Now: e.issuer.Now}, tTokenURL
	e.mux = http.NewServeMux()
	ep.Register(e.mux)
	tests := []struct {
		name, down string
		form       url.Values
	}{
		{"client authentication", "GetClient", url.Values{"grant_type": {"client_credentials"}}},
		{"authorization_code", "ConsumeAuthCode", codeForm(e.code(nil))},
		{"refresh_token", "GetRefreshTokenChain", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {user.RefreshToken}}},
		{"authorization_code, grant not stored", "StartGrant", codeForm(e.code(nil))},
		{"refresh_token, rotation not stored", "RotateRefreshToken", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {user.RefreshToken}}},
		{"device_code", "PollDeviceCode", url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {"x"}}},
		{"token_exchange", "IsTokenRevoked", url.Values{"grant_type": {TokenExchangeGrantType}, "subject_token": {user.AccessToken},
			"subject_token_type": {AccessTokenType}}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.down = tt.down
			defer func() { st.down = "" }()
			body := url.Values{}
			for k, v := range tt.form {
				body[k] = v
			}
			r := httptest.NewRequest("POST", tTokenURL, strings.NewReader(body.Encode()))
			r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
			r.SetBasicAuth("web", e.secrets["web"])
			rec := httptest.NewRecorder()
			e.mux.ServeHTTP(rec, r)
			if rec.Code != http.StatusServiceUnavailable || rec.Header().Get("Retry-After") == "" ||
				!strings.Contains(rec.Body.String(), oautherr.TemporarilyUnavailable) || strings.Contains(rec.Body.String(), "connection refused") {
				t.Fatalf("got %d (Retry-After %q) %s, want 503 temporarily_unavailable without internals", rec.Code, rec.Header().Get("Retry-After"), rec.Body)
			}
		})
	}
}

// TestConcurrentRedemption: an authorization code or device code sent in
// several requests at once gives tokens to exactly one (RFC 6749 §4.1.2,
// RFC 8628 §3.5); for a code the others are replays, and every token it
// issued ends up revoked (RFC 9700 §4.5).
func TestConcurrentRedemption(t *testing.T) {
	const n = 8
	tests := []struct {
		name   string
		client string
		form   func(e *tokenEnv) (url.Values, string) // and the grant id, when known
	}{
		{"authorization code", "web", func(e *tokenEnv) (url.Values, string) {
			grant := NewID()
			return codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant })), grant
		}},
		{"device code", "spa", func(e *tokenEnv) (url.Values, string) {
			return url.Values{"grant_type": {DeviceCodeGrantType}, "device_code": {e.device("spa", deviceState{status: storage.DeviceApproved})}}, ""
		}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := newTokenEnv(t)
			form, grant := tt.form(e)
			replies := make(chan tokenReply, n)
			var wg sync.WaitGroup
			for range n {
				wg.Go(func() {
					body := url.Values{"client_id": {tt.client}}
					for k, v := range form {
						body[k] = v
					}
					r := httptest.NewRequest("POST", tTokenURL, strings.NewReader(body.Encode()))
					r.Header.Set("Content-Type", "application/x-www-form-urlencoded")
					if secret, ok := e.secrets[tt.client]; ok {
						r.SetBasicAuth(tt.client, secret)
					}
					rec := httptest.NewRecorder()
					e.mux.ServeHTTP(rec, r)
					var reply tokenReply
					_ = json.Unmarshal(rec.Body.Bytes(), &reply)
					reply.Status = rec.Code
					replies <- reply
				})
			}
			wg.Wait()
			close(replies)
			var ok []tokenReply
			for r := range replies {
				switch {
				case r.Status == 200:
					ok = append(ok, r)
				case r.Error == oautherr.InvalidGrant || r.Error == oautherr.SlowDown:
				default:
					t.Fatalf("a concurrent redemption got %d %s: %s", r.Status, r.Error, r.ErrorDescription)
				}
			}
			if len(ok) != 1 {
				t.Fatalf("%d of %d concurrent redemptions got tokens, want exactly 1", len(ok), n)
			}
			if grant != "" {
				if !e.grantRevoked(grant) {
					t.Fatal("the replays did not revoke the code's grant")
				}
				if _, err := e.issuer.ValidateAccess(context.Background(), ok[0].AccessToken); err == nil {
					t.Fatal("the winner's access token survived the replays")
				}
			}
		})
	}
}

func (s *outageStore) RevokeGrant(ctx context.Context, id string, at time.Time) error {
	if s.down == "RevokeGrant" {
		return errStoreDown
	}
	return s.Storage.RevokeGrant(ctx, id, at)
}

// TestRevocationOutage: a misuse that must revoke a grant (a rotated
// refresh token presented again, a code replayed) while the store cannot
// revoke it is answered 503 temporarily_unavailable, never the
// invalid_grant that says every token was revoked while the grant lives
// on: the client's retry presents the same credential, which revokes the
// grant once the store is back (RFC 9700 §4.14.2, §4.5.3.1).
func TestRevocationOutage(t *testing.T) {
	e := newTokenEnv(t)
	st := &outageStore{Storage: e.store}
	e.issuer.Store = st
	auth := &clientauth.Authenticator{Store: st, Now: e.issuer.Now}
	ep := NewEndpoint(auth, slog.New(slog.DiscardHandler), AuthorizationCode{Issuer: e.issuer}, RefreshToken{Issuer: e.issuer})
	ep.URL = tTokenURL
	e.mux = http.NewServeMux()
	ep.Register(e.mux)

	grants := []string{NewID(), NewID()}
	offline := func(grant string) func(c *storage.AuthCode) {
		return func(c *storage.AuthCode) { c.GrantID, c.Scopes = grant, []string{"openid", "offline_access"} }
	}
	first := e.post("web", codeForm(e.code(offline(grants[0]))), "")
	if first.Status != 200 || e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}, "").Status != 200 {
		t.Fatal("setup: no rotation")
	}
	code := e.code(offline(grants[1]))
	if e.post("web", codeForm(code), "").Status != 200 {
		t.Fatal("setup: no redemption")
	}
	tests := []struct {
		name string
		form url.Values
	}{
		{"rotated refresh token presented again", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {first.RefreshToken}}},
		{"code replayed", codeForm(code)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			st.down = "RevokeGrant"
			r := e.post("web", tt.form, "")
			st.down = ""
			if r.Status != http.StatusServiceUnavailable || r.Error != oautherr.TemporarilyUnavailable {
				t.Fatalf("misuse while the grant cannot be revoked: %d %s: %s, want 503 temporarily_unavailable", r.Status, r.Error, r.ErrorDescription)
			}
			if r = e.post("web", tt.form, ""); r.Error != oautherr.InvalidGrant {
				t.Fatalf("the same misuse once the store is back: %d %s, want invalid_grant", r.Status, r.Error)
			}
		})
	}
	for _, g := range grants {
		if !e.grantRevoked(g) {
			t.Fatalf("grant %s lives on after its misuse", g)
		}
	}
}
