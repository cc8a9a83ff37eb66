package e2e

import (
	"context"
	"crypto"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/demo/resource"
	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/config"
	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

// demoAPI serves the demo resource server for e's tokens (audience
// "api"), taking DPoP-bound tokens.
func demoAPI(t *testing.T, e *env) string {
	t.Helper()
	api := httptest.NewServer(nil)
	t.Cleanup(api.Close)
	mux := http.NewServeMux()
	(&resource.Server{URL: api.URL, Log: quietLog(),
		DPoP:     &dpop.Checker{Replays: &dpop.MemoryReplays{}, Now: time.Now},
		Verifier: &resource.Verifier{Issuer: e.URL, Audience: "api", JWKSURL: e.URL + "/jwks.json", HTTP: http.DefaultClient, Now: time.Now},
		Lookup: func(_ ctxT, sub string) (*resource.Profile, error) {
			return &resource.Profile{Email: "amal@example.com"}, nil
		},
	}).Register(mux)
	api.Config.Handler = mux
	return api.URL
}

// TestDPoPSchemeNeedsBoundToken (RFC 9449 §7.1): a request with the DPoP
// scheme is checked against the key its access token is bound to; a token
// bound to no key has none to match, so "DPoP <bearer token>" with a proof
// of any key the caller made up is refused with a DPoP challenge, at
// userinfo and at the demo API, while the same token as Bearer works.
func TestDPoPSchemeNeedsBoundToken(t *testing.T) {
	e := start(t)
	api := demoAPI(t, e)
	r := e.notesRequest("openid email")
	tok := e.redeem(e.browser().authorize(r, "email").Get("code"), r)
	wantStatus(t, tok.Status, 200, "bearer token", tok.Description)
	if tok.TokenType != "Bearer" || claimsOf(t, tok.AccessToken)["cnf"] != nil {
		t.Fatalf("a token request without proof got a bound token: %s", tok.TokenType)
	}
	anyKey := newHolder(t)
	for name, target := range map[string]string{"userinfo": e.URL + "/userinfo", "demo API": api + "/api/email"} {
		t.Run(name, func(t *testing.T) {
			if a := callResource(t, target, "Bearer "+tok.AccessToken, ""); a.Status != 200 {
				t.Fatalf("Bearer: %d %s", a.Status, a.Body)
			}
			for what, proof := range map[string]string{
				"proof of a made-up key": anyKey.proof(t, "GET", target, tok.AccessToken),
				"no proof":               "",
			} {
				a := callResource(t, target, "DPoP "+tok.AccessToken, proof)
				if a.Status != 401 || !strings.Contains(a.challenge("DPoP"), `error="invalid_token"`) {
					t.Errorf("%s: DPoP scheme with an unbound token: %d %v %s", what, a.Status, a.Challenges, a.Body)
				}
			}
		})
	}
}

// TestTokenExchangeForeignActor (RFC 8693 §2.1, §5): the actor token of
// a delegation names who acts; like the subject token it must have been
// issued to the exchanging client or be meant for it (aud). Otherwise a
// client holding someone else's token — issued to another client, for
// another audience — could name that party as its actor.
func TestTokenExchangeForeignActor(t *testing.T) {
	e := start(t)
	const gwSecret = "gateway-secret-for-tests-0123456789"
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "gateway", GrantTypes: []string{token.TokenExchangeGrantType},
		Secret: gwSecret}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	// The subject: a user token of Notes meant for every API (gateway
	// among them).
	r := e.notesRequest("openid files.read")
	user := e.redeem(e.browser().authorize(r, "files.read").Get("code"), r)
	wantStatus(t, user.Status, 200, "user token", user.Description)
	// A token of the CLI meant for "files" alone: not for gateway.
	cr := authRequest{ClientID: "cli", RedirectURI: cliRedirect, Scope: "openid files.read", State: "s", Verifier: strings.Repeat("a", 43),
		Extra: url.Values{"resource": {"files"}}}
	code := e.browser().authorize(cr, "files.read").Get("code")
	foreign := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {cliRedirect},
		"code_verifier": {cr.Verifier}, "client_id": {"cli"}}, "", "")
	wantStatus(t, foreign.Status, 200, "foreign token", foreign.Description)
	if aud := claimsOf(t, foreign.AccessToken)["aud"]; aud != "files" {
		t.Fatalf("foreign token aud %v, want files", aud)
	}
	exchange := func(actor string) tokenResult {
		t.Helper()
		return e.token(url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {user.AccessToken},
			"subject_token_type": {token.AccessTokenType}, "actor_token": {actor}, "actor_token_type": {token.AccessTokenType}}, "gateway", gwSecret)
	}
	wantTokenError(t, exchange(foreign.AccessToken), 400, "invalid_grant")
	// An actor token meant for gateway is fine.
	robot := e.token(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, "robot", e.RobotSecret)
	if d := exchange(robot.AccessToken); d.Status != 200 {
		t.Fatalf("actor meant for gateway: %d %s", d.Status, d.Description)
	}
}

