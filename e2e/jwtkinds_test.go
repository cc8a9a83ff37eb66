package e2e

import (
	"context"
	"crypto/rand"
	"encoding/base64"
	"encoding/json"
	"net/http"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/backchannel"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/token"
)

// signedClient registers a private_key_jwt client that also signs its
// authorization requests (RFC 9101) and returns its key.
func signedClient(t *testing.T, e *env, id, redirect string) keyPair {
	t.Helper()
	key := newKeyPair(t, id+"-k1")
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: id, Name: id, RedirectURIs: []string{redirect},
		GrantTypes: []string{"authorization_code", "client_credentials"}, Scopes: []string{"openid", "email", "files.read"},
		AuthMethod: clientauth.MethodPrivateKeyJWT, JWKS: jwkSet(key)}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	return key
}

// signWith signs claims with the client key k, with the typ header typ
// (none when empty) and, when embed, the public key in a jwk header.
func (k keyPair) signWith(t *testing.T, typ string, embed bool, claims map[string]any) string {
	t.Helper()
	opts := &jose.SignerOptions{EmbedJWK: embed}
	if typ != "" {
		opts = opts.WithType(jose.ContentType(typ))
	}
	key := jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: k.priv, KeyID: k.kid}}
	if embed { // a jwk header and a kid do not go together in go-jose
		key.Key = k.priv
	}
	return signJWT(t, key, opts, claims)
}

// assertionClaims are the claims every client assertion of clientID for
// aud has (RFC 7523 §3); extra adds to them.
func assertionClaims(clientID, aud string, extra map[string]any) map[string]any {
	now := time.Now()
	c := map[string]any{"iss": clientID, "sub": clientID, "aud": aud, "jti": rand.Text(), "iat": now.Unix(), "exp": now.Add(time.Minute).Unix()}
	for k, v := range extra {
		c[k] = v
	}
	return c
}

// requestClaims are those of a request object of clientID that also
// meets every rule of a client assertion (iss = sub = client_id, aud =
// issuer, exp, jti): the object an attacker sees pass through the browser.
func requestClaims(e *env, clientID, redirect string) map[string]any {
	return assertionClaims(clientID, e.URL, map[string]any{"exp": time.Now().Add(5 * time.Minute).Unix(), "client_id": clientID,
		"response_type": "code", "redirect_uri": redirect, "scope": "openid email", "state": "st", "nonce": "n",
		"code_challenge": token.S256(strings.Repeat("v", 43)), "code_challenge_method": "S256"})
}

// authorizeStatus sends a request object to /authorize and returns the
// status: 302 (on to login) when it was taken, 400 when refused.
func authorizeStatus(e *env, clientID, object string) page {
	return e.browser().get("/authorize?" + url.Values{"client_id": {clientID}, "request": {object}}.Encode())
}

