package e2e

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/demo/resource"
	"github.com/bawwab/bawwab/internal/dpop"
)

// holder is a DPoP key pair of a client.
type holder struct{ priv *ecdsa.PrivateKey }

func newHolder(t *testing.T) holder {
	k, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	if err != nil {
		t.Fatal(err)
	}
	return holder{k}
}

// proof makes a DPoP proof for method and target; accessToken, when set,
// is bound by ath.
func (h holder) proof(t *testing.T, method, target, accessToken string) string {
	t.Helper()
	c := map[string]any{"jti": rand.Text(), "htm": method, "htu": target, "iat": time.Now().Unix()}
	if accessToken != "" {
		c["ath"] = dpop.Hash(accessToken)
	}
	return signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: h.priv}, (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt"), c)
}

// dpopToken sends a token request with a DPoP proof.
func (e *env) dpopToken(form url.Values, proof, user, pass string) tokenResult {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/token", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	if user != "" {
		req.SetBasicAuth(user, pass)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r tokenResult
	_ = json.NewDecoder(resp.Body).Decode(&r)
	r.Status, r.Header = resp.StatusCode, resp.Header
	return r
}

// call sends a resource request with the given Authorization and proof.
func call(t *testing.T, method, target, authz, proof string) (int, string) {
	t.Helper()
	req, _ := http.NewRequest(method, target, nil)
	req.Header.Set("Authorization", authz)
	if proof != "" {
		req.Header.Set("DPoP", proof)
	}
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	b, _ := io.ReadAll(resp.Body)
	return resp.StatusCode, resp.Header.Get("WWW-Authenticate") + " " + string(b)
}

// TestDPoP plays RFC 9449: a public client binds its tokens to a key; the
// access token works only with proofs of that key, at userinfo and at the
// demo API; the refresh token only with them too; proofs are single use.
func TestDPoP(t *testing.T) {
	e := start(t)
	key, thief := newHolder(t), newHolder(t)
	tokenURL := e.URL + "/token"

	r := authRequest{ClientID: "cli", RedirectURI: cliRedirect, Scope: "openid email offline_access", State: "s", Verifier: strings.Repeat("d", 43)}
	code := e.browser().authorize(r, "email", "offline_access").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirect}, "code_verifier": {r.Verifier}, "client_id": {"cli"}}
	p := key.proof(t, "POST", tokenURL, "")
	tok := e.dpopToken(form, p, "", "")
	wantStatus(t, tok.Status, 200, "token with DPoP", tok.Description)
	c := claimsOf(t, tok.AccessToken)
	cnf, _ := c["cnf"].(map[string]any)
	if tok.TokenType != "DPoP" || cnf["jkt"] == nil {
		t.Fatalf("token_type %q, cnf %v", tok.TokenType, c["cnf"])
	}

	// Userinfo: Bearer is refused for a bound token; DPoP with a proof of
	// the key (with ath) works once; another key, URL or method does not.
	info := e.URL + "/userinfo"
	if s, body := call(t, "GET", info, "Bearer "+tok.AccessToken, ""); s != 401 {
		t.Fatalf("bound token as Bearer: %d %s", s, body)
	}
	good := key.proof(t, "GET", info, tok.AccessToken)
	if s, body := call(t, "GET", info, "DPoP "+tok.AccessToken, good); s != 200 || !strings.Contains(body, "amal@example.com") {
		t.Fatalf("userinfo with DPoP: %d %s", s, body)
	}
	for name, proof := range map[string]string{
		"replayed":    good,
		"other key":   thief.proof(t, "GET", info, tok.AccessToken),
		"other URL":   key.proof(t, "GET", e.URL+"/elsewhere", tok.AccessToken),
		"other verb":  key.proof(t, "POST", info, tok.AccessToken),
		"no ath":      key.proof(t, "GET", info, ""),
		"no proof":    "",
		"not a proof": "eyJhbGciOiJub25lIn0.e30.",
	} {
		if s, body := call(t, "GET", info, "DPoP "+tok.AccessToken, proof); s != 401 && s != 400 {
			t.Errorf("%s: %d %s", name, s, body)
		}
	}

	// The demo API validates bound tokens too.
	api := httptest.NewServer(nil)
	mux := http.NewServeMux()
	(&resource.Server{URL: api.URL, Log: quietLog(), DPoP: &dpop.Checker{Replays: &dpop.MemoryReplays{}, Now: time.Now},
		Verifier: &resource.Verifier{Issuer: e.URL, Audience: "api", JWKSURL: e.URL + "/jwks.json", HTTP: http.DefaultClient, Now: time.Now},
		Lookup: func(_ ctxT, sub string) (*resource.Profile, error) {
			return &resource.Profile{Email: "amal@example.com"}, nil
		},
	}).Register(mux)
	api.Config.Handler = mux
	defer api.Close()
	if s, body := call(t, "GET", api.URL+"/api/email", "DPoP "+tok.AccessToken, key.proof(t, "GET", api.URL+"/api/email", tok.AccessToken)); s != 200 {
		t.Fatalf("demo API with DPoP: %d %s", s, body)
	}
	if s, _ := call(t, "GET", api.URL+"/api/email", "Bearer "+tok.AccessToken, ""); s != 401 {
		t.Fatalf("demo API took a bound token as Bearer: %d", s)
	}

	// The refresh token of a public client is bound as well.
	refresh := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}, "client_id": {"cli"}}
	wantTokenError(t, e.dpopToken(refresh, "", "", ""), 400, "invalid_grant")
	wantTokenError(t, e.dpopToken(refresh, thief.proof(t, "POST", tokenURL, ""), "", ""), 400, "invalid_grant")
	next := e.dpopToken(refresh, key.proof(t, "POST", tokenURL, ""), "", "")
	wantStatus(t, next.Status, 200, "refresh with the key's proof", next.Description)
	if next.TokenType != "DPoP" {
		t.Fatalf("refreshed token_type %q", next.TokenType)
	}

	// A proof works once, and only for the token endpoint's URL.
	once := key.proof(t, "POST", tokenURL, "")
	robot := url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}
	wantStatus(t, e.dpopToken(robot, once, "robot", e.RobotSecret).Status, 200, "client_credentials with DPoP", nil)
	wantTokenError(t, e.dpopToken(robot, once, "robot", e.RobotSecret), 400, "invalid_dpop_proof")
	wantTokenError(t, e.dpopToken(robot, key.proof(t, "POST", e.URL+"/other", ""), "robot", e.RobotSecret), 400, "invalid_dpop_proof")

	// Introspection tells resource servers about the binding.
	in := e.introspect(next.AccessToken, "api", "api-secret-for-tests-0123456789")
	if in["token_type"] != "DPoP" || in["cnf"] == nil {
		t.Fatalf("introspection of a bound token: %v", in)
	}

	_, _, meta := getBody(t, e.URL+"/.well-known/openid-configuration")
	if !strings.Contains(meta, `"dpop_signing_alg_values_supported":["ES256"`) {
		t.Fatal("discovery lacks DPoP")
	}
}