// pushDPoP pushes an authorization request of Notes with a DPoP header.
func (e *env) pushDPoP(form url.Values, proof string) parResult {
	e.t.Helper()
	r, _ := e.pushDPoPNonce(form, proof)
	return r
}

// pushDPoPNonce is pushDPoP that also returns the DPoP-Nonce header.
func (e *env) pushDPoPNonce(form url.Values, proof string) (parResult, string) {
	e.t.Helper()
	req, _ := http.NewRequest("POST", e.URL+"/par", strings.NewReader(form.Encode()))
	req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
	req.SetBasicAuth("notes", e.NotesSecret)
	req.Header.Set("DPoP", proof)
	resp, err := http.DefaultClient.Do(req)
	if err != nil {
		e.t.Fatal(err)
	}
	defer resp.Body.Close()
	var r parResult
	_ = json.NewDecoder(resp.Body).Decode(&r)
	r.Status = resp.StatusCode
	return r, resp.Header.Get("DPoP-Nonce")
}

// TestPARDPoPHeader (RFC 9449 §10.1): a DPoP proof sent with a pushed
// authorization request is checked like one at the token endpoint, and
// binds the code as dpop_jkt would: the code is then redeemed only with
// a proof of that key, so a stolen code is no use without it. A proof
// that fails, or disagrees with dpop_jkt, refuses the push.
func TestPARDPoPHeader(t *testing.T) {
	e := start(t)
	parURL, tokenURL := e.URL+"/par", e.URL+"/token"
	key, thief := newHolder(t), newHolder(t)

	r := e.notesRequest("openid email")
	pushed := e.pushDPoP(r.query(), key.proof(t, "POST", parURL, ""))
	wantStatus(t, pushed.Status, http.StatusCreated, "push with DPoP", pushed.Description)
	b := e.browser()
	p := b.get("/authorize?" + url.Values{"client_id": {"notes"}, "request_uri": {pushed.RequestURI}}.Encode())
	p = b.login(p.Location, userName, userPassword)
	p = b.consent(p.Location, true, "email")
	cb, _ := url.Parse(p.Location)
	code := cb.Query().Get("code")
	if code == "" {
		t.Fatalf("no code: %s", p.Location)
	}
	form := url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {r.RedirectURI}, "code_verifier": {r.Verifier}}
	wantTokenError(t, e.dpopToken(form, thief.proof(t, "POST", tokenURL, ""), "notes", e.NotesSecret), 400, "invalid_grant")

	r = e.notesRequest("openid email")
	pushed = e.pushDPoP(r.query(), key.proof(t, "POST", parURL, ""))
	b = e.browser()
	p = b.get("/authorize?" + url.Values{"client_id": {"notes"}, "request_uri": {pushed.RequestURI}}.Encode())
	p = b.login(p.Location, userName, userPassword)
	p = b.consent(p.Location, true, "email")
	cb, _ = url.Parse(p.Location)
	form = url.Values{"grant_type": {"authorization_code"}, "code": {cb.Query().Get("code")}, "redirect_uri": {r.RedirectURI}, "code_verifier": {r.Verifier}}
	tok := e.dpopToken(form, key.proof(t, "POST", tokenURL, ""), "notes", e.NotesSecret)
	wantStatus(t, tok.Status, 200, "redeem with the key's proof", tok.Description)
	if tok.TokenType != "DPoP" {
		t.Fatalf("token type %s", tok.TokenType)
	}

	for name, tc := range map[string]struct {
		proof string
		extra url.Values
	}{
		"proof for /token":                   {key.proof(t, "POST", tokenURL, ""), nil},
		"not a proof":                        {"e30.e30.e30", nil},
		"proof of another key than dpop_jkt": {thief.proof(t, "POST", parURL, ""), url.Values{"dpop_jkt": {jktOf(t, key)}}},
	} {
		q := e.notesRequest("openid").query()
		for k, v := range tc.extra {
			q[k] = v
		}
		if res := e.pushDPoP(q, tc.proof); res.Status != 400 || res.RequestURI != "" {
			t.Errorf("%s: push taken: %d %s %s", name, res.Status, res.Error, res.Description)
		}
	}
}