// TestJWTKindConfusion: every JWT bawwab accepts is accepted as one kind
// only. A request object that passed through the browser is not a client
// assertion (RFC 9101 §10.8, explicit typing); DPoP proofs, access,
// logout and ID tokens are not assertions either; a jti used by one kind
// is refused by the others; and each endpoint that takes a JWT of the
// server's (access token, ID token hint, subject and actor tokens) refuses
// every other kind, forged algorithms and foreign keys.
func TestJWTKindConfusion(t *testing.T) {
	e := start(t)
	const redirect = "https://signed.example/cb"
	key := signedClient(t, e, "signed", redirect)
	tokenURL := e.URL + "/token"
	cc := func(assertion string) tokenResult {
		t.Helper()
		return e.token(assertionForm(assertion), "", "")
	}
	typedObject := func() string {
		return key.signWith(t, "oauth-authz-req+jwt", false, requestClaims(e, "signed", redirect))
	}

	t.Run("request object replayed as client assertion", func(t *testing.T) {
		obj := typedObject()
		wantTokenError(t, cc(obj), 401, "invalid_client")
		for _, path := range []string{"/introspect", "/revoke", "/par", "/device_authorization"} {
			form := url.Values{"token": {"x"}, "client_assertion_type": {clientauth.AssertionType}, "client_assertion": {typedObject()}}
			if status, _, body := e.post(path, form, "", ""); status != 401 || !strings.Contains(string(body), "invalid_client") {
				t.Errorf("%s took a request object as client assertion: %d %s", path, status, body)
			}
		}
		// Used at /authorize first, it is still no assertion.
		obj = typedObject()
		if p := authorizeStatus(e, "signed", obj); p.Status != http.StatusFound {
			t.Fatalf("typed request object at /authorize: %d %s", p.Status, p.Body)
		}
		wantTokenError(t, cc(obj), 401, "invalid_client")
	})

	t.Run("request objects must be typed", func(t *testing.T) {
		for name, typ := range map[string]string{"no typ": "", "JWT": "JWT", "assertion type": "client-authentication+jwt", "dpop": "dpop+jwt",
			"access token": "at+jwt"} {
			if p := authorizeStatus(e, "signed", key.signWith(t, typ, false, requestClaims(e, "signed", redirect))); p.Status != http.StatusBadRequest || p.Location != "" {
				t.Errorf("%s: request object taken at /authorize: %d %s", name, p.Status, p.Location)
			}
			par := url.Values{"request": {key.signWith(t, typ, false, requestClaims(e, "signed", redirect))}, "client_assertion_type": {clientauth.AssertionType},
				"client_assertion": {key.assertion(t, "signed", e.URL+"/par", nil)}}
			if r := e.push(par, "", ""); r.Status != http.StatusBadRequest {
				t.Errorf("%s: request object pushed to /par: %+v", name, r)
			}
		}
		// The media type may carry its application/ prefix (RFC 7515 §4.1.9).
		if p := authorizeStatus(e, "signed", key.signWith(t, "application/oauth-authz-req+jwt", false, requestClaims(e, "signed", redirect))); p.Status != http.StatusFound {
			t.Fatalf("application/oauth-authz-req+jwt refused: %d %s", p.Status, p.Body)
		}
	})

	t.Run("other kinds as client assertion", func(t *testing.T) {
		// The kinds an assertion may have come first: the failures below
		// spend the client's attempts (throttling per client and network).
		for _, typ := range []string{"", "JWT", "client-authentication+jwt", "application/client-authentication+jwt"} {
			if r := cc(key.signWith(t, typ, false, assertionClaims("signed", tokenURL, nil))); r.Status != 200 {
				t.Errorf("assertion with typ %q refused: %s", typ, r.Description)
			}
		}
		for name, jwt := range map[string]string{
			"DPoP proof": key.signWith(t, "dpop+jwt", true, assertionClaims("signed", tokenURL, map[string]any{"htm": "POST", "htu": tokenURL})),
			"access token": key.signWith(t, "at+jwt", false, assertionClaims("signed", tokenURL, map[string]any{"client_id": "signed",
				"scope": "files.read"})),
			"logout token": key.signWith(t, "logout+jwt", false, assertionClaims("signed", tokenURL, map[string]any{
				"events": map[string]any{backchannel.Event: map[string]any{}}})),
			"ID token shaped":              key.signWith(t, "JWT", false, assertionClaims("signed", tokenURL, map[string]any{"nonce": "n", "at_hash": "x"})),
			"untyped request object":       key.signWith(t, "", false, requestClaims(e, "signed", redirect)),
			"embedded jwk, no typ":         key.signWith(t, "", true, assertionClaims("signed", tokenURL, nil)),
			"unknown typ":                  key.signWith(t, "secevent+jwt", false, assertionClaims("signed", tokenURL, nil)),
			"logout events, JWT typ":       key.signWith(t, "JWT", false, assertionClaims("signed", tokenURL, map[string]any{"events": map[string]any{backchannel.Event: map[string]any{}}})),
			"DPoP claims, no typ":          key.signWith(t, "", false, assertionClaims("signed", tokenURL, map[string]any{"htm": "POST", "htu": tokenURL})),
			"access token claims, no typ:": key.signWith(t, "", false, assertionClaims("signed", tokenURL, map[string]any{"cnf": map[string]any{"jkt": "x"}})),
		} {
			if r := cc(jwt); r.Status != 401 || r.Error != "invalid_client" {
				t.Errorf("%s taken as client assertion: %d %s %s", name, r.Status, r.Error, r.Description)
			}
		}
	})

	t.Run("one jti for every kind", func(t *testing.T) {
		// The failed assertions above earned the client a wait; the server's
		// clock moves past it.
		e.Clock.Advance(5 * time.Second)
		jti := rand.Text()
		wantStatus(t, cc(key.signWith(t, "", false, assertionClaims("signed", tokenURL, map[string]any{"jti": jti}))).Status, 200, "assertion", nil)
		obj := requestClaims(e, "signed", redirect)
		obj["jti"] = jti
		if p := authorizeStatus(e, "signed", key.signWith(t, "oauth-authz-req+jwt", false, obj)); p.Status != http.StatusBadRequest {
			t.Errorf("request object with an assertion's jti taken: %d", p.Status)
		}
		jti = rand.Text()
		obj = requestClaims(e, "signed", redirect)
		obj["jti"] = jti
		if p := authorizeStatus(e, "signed", key.signWith(t, "oauth-authz-req+jwt", false, obj)); p.Status != http.StatusFound {
			t.Fatalf("request object: %d %s", p.Status, p.Body)
		}
		wantTokenError(t, cc(key.signWith(t, "", false, assertionClaims("signed", tokenURL, map[string]any{"jti": jti}))), 401, "invalid_client")

		// A DPoP proof made with the client's own key spends its jti too.
		jti = rand.Text()
		proof := key.signWith(t, "dpop+jwt", true, map[string]any{"jti": jti, "htm": "POST", "htu": tokenURL, "iat": time.Now().Unix()})
		if r := e.dpopToken(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}, proof, "robot", e.RobotSecret); r.Status != 200 {
			t.Fatalf("DPoP proof with the client's key: %d %s", r.Status, r.Description)
		}
		wantTokenError(t, cc(key.signWith(t, "", false, assertionClaims("signed", tokenURL, map[string]any{"jti": jti}))), 401, "invalid_client")
	})

	t.Run("forged request objects", func(t *testing.T) {
		pub, _ := key.public().MarshalJSON()
		claims := requestClaims(e, "signed", redirect)
		for name, obj := range map[string]string{
			"alg none":                     unsigned(`{"alg":"none","typ":"oauth-authz-req+jwt"}`, claims),
			"HS256 with the client's JWK":  signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: pub}, (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"), claims),
			"HS256 with the client's JWKS": signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: []byte(jwkSet(key))}, (&jose.SignerOptions{}).WithType("oauth-authz-req+jwt"), claims),
			"another client's":             key.signWith(t, "oauth-authz-req+jwt", false, requestClaims(e, "notes", notesRedirect)),
		} {
			if p := authorizeStatus(e, "signed", obj); p.Status != http.StatusBadRequest || p.Location != "" {
				t.Errorf("%s: request object taken: %d %s", name, p.Status, p.Location)
			}
		}
		// A second client registered with the same public key is not the
		// first: its request objects and assertions name their issuer.
		if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "twin", RedirectURIs: []string{redirect},
			GrantTypes: []string{"authorization_code", "client_credentials"}, Scopes: []string{"openid", "email", "files.read"},
			AuthMethod: clientauth.MethodPrivateKeyJWT, JWKS: jwkSet(key)}, scope.Default()); err != nil {
			t.Fatal(err)
		}
		if p := authorizeStatus(e, "twin", typedObject()); p.Status != http.StatusBadRequest {
			t.Errorf("signed's request object taken for twin: %d %s", p.Status, p.Location)
		}
		f := assertionForm(key.assertion(t, "signed", tokenURL, nil))
		f.Set("client_id", "twin")
		wantTokenError(t, e.token(f, "", ""), 400, "invalid_request")
	})

	t.Run("the issuer is no client", func(t *testing.T) {
		// A client whose id is the issuer would make the server's own
		// tokens (iss = issuer) look like its assertions.
		k := newKeyPair(t, "iss")
		if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: e.URL, GrantTypes: []string{"client_credentials"},
			Scopes: []string{"files.read"}, AuthMethod: clientauth.MethodPrivateKeyJWT, JWKS: jwkSet(k)}, scope.Default()); err != nil {
			t.Fatal(err)
		}
		wantTokenError(t, cc(k.signWith(t, "", false, assertionClaims(e.URL, tokenURL, nil))), 401, "invalid_client")
	})
}