// TestDPoPCodeBinding (RFC 9449 §10): dpop_jkt at /authorize binds the code
// to a key; only a proof of that key redeems it.
func TestDPoPCodeBinding(t *testing.T) {
	e := start(t)
	key, thief := newHolder(t), newHolder(t)
	tp, err := (&jose.JSONWebKey{Key: &key.priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	r := authRequest{ClientID: "cli", RedirectURI: cliRedirect, Scope: "openid", State: "s", Verifier: strings.Repeat("b", 43),
		Extra: url.Values{"dpop_jkt": {base64.RawURLEncoding.EncodeToString(tp)}}}
	form := func() url.Values {
		code := e.browser().authorize(r).Get("code")
		return url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirect}, "code_verifier": {r.Verifier}, "client_id": {"cli"}}
	}
	tokenURL := e.URL + "/token"
	wantTokenError(t, e.dpopToken(form(), "", "", ""), 400, "invalid_grant")
	wantTokenError(t, e.dpopToken(form(), thief.proof(t, "POST", tokenURL, ""), "", ""), 400, "invalid_grant")
	if tok := e.dpopToken(form(), key.proof(t, "POST", tokenURL, ""), "", ""); tok.Status != 200 || tok.TokenType != "DPoP" {
		t.Fatalf("redeem with the bound key: %d %s", tok.Status, tok.Description)
	}
	bad := r
	bad.Extra = url.Values{"dpop_jkt": {"not-a-thumbprint"}}
	p := e.browser().get(bad.url())
	if q, _ := url.Parse(p.Location); q.Query().Get("error") != "invalid_request" {
		t.Fatalf("malformed dpop_jkt: %d %s", p.Status, p.Location)
	}
}

// TestResourceIndicators (RFC 8707): resources named at /authorize become
// the audience of the tokens; the token request may only narrow them.
func TestResourceIndicators(t *testing.T) {
	e := start(t)
	r := e.notesRequest("openid email")
	r.Extra = url.Values{"resource": {"files", "gateway"}}
	code := e.browser().authorize(r, "email").Get("code")
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI}, "code_verifier": {r.Verifier},
		"resource": {"files"}}
	tok := e.token(form, "notes", e.NotesSecret)
	wantStatus(t, tok.Status, 200, "token for one resource", tok.Description)
	if aud := claimsOf(t, tok.AccessToken)["aud"]; aud != "files" {
		t.Fatalf("aud %v, want files", aud)
	}
	r2 := e.notesRequest("openid email")
	r2.Extra = url.Values{"resource": {"files"}}
	code = e.browser().authorize(r2, "email").Get("code")
	form = url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r2.RedirectURI}, "code_verifier": {r2.Verifier},
		"resource": {"api"}}
	wantTokenError(t, e.token(form, "notes", e.NotesSecret), 400, "invalid_target")

	r3 := e.notesRequest("openid")
	r3.Extra = url.Values{"resource": {"https://evil.example"}}
	p := e.browser().get(r3.url())
	if q, _ := url.Parse(p.Location); q.Query().Get("error") != "invalid_target" {
		t.Fatalf("unknown resource at /authorize: %d %s", p.Status, p.Location)
	}
}