// TestPARDPoPNonce (RFC 9449 §8, §10.1): with server nonces on, a proof
// at /par without the nonce is answered use_dpop_nonce with a DPoP-Nonce
// header, and the retry with it is taken.
func TestPARDPoPNonce(t *testing.T) {
	e := startWith(t, func(c *config.Config) { c.DPoPNonce = "on" })
	parURL := e.URL + "/par"
	key := newHolder(t)
	first, nonce := e.pushDPoPNonce(e.notesRequest("openid").query(), key.proof(t, "POST", parURL, ""))
	if first.Status != 400 || first.Error != "use_dpop_nonce" || nonce == "" {
		t.Fatalf("proof without nonce: %d %s, DPoP-Nonce %q", first.Status, first.Error, nonce)
	}
	again, _ := e.pushDPoPNonce(e.notesRequest("openid").query(), key.nonceProof(t, "POST", parURL, "", nonce))
	wantStatus(t, again.Status, http.StatusCreated, "retry with the nonce", again.Description)
}

// jktOf is the RFC 7638 thumbprint of h's key, as dpop_jkt carries it.
func jktOf(t *testing.T, h holder) string {
	t.Helper()
	tp, err := (&jose.JSONWebKey{Key: &h.priv.PublicKey}).Thumbprint(crypto.SHA256)
	if err != nil {
		t.Fatal(err)
	}
	return base64.RawURLEncoding.EncodeToString(tp)
}

// TestPairwiseSectorNotBorrowed (OpenID Connect Core §8.1): a redirect
// URI's host names a pairwise client's sector only when every code the
// client can get goes there. A client that registers someone else's https
// redirect URI beside one it does receive codes at (loopback, a custom
// scheme), or that gets its users' tokens by the device flow, which uses
// no redirect URI, would otherwise be handed the subject identifiers of
// that host's clients and could link its users to theirs.
func TestPairwiseSectorNotBorrowed(t *testing.T) {
	e := start(t)
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "victim", Name: "Victim", Public: true,
		RedirectURIs: []string{"https://victim.example/cb"}, Scopes: []string{"openid"}, Pairwise: true}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	b := e.browser()
	subOf := func(tok tokenResult) string {
		t.Helper()
		wantStatus(t, tok.Status, 200, "token", tok.Description)
		return claimsOf(t, tok.IDToken)["sub"].(string)
	}
	codeFlow := func(client, redirect string) string {
		t.Helper()
		r := authRequest{ClientID: client, RedirectURI: redirect, Scope: "openid", State: "s", Nonce: "n", Verifier: strings.Repeat("w", 43)}
		code := b.authorize(r).Get("code")
		return subOf(e.token(url.Values{"grant_type": {"authorization_code"}, "code": {code}, "redirect_uri": {redirect},
			"code_verifier": {r.Verifier}, "client_id": {client}}, "", ""))
	}
	victim := codeFlow("victim", "https://victim.example/cb")

	// Codes at its own loopback (or custom-scheme) URI, the victim's host beside it.
	mixed := e.register("POST", "/register", registrationToken, map[string]any{"client_name": "Mixed", "token_endpoint_auth_method": "none",
		"redirect_uris": []string{"https://victim.example/cb", cliRedirect}, "subject_type": "pairwise", "scope": "openid"})
	if mixed.Status == http.StatusCreated {
		if sub := codeFlow(mixed.ClientID, cliRedirect); sub == victim {
			t.Error("a client with the victim's redirect URI beside its own loopback one got the victim's pairwise sub")
		}
	}

	// The device flow: no redirect URI is ever used.
	dev := e.register("POST", "/register", registrationToken, map[string]any{"client_name": "TV", "token_endpoint_auth_method": "none",
		"grant_types": []string{token.DeviceCodeGrantType}, "redirect_uris": []string{"https://victim.example/cb"}, "subject_type": "pairwise", "scope": "openid"})
	if dev.Status == http.StatusCreated {
		status, d := e.deviceAuthorize(dev.ClientID, "openid")
		wantStatus(t, status, 200, "device authorization", d.Error)
		b.enterCode(d.UserCode, true)
		sub := subOf(e.token(url.Values{"grant_type": {token.DeviceCodeGrantType}, "device_code": {d.DeviceCode}, "client_id": {dev.ClientID}}, "", ""))
		if sub == victim {
			t.Error("a device-flow client naming the victim's redirect URI got the victim's pairwise sub")
		}
	}
	if mixed.Status != http.StatusCreated && dev.Status != http.StatusCreated {
		t.Fatalf("both registrations refused: %d %s; %d %s", mixed.Status, mixed.Description, dev.Status, dev.Description)
	}
}