// TestServerJWTKinds: the endpoints that take the server's own JWTs
// (userinfo, introspection, revocation, token exchange, id_token_hint)
// accept their kind only, and nothing forged.
func TestServerJWTKinds(t *testing.T) {
	e := start(t)
	const redirect = "https://signed.example/cb"
	key := signedClient(t, e, "signed", redirect)
	if _, err := admin.AddClient(context.Background(), e.Store, admin.ClientSpec{ID: "gateway", GrantTypes: []string{token.TokenExchangeGrantType},
		Secret: "gateway-secret-for-tests-0123456789"}, scope.Default()); err != nil {
		t.Fatal(err)
	}
	r := e.notesRequest("openid email files.read")
	tok := e.redeem(e.browser().authorize(r, "email", "files.read").Get("code"), r)
	wantStatus(t, tok.Status, 200, "user tokens", tok.Description)
	now := time.Now()
	logout, err := e.Server.Keys.Sign(jwks.TypeLogout, map[string]any{"iss": e.URL, "aud": "notes", "sub": e.UserID, "iat": now.Unix(),
		"exp": now.Add(time.Minute).Unix(), "jti": rand.Text(), "events": map[string]any{backchannel.Event: map[string]any{}}})
	if err != nil {
		t.Fatal(err)
	}
	atClaims := map[string]any{"iss": e.URL, "aud": "api", "sub": e.UserID, "client_id": "notes", "scope": "openid email files.read",
		"exp": now.Add(time.Hour).Unix(), "iat": now.Unix(), "jti": rand.Text()}
	var published jose.JSONWebKeySet
	_, _, set := getBody(t, e.URL+"/jwks.json")
	if err := json.Unmarshal([]byte(set), &published); err != nil || len(published.Keys) == 0 {
		t.Fatalf("jwks: %v %s", err, set)
	}
	serverPub, _ := published.Keys[0].MarshalJSON()
	serverKID := published.Keys[0].KeyID
	forged := map[string]string{
		"ID token":                           tok.IDToken,
		"logout token":                       logout,
		"client assertion":                   key.assertion(t, "signed", e.URL, nil),
		"request object":                     key.signWith(t, "oauth-authz-req+jwt", false, requestClaims(e, "signed", redirect)),
		"DPoP proof":                         newHolder(t).proof(t, "GET", e.URL+"/userinfo", tok.AccessToken),
		"alg none":                           unsigned(`{"alg":"none","typ":"at+jwt"}`, atClaims),
		"HS256 with the server's public key": signJWT(t, jose.SigningKey{Algorithm: jose.HS256, Key: serverPub}, (&jose.SignerOptions{}).WithType("at+jwt"), atClaims),
		"the server's kid, a client's key": signJWT(t, jose.SigningKey{Algorithm: jose.ES256, Key: jose.JSONWebKey{Key: key.priv, KeyID: serverKID}},
			(&jose.SignerOptions{}).WithType("at+jwt"), atClaims),
		"a client's key and kid": key.signWith(t, "at+jwt", false, atClaims),
	}

	for name, raw := range forged {
		if status, _, _ := e.userinfo(raw); status != 401 {
			t.Errorf("userinfo took the %s as access token: %d", name, status)
		}
		if in := e.introspect(raw, "notes", e.NotesSecret); in["active"] != false {
			t.Errorf("introspection says the %s is active: %v", name, in)
		}
		if status, _, body := e.post("/revoke", url.Values{"token": {raw}}, "notes", e.NotesSecret); status != 200 {
			t.Errorf("revoking the %s: %d %s", name, status, body)
		}
		x := url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {raw}, "subject_token_type": {token.AccessTokenType}}
		if r := e.token(x, "gateway", "gateway-secret-for-tests-0123456789"); r.Status != 400 || r.Error != "invalid_grant" {
			t.Errorf("token exchange took the %s as subject_token: %d %s", name, r.Status, r.Error)
		}
		x = url.Values{"grant_type": {token.TokenExchangeGrantType}, "subject_token": {tok.AccessToken}, "subject_token_type": {token.AccessTokenType},
			"actor_token": {raw}, "actor_token_type": {token.AccessTokenType}}
		if r := e.token(x, "gateway", "gateway-secret-for-tests-0123456789"); r.Status != 400 || r.Error != "invalid_grant" {
			t.Errorf("token exchange took the %s as actor_token: %d %s", name, r.Status, r.Error)
		}
		if name == "ID token" {
			continue
		}
		if p := e.browser().get("/end_session?" + url.Values{"id_token_hint": {raw}}.Encode()); p.Status != http.StatusBadRequest {
			t.Errorf("end_session took the %s as id_token_hint: %d", name, p.Status)
		}
	}
	for name, raw := range map[string]string{"access token": tok.AccessToken, "logout token": logout, "client assertion": forged["client assertion"]} {
		if p := e.browser().get("/end_session?" + url.Values{"id_token_hint": {raw}}.Encode()); p.Status != http.StatusBadRequest {
			t.Errorf("end_session took the %s as id_token_hint: %d", name, p.Status)
		}
		req, _ := http.NewRequest("POST", e.URL+"/token", strings.NewReader(url.Values{"grant_type": {"client_credentials"}, "scope": {"files.read"}}.Encode()))
		req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		req.SetBasicAuth("robot", e.RobotSecret)
		req.Header.Set("DPoP", raw)
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		resp.Body.Close()
		if resp.StatusCode != 400 {
			t.Errorf("/token took the %s as DPoP proof: %d", name, resp.StatusCode)
		}
	}
	// What was refused left the real tokens alone.
	if p := e.browser().get("/end_session?" + url.Values{"id_token_hint": {tok.IDToken}}.Encode()); p.Status != http.StatusOK {
		t.Fatalf("end_session with the ID token: %d", p.Status)
	}
	if status, _, _ := e.userinfo(tok.AccessToken); status != 200 {
		t.Fatalf("the access token stopped working: %d", status)
	}
}

// unsigned is a JWT with alg none: header and claims, no signature.
func unsigned(header string, claims map[string]any) string {
	raw, _ := json.Marshal(claims)
	return base64.RawURLEncoding.EncodeToString([]byte(header)) + "." + base64.RawURLEncoding.EncodeToString(raw) + "."
}