// TestJWTSerializationTricks (RFC 7519 §1, RFC 7797 §7, RFC 9449 §4.2):
// every JWT bawwab takes from a client is a compact JWS with a
// base64url-encoded payload. A DPoP proof in JWS JSON serialization, and
// a DPoP proof, client assertion or request object whose signature covers
// an unencoded payload ("b64": false, marked critical) are refused.
func TestJWTSerializationTricks(t *testing.T) {
	e := start(t)
	tokenURL := e.URL + "/token"
	const redirect = "https://signed.example/cb"
	key := signedClient(t, e, "signed", redirect)
	holder := newHolder(t)
	cc := url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}

	sign := func(k any, kid string, opts *jose.SignerOptions, claims map[string]any) *jose.JSONWebSignature {
		t.Helper()
		sk := jose.SigningKey{Algorithm: jose.ES256, Key: k}
		if kid != "" {
			sk.Key = jose.JSONWebKey{Key: k, KeyID: kid}
		}
		s, err := jose.NewSigner(sk, opts)
		if err != nil {
			t.Fatal(err)
		}
		raw, _ := json.Marshal(claims)
		obj, err := s.Sign(raw)
		if err != nil {
			t.Fatal(err)
		}
		return obj
	}
	proofClaims := func() map[string]any {
		return map[string]any{"jti": rand.Text(), "htm": "POST", "htu": tokenURL, "iat": time.Now().Unix()}
	}
	dpopOpts := func() *jose.SignerOptions { return (&jose.SignerOptions{EmbedJWK: true}).WithType("dpop+jwt") }

	if ok := e.dpopToken(cc, holder.proof(t, "POST", tokenURL, ""), "robot", e.RobotSecret); ok.Status != 200 {
		t.Fatalf("a plain proof: %d %s", ok.Status, ok.Description)
	}
	jsonProof := sign(holder.priv, "", dpopOpts(), proofClaims()).FullSerialize()
	unencoded, _ := sign(holder.priv, "", dpopOpts().WithBase64(false), proofClaims()).CompactSerialize()
	for name, proof := range map[string]string{"JSON serialization": jsonProof, "b64 false": unencoded} {
		if r := e.dpopToken(cc, proof, "robot", e.RobotSecret); r.Status != 400 || r.Error != "invalid_dpop_proof" {
			t.Errorf("DPoP proof in %s: %d %s %s", name, r.Status, r.TokenType, r.Error)
		}
	}

	assertion, _ := sign(key.priv, key.kid, (&jose.SignerOptions{}).WithBase64(false), assertionClaims("signed", e.URL, nil)).CompactSerialize()
	wantTokenError(t, e.token(assertionForm(assertion), "", ""), 401, "invalid_client")

	object, _ := sign(key.priv, key.kid, (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt").WithBase64(false),
		requestClaims(e, "signed", redirect)).CompactSerialize()
	if p := authorizeStatus(e, "signed", object); p.Status != http.StatusBadRequest || p.Location != "" {
		t.Errorf("request object with b64 false: %d %s", p.Status, p.Location)
	}
	if p := authorizeStatus(e, "signed", key.signWith(t, "oauth-authz-req+jwt", false, requestClaims(e, "signed", redirect))); p.Status != http.StatusFound {
		t.Errorf("a plain request object: %d %s", p.Status, p.Body)
	}
}

// TestAssertionAudienceSole (draft-ietf-oauth-rfc7523bis §4, the
// audience injection attacks on private_key_jwt): a client assertion
// names this server as its only audience. One that names other parties
// beside it may have been made for one of them, which could replay it
// here; it is refused, by key and by secret alike.
func TestAssertionAudienceSole(t *testing.T) {
	e := start(t)
	key := signedClient(t, e, "signed", "https://signed.example/cb")
	for name, aud := range map[string]any{
		"issuer and another":         []string{e.URL, "https://other-as.example"},
		"another and token endpoint": []string{"https://other-as.example", e.URL + "/token"},
		"issuer twice":               []string{e.URL, e.URL},
	} {
		r := e.token(assertionForm(key.signWith(t, "", false, assertionClaims("signed", "", map[string]any{"aud": aud}))), "", "")
		if r.Status != 401 || r.Error != "invalid_client" {
			t.Errorf("%s: %d %s", name, r.Status, r.Error)
		}
	}
	for name, aud := range map[string]any{"issuer": e.URL, "issuer in a one-element array": []string{e.URL}} {
		if r := e.token(assertionForm(key.signWith(t, "", false, assertionClaims("signed", "", map[string]any{"aud": aud}))), "", ""); r.Status != 200 {
			t.Errorf("%s: %d %s %s", name, r.Status, r.Error, r.Description)
		}
	}
}
