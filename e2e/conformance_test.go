package e2e

import (
	"context"
	"crypto/ecdsa"
	"crypto/rsa"
	"encoding/base64"
	"encoding/json"
	"io"
	"net/http"
	"net/url"
	"slices"
	"strings"
	"testing"
	"time"

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/token"
)

// The tests in this file are named after the modules of the OpenID
// Foundation conformance suite's OP test plans (oidcc-basic-certification,
// oidcc-config-certification, oidcc-dynamic-certification); docs/
// conformance.md maps each module to its test.

// TestConformanceIDTokenSignature plays the dynamic plan's
// oidcc-idtoken-signature (and oidcc-server with each alg): a client
// registers with id_token_signed_response_alg RS256, PS256 or ES256, or with
// none (RS256, OpenID Connect Core §3.1.3.7), and go-oidc verifies its ID
// token against the published keys, accepting only that alg.
func TestConformanceIDTokenSignature(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	provider, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	var meta struct {
		IDTokenAlgs []string `json:"id_token_signing_alg_values_supported"`
		UserinfoAlg []string `json:"userinfo_signing_alg_values_supported"`
	}
	if err := provider.Claims(&meta); err != nil {
		t.Fatal(err)
	}
	if !slices.Equal(meta.IDTokenAlgs, []string{"RS256", "PS256", "ES256"}) || meta.UserinfoAlg != nil {
		t.Fatalf("discovery: id_token algs %v, userinfo algs %v", meta.IDTokenAlgs, meta.UserinfoAlg)
	}
	keys := publishedKeys(t, e)

	for _, tc := range []struct{ name, alg, want string }{
		{"oidcc-idtoken-signature-default-RS256", "", "RS256"},
		{"oidcc-idtoken-signature-RS256", "RS256", "RS256"},
		{"oidcc-idtoken-signature-PS256", "PS256", "PS256"},
		{"oidcc-idtoken-signature-ES256", "ES256", "ES256"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			m := map[string]any{"redirect_uris": []string{"https://app.example/cb"}, "client_name": "Signed " + tc.want, "scope": "openid email"}
			if tc.alg != "" {
				m["id_token_signed_response_alg"] = tc.alg
			}
			app := e.register("POST", "/register", registrationToken, m)
			if app.Status != 201 || app.IDTokenAlg != tc.want {
				t.Fatalf("registration: %+v", app)
			}
			r := authRequest{ClientID: app.ClientID, RedirectURI: "https://app.example/cb", Scope: "openid email", State: "s",
				Nonce: "n-" + tc.want, Verifier: strings.Repeat("v", 43)}
			q := e.browser().authorize(r, "email")
			tok := e.token(url.Values{"grant_type": {"authorization_code"}, "code": {q.Get("code")}, "redirect_uri": {r.RedirectURI},
				"code_verifier": {r.Verifier}}, app.ClientID, app.ClientSecret)
			wantStatus(t, tok.Status, 200, "token", tok.Description)

			hdr := jwtHeader(t, tok.IDToken)
			if hdr.Alg != tc.want || hdr.Typ != "JWT" || keys[hdr.Kid] != keyType(tc.want) {
				t.Fatalf("ID token header %+v; published keys %v", hdr, keys)
			}
			for _, other := range []string{"RS256", "PS256", "ES256"} {
				v := provider.Verifier(&oidc.Config{ClientID: app.ClientID, SupportedSigningAlgs: []string{other}})
				idt, err := v.Verify(ctx, tok.IDToken)
				if other != tc.want {
					if err == nil {
						t.Fatalf("go-oidc accepted the %s ID token as %s", tc.want, other)
					}
					continue
				}
				if err != nil {
					t.Fatalf("go-oidc verify %s: %v", other, err)
				}
				if idt.Nonce != r.Nonce || idt.Subject != e.UserID {
					t.Fatalf("claims: nonce %q sub %q", idt.Nonce, idt.Subject)
				}
				if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
					t.Fatalf("at_hash: %v", err)
				}
			}
			// Access tokens keep ES256 whatever the client's ID token alg.
			if h := jwtHeader(t, tok.AccessToken); h.Alg != "ES256" || h.Kid != e.Server.Keys.ActiveKID() {
				t.Fatalf("access token header %+v", h)
			}
		})
	}

	t.Run("registration refuses unknown and unsigned algs", func(t *testing.T) {
		for _, alg := range []string{"none", "HS256", "RS512", "es256"} {
			r := e.register("POST", "/register", registrationToken, map[string]any{"redirect_uris": []string{"https://app.example/cb"},
				"id_token_signed_response_alg": alg})
			if r.Status != 400 || r.Error != "invalid_client_metadata" {
				t.Fatalf("alg %s: %+v", alg, r)
			}
		}
	})
}

// TestConformanceKeyRotation: a rotation replaces both keys, publishes both
// new kids, and keeps the old ones published, so that ID tokens signed just
// before still verify.
func TestConformanceKeyRotation(t *testing.T) {
	e := start(t)
	before := publishedKeys(t, e)
	if len(before) != 2 || !slices.Contains(mapValues(before), "RSA") || !slices.Contains(mapValues(before), "EC") {
		t.Fatalf("published keys %v: want one RSA and one EC key", before)
	}
	if _, err := e.Server.Keys.Rotate(context.Background()); err != nil {
		t.Fatal(err)
	}
	after := publishedKeys(t, e)
	if len(after) != 4 {
		t.Fatalf("after rotation: %v", after)
	}
	for kid := range before {
		if _, ok := after[kid]; !ok {
			t.Fatalf("old key %s no longer published", kid)
		}
	}
	for _, alg := range []jose.SignatureAlgorithm{jose.RS256, jose.PS256, jose.ES256} {
		kid := e.Server.Keys.KID(alg)
		if _, old := before[kid]; old || after[kid] == "" {
			t.Fatalf("%s signs with %s after rotation", alg, kid)
		}
	}
}

// publishedKeys returns the key type of each kid in /jwks.json, and checks
// that no private or symmetric key is published.
func publishedKeys(t *testing.T, e *env) map[string]string {
	t.Helper()
	resp, err := http.Get(e.URL + "/jwks.json")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var set jose.JSONWebKeySet
	raw, _ := io.ReadAll(resp.Body)
	if err := json.Unmarshal(raw, &set); err != nil {
		t.Fatalf("jwks: %v: %s", err, raw)
	}
	out := map[string]string{}
	for _, k := range set.Keys {
		if !k.IsPublic() || k.Use != "sig" || k.KeyID == "" {
			t.Fatalf("published key %s: public %v use %q", k.KeyID, k.IsPublic(), k.Use)
		}
		if _, dup := out[k.KeyID]; dup {
			t.Fatalf("kid %s published twice", k.KeyID)
		}
		switch k.Key.(type) {
		case *ecdsa.PublicKey:
			out[k.KeyID] = "EC"
		case *rsa.PublicKey:
			out[k.KeyID] = "RSA"
		default:
			t.Fatalf("key %s of type %T", k.KeyID, k.Key)
		}
	}
	return out
}

func keyType(alg string) string {
	if alg == "ES256" {
		return "EC"
	}
	return "RSA"
}

func mapValues(m map[string]string) []string {
	var out []string
	for _, v := range m {
		out = append(out, v)
	}
	return out
}

type joseHeader struct{ Alg, Kid, Typ string }

// jwtHeader decodes a compact JWS's protected header.
func jwtHeader(t *testing.T, raw string) joseHeader {
	t.Helper()
	part, _, _ := strings.Cut(raw, ".")
	b, err := base64.RawURLEncoding.DecodeString(part)
	if err != nil {
		t.Fatalf("header of %q: %v", raw, err)
	}
	var h joseHeader
	if err := json.Unmarshal(b, &h); err != nil {
		t.Fatal(err)
	}
	return h
}

// confClient is one client set-up the basic plan runs with.
type confClient struct {
	name, id, secret, redirect string
	pkce                       bool // sends PKCE; the other sends nonce instead
}

// confRun is one authorization request of a module and what it got.
type confRun struct {
	q        url.Values
	verifier string
	cb       url.Values // the callback's query
}

// TestConformanceBasicPlan runs the modules of oidcc-basic-certification-
// test-plan and oidcc-config-certification-test-plan, one subtest each,
// for a client with the default PKCE policy (it sends PKCE and nonce) and
// for one with the nonce-instead-of-PKCE policy (it sends nonce only, as
// the suite does).
func TestConformanceBasicPlan(t *testing.T) {
	e := start(t)
	ctx := context.Background()
	rpSecret := addNonceClient(t, e)
	e.setProfile(t, amalProfile)
	provider, err := oidc.NewProvider(ctx, e.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, c := range []confClient{
		{"default PKCE policy", "notes", e.NotesSecret, notesRedirect, true},
		{"nonce instead of PKCE", "rp", rpSecret, rpRedirect, false},
	} {
		t.Run(c.name, func(t *testing.T) { conformanceModules(t, e, provider, c) })
	}
	t.Run("oidcc-discovery-endpoint-verification", func(t *testing.T) { discoveryVerification(t, e) })
}

func conformanceModules(t *testing.T, e *env, provider *oidc.Provider, c confClient) {
	ctx := context.Background()
	request := func(scope string, extra url.Values) confRun {
		q := url.Values{"response_type": {"code"}, "client_id": {c.id}, "redirect_uri": {c.redirect}, "scope": {scope},
			"state": {"s-" + randString()}, "nonce": {"n-" + randString()}}
		r := confRun{q: q}
		if c.pkce {
			r.verifier = randString() + randString()
			q.Set("code_challenge", token.S256(r.verifier))
			q.Set("code_challenge_method", "S256")
		}
		for k, v := range extra {
			q[k] = v
		}
		return r
	}
	// flow runs a request in b to the callback and checks state and iss.
	flow := func(t *testing.T, b *browser, r confRun) confRun {
		t.Helper()
		r.cb = follow(t, b, "/authorize?"+r.q.Encode(), c.redirect)
		if r.cb.Get("state") != r.q.Get("state") || r.cb.Get("iss") != e.URL {
			t.Fatalf("callback %v", r.cb)
		}
		return r
	}
	exchange := func(t *testing.T, r confRun, post bool) tokenResult {
		t.Helper()
		f := url.Values{"grant_type": {"authorization_code"}, "code": {r.cb.Get("code")}, "redirect_uri": {c.redirect}}
		if r.verifier != "" {
			f.Set("code_verifier", r.verifier)
		}
		if post { // client_secret_post (RFC 6749 §2.3.1)
			f.Set("client_id", c.id)
			f.Set("client_secret", c.secret)
			return e.token(f, "", "")
		}
		return e.token(f, c.id, c.secret)
	}
	// verify checks the ID token with go-oidc (RS256, the default) and
	// the nonce sent.
	verify := func(t *testing.T, r confRun, tok tokenResult) *oidc.IDToken {
		t.Helper()
		wantStatus(t, tok.Status, 200, "token", tok.Description)
		idt, err := provider.Verifier(&oidc.Config{ClientID: c.id}).Verify(ctx, tok.IDToken)
		if err != nil {
			t.Fatalf("go-oidc: %v", err)
		}
		if idt.Nonce != r.q.Get("nonce") || idt.Subject != e.UserID || idt.AccessTokenHash == "" {
			t.Fatalf("ID token: nonce %q (sent %q), sub %q, at_hash %q", idt.Nonce, r.q.Get("nonce"), idt.Subject, idt.AccessTokenHash)
		}
		if err := idt.VerifyAccessToken(tok.AccessToken); err != nil {
			t.Fatal(err)
		}
		return idt
	}
	happy := func(t *testing.T, b *browser, scope string, extra url.Values) (confRun, tokenResult, *oidc.IDToken) {
		t.Helper()
		r := flow(t, b, request(scope, extra))
		tok := exchange(t, r, false)
		return r, tok, verify(t, r, tok)
	}
	userinfo := func(t *testing.T, method, at string, body bool) map[string]any {
		t.Helper()
		var req *http.Request
		if body {
			req, _ = http.NewRequest(method, e.URL+"/userinfo", strings.NewReader(url.Values{"access_token": {at}}.Encode()))
			req.Header.Set("Content-Type", "application/x-www-form-urlencoded")
		} else {
			req, _ = http.NewRequest(method, e.URL+"/userinfo", nil)
			req.Header.Set("Authorization", "Bearer "+at)
		}
		resp, err := http.DefaultClient.Do(req)
		if err != nil {
			t.Fatal(err)
		}
		defer resp.Body.Close()
		var m map[string]any
		_ = json.NewDecoder(resp.Body).Decode(&m)
		if resp.StatusCode != 200 || m["sub"] != e.UserID {
			t.Fatalf("userinfo %s: %d %v", method, resp.StatusCode, m)
		}
		return m
	}
	wantError := func(t *testing.T, p page, code string) {
		t.Helper()
		u, _ := url.Parse(p.Location)
		if p.Status != http.StatusFound || !strings.HasPrefix(p.Location, c.redirect) || u.Query().Get("error") != code {
			t.Fatalf("want error %s at the redirect URI, got %d %s", code, p.Status, p.Location)
		}
	}
	// A browser signed in once, for the modules that need a session.
	signedIn := e.browser()
	_, first, _ := happy(t, signedIn, "openid profile email offline_access", nil)

	for _, m := range []struct {
		name string
		run  func(t *testing.T)
	}{
		{"oidcc-server", func(t *testing.T) { happy(t, e.browser(), "openid", nil) }},
		{"oidcc-response-type-missing", func(t *testing.T) {
			r := request("openid", nil)
			r.q.Del("response_type")
			wantError(t, signedIn.get("/authorize?"+r.q.Encode()), "invalid_request")
		}},
		{"oidcc-userinfo-get", func(t *testing.T) { userinfo(t, "GET", first.AccessToken, false) }},
		{"oidcc-userinfo-post-header", func(t *testing.T) { userinfo(t, "POST", first.AccessToken, false) }},
		{"oidcc-userinfo-post-body", func(t *testing.T) { userinfo(t, "POST", first.AccessToken, true) }},
		{"oidcc-ensure-request-without-nonce-succeeds-for-code-flow", func(t *testing.T) {
			r := request("openid", nil)
			r.q.Del("nonce")
			if !c.pkce {
				// Without nonce the client must send PKCE: a request
				// with neither has no defence against code injection.
				wantError(t, signedIn.get("/authorize?"+r.q.Encode()), "invalid_request")
				r.verifier = randString() + randString()
				r.q.Set("code_challenge", token.S256(r.verifier))
				r.q.Set("code_challenge_method", "S256")
			}
			r = flow(t, signedIn, r)
			tok := exchange(t, r, false)
			wantStatus(t, tok.Status, 200, "token", tok.Description)
			if _, ok := claimsOf(t, tok.IDToken)["nonce"]; ok {
				t.Fatal("ID token carries a nonce nobody sent")
			}
		}},
		{"oidcc-scope-profile", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid profile", nil)
			if u := userinfo(t, "GET", tok.AccessToken, false); u["name"] == nil || u["email"] != nil {
				t.Fatalf("userinfo %v", u)
			}
		}},
		{"oidcc-scope-email", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid email", nil)
			if u := userinfo(t, "GET", tok.AccessToken, false); u["email"] != "amal@example.com" || u["email_verified"] != true || u["name"] != nil {
				t.Fatalf("userinfo %v", u)
			}
		}},
		{"oidcc-scope-address", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid address", nil)
			if u := userinfo(t, "GET", tok.AccessToken, false); u["address"] == nil || u["name"] != nil || u["phone_number"] != nil {
				t.Fatalf("userinfo %v", u)
			}
		}},
		{"oidcc-scope-phone", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid phone", nil)
			if u := userinfo(t, "GET", tok.AccessToken, false); u["phone_number"] != "+962791234567" || u["phone_number_verified"] != true || u["address"] != nil {
				t.Fatalf("userinfo %v", u)
			}
		}},
		{"oidcc-scope-all", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid profile email address phone", nil)
			u := userinfo(t, "GET", tok.AccessToken, false)
			for _, c := range []string{"name", "given_name", "family_name", "birthdate", "updated_at", "email", "address", "phone_number"} {
				if u[c] == nil {
					t.Fatalf("userinfo lacks %s: %v", c, u)
				}
			}
		}},
		{"oidcc-ensure-other-scope-order-succeeds", func(t *testing.T) { happy(t, signedIn, "email openid", nil) }},
		{"oidcc-display-page", func(t *testing.T) { happy(t, signedIn, "openid", url.Values{"display": {"page"}}) }},
		{"oidcc-display-popup", func(t *testing.T) { happy(t, signedIn, "openid", url.Values{"display": {"popup"}}) }},
		{"oidcc-prompt-login", func(t *testing.T) {
			b := e.browser()
			_, tok, _ := happy(t, b, "openid", nil)
			before := claimsOf(t, tok.IDToken)["auth_time"].(float64)
			e.Clock.Advance(2 * time.Second)
			r := request("openid", url.Values{"prompt": {"login"}})
			if p := b.get("/authorize?" + r.q.Encode()); !strings.HasPrefix(p.Location, "/login") {
				t.Fatalf("prompt=login with a session: %d %s", p.Status, p.Location)
			}
			r = flow(t, b, r)
			tok = exchange(t, r, false)
			verify(t, r, tok)
			if after := claimsOf(t, tok.IDToken)["auth_time"].(float64); after <= before {
				t.Fatalf("auth_time %v, before %v", after, before)
			}
		}},
		{"oidcc-prompt-none-not-logged-in", func(t *testing.T) {
			r := request("openid", url.Values{"prompt": {"none"}})
			wantError(t, e.browser().get("/authorize?"+r.q.Encode()), "login_required")
		}},
		{"oidcc-prompt-none-logged-in", func(t *testing.T) {
			r := request("openid", url.Values{"prompt": {"none"}})
			p := signedIn.get("/authorize?" + r.q.Encode())
			if !strings.HasPrefix(p.Location, c.redirect) {
				t.Fatalf("prompt=none with a session: %d %s", p.Status, p.Location)
			}
			r.cb, _ = url.ParseQuery(p.Location[strings.Index(p.Location, "?")+1:])
			verify(t, r, exchange(t, r, false))
		}},
		{"oidcc-max-age-1", func(t *testing.T) {
			b := e.browser()
			happy(t, b, "openid", nil)
			e.Clock.Advance(2 * time.Second)
			r := request("openid", url.Values{"max_age": {"1"}})
			if p := b.get("/authorize?" + r.q.Encode()); !strings.HasPrefix(p.Location, "/login") {
				t.Fatalf("max_age=1 two seconds after login: %d %s", p.Status, p.Location)
			}
			before := e.Clock.Now().Unix() // the clock ticks in real time
			r = flow(t, b, r)
			tok := exchange(t, r, false)
			verify(t, r, tok)
			if at := int64(claimsOf(t, tok.IDToken)["auth_time"].(float64)); at < before {
				t.Fatalf("auth_time %v is not the new login (begun at %v)", at, before)
			}
		}},
		{"oidcc-max-age-10000", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid", url.Values{"max_age": {"10000"}})
			if _, ok := claimsOf(t, tok.IDToken)["auth_time"]; !ok {
				t.Fatal("no auth_time with max_age (OpenID Connect Core section 3.1.2.1)")
			}
		}},
		{"oidcc-ensure-request-with-unknown-parameter-succeeds", func(t *testing.T) {
			happy(t, signedIn, "openid", url.Values{"extra": {"foobar"}})
		}},
		{"oidcc-id-token-hint", func(t *testing.T) {
			happy(t, signedIn, "openid", url.Values{"prompt": {"none"}, "id_token_hint": {first.IDToken}})
		}},
		{"oidcc-login-hint", func(t *testing.T) { happy(t, e.browser(), "openid", url.Values{"login_hint": {userName}}) }},
		{"oidcc-ui-locales", func(t *testing.T) { happy(t, e.browser(), "openid", url.Values{"ui_locales": {"ar en"}}) }},
		{"oidcc-claims-locales", func(t *testing.T) { happy(t, signedIn, "openid", url.Values{"claims_locales": {"se"}}) }},
		{"oidcc-ensure-request-with-acr-values-succeeds", func(t *testing.T) {
			happy(t, signedIn, "openid", url.Values{"acr_values": {"1 2"}})
		}},
		{"oidcc-codereuse", func(t *testing.T) {
			r, _, _ := happy(t, signedIn, "openid", nil)
			wantTokenError(t, exchange(t, r, false), 400, "invalid_grant")
		}},
		{"oidcc-codereuse-30seconds", func(t *testing.T) {
			r, tok, _ := happy(t, signedIn, "openid", nil)
			e.Clock.Advance(30 * time.Second)
			wantTokenError(t, exchange(t, r, false), 400, "invalid_grant")
			// RFC 6749 §4.1.2: the tokens issued with the code are revoked.
			if status, _, _ := e.userinfo(tok.AccessToken); status != 401 {
				t.Fatalf("access token of a replayed code: userinfo %d", status)
			}
		}},
		{"oidcc-ensure-registered-redirect-uri", func(t *testing.T) {
			r := request("openid", nil)
			r.q.Set("redirect_uri", "https://attacker.example/cb")
			if p := signedIn.get("/authorize?" + r.q.Encode()); p.Status != 400 || p.Location != "" {
				t.Fatalf("unregistered redirect_uri: %d %s", p.Status, p.Location)
			}
		}},
		{"oidcc-server-client-secret-post", func(t *testing.T) {
			r := flow(t, signedIn, request("openid", nil))
			verify(t, r, exchange(t, r, true))
		}},
		{"oidcc-unsigned-request-object-supported-correctly-or-rejected-as-unsupported", func(t *testing.T) {
			r := request("openid", nil)
			seg := func(s string) string { return base64.RawURLEncoding.EncodeToString([]byte(s)) }
			claims, _ := json.Marshal(map[string]string{"client_id": c.id, "redirect_uri": c.redirect, "scope": "openid", "response_type": "code",
				"state": r.q.Get("state"), "nonce": r.q.Get("nonce")})
			q := url.Values{"client_id": {c.id}, "response_type": {"code"}, "scope": {"openid"}, "redirect_uri": {c.redirect},
				"request": {seg(`{"alg":"none"}`) + "." + seg(string(claims)) + "."}}
			p := signedIn.get("/authorize?" + q.Encode())
			u, _ := url.Parse(p.Location)
			if u.Query().Has("code") || (p.Status != 400 && u.Query().Get("error") == "") {
				t.Fatalf("unsigned request object: %d %s", p.Status, p.Location)
			}
		}},
		{"oidcc-claims-essential", func(t *testing.T) {
			_, tok, _ := happy(t, signedIn, "openid", url.Values{"claims": {`{"userinfo":{"name":{"essential":true}}}`}})
			if u := userinfo(t, "GET", tok.AccessToken, false); u["name"] != "Amal Haddad" || u["email"] != nil {
				t.Fatalf("userinfo %v", u)
			}
		}},
		{"oidcc-refresh-token", func(t *testing.T) {
			_, tok, idt := happy(t, signedIn, "openid offline_access", nil)
			f := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {tok.RefreshToken}}
			next := e.token(f, c.id, c.secret)
			wantStatus(t, next.Status, 200, "refresh", next.Description)
			again, err := provider.Verifier(&oidc.Config{ClientID: c.id}).Verify(ctx, next.IDToken)
			if err != nil || again.Subject != idt.Subject {
				t.Fatalf("refreshed ID token: %v %+v", err, again)
			}
			if next.RefreshToken == "" || next.RefreshToken == tok.RefreshToken {
				t.Fatal("the refresh token was not rotated")
			}
			// Once the rotated token was used, the old one is spent: within the
			// grace period only a retry of the same rotation would be honoured.
			f2 := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {next.RefreshToken}}
			wantStatus(t, e.token(f2, c.id, c.secret).Status, 200, "second refresh", nil)
			wantTokenError(t, e.token(f, c.id, c.secret), 400, "invalid_grant")
		}},
		{"oidcc-ensure-request-with-valid-pkce-succeeds", func(t *testing.T) {
			r := request("openid", nil)
			r.verifier = randString() + randString()
			r.q.Set("code_challenge", token.S256(r.verifier))
			r.q.Set("code_challenge_method", "S256")
			r = flow(t, signedIn, r)
			verify(t, r, exchange(t, r, false))
		}},
		{"oidcc-ensure-post-request-succeeds", func(t *testing.T) {
			r := request("openid", nil)
			p := signedIn.post("/authorize", r.q)
			u, _ := url.Parse(p.Location)
			if !strings.HasPrefix(p.Location, c.redirect) || !u.Query().Has("code") {
				t.Fatalf("POST /authorize: %d %s", p.Status, p.Location)
			}
			r.cb = u.Query()
			verify(t, r, exchange(t, r, false))
		}},
	} {
		t.Run(m.name, m.run)
	}
}

// discoveryVerification is oidcc-discovery-endpoint-verification: the
// metadata OpenID Connect Discovery §3 requires, with values bawwab
// really accepts.
func discoveryVerification(t *testing.T, e *env) {
	resp, err := http.Get(e.URL + "/.well-known/openid-configuration")
	if err != nil {
		t.Fatal(err)
	}
	defer resp.Body.Close()
	var m map[string]any
	if err := json.NewDecoder(resp.Body).Decode(&m); err != nil || resp.StatusCode != 200 ||
		!strings.HasPrefix(resp.Header.Get("Content-Type"), "application/json") {
		t.Fatalf("discovery: %d %v", resp.StatusCode, err)
	}
	list := func(k string) []string {
		var out []string
		for _, v := range m[k].([]any) {
			out = append(out, v.(string))
		}
		return out
	}
	for _, k := range []string{"authorization_endpoint", "token_endpoint", "userinfo_endpoint", "jwks_uri"} {
		if s, _ := m[k].(string); !strings.HasPrefix(s, e.URL+"/") {
			t.Fatalf("%s = %v", k, m[k])
		}
	}
	switch {
	case m["issuer"] != e.URL:
		t.Fatalf("issuer %v", m["issuer"])
	case !slices.Contains(list("response_types_supported"), "code"):
		t.Fatal("response_types_supported lacks code")
	case !slices.Contains(list("subject_types_supported"), "public"):
		t.Fatal("subject_types_supported lacks public")
	case list("id_token_signing_alg_values_supported")[0] != "RS256":
		t.Fatal("id_token_signing_alg_values_supported must include RS256")
	case slices.Contains(list("id_token_signing_alg_values_supported"), "none"):
		t.Fatal("none is advertised")
	case !slices.Contains(list("scopes_supported"), "openid"):
		t.Fatal("scopes_supported lacks openid")
	case !slices.Contains(list("claims_supported"), "sub"):
		t.Fatal("claims_supported lacks sub")
	case !slices.Contains(list("token_endpoint_auth_methods_supported"), "client_secret_basic"):
		t.Fatal("token_endpoint_auth_methods_supported lacks client_secret_basic")
	case slices.Contains(list("request_object_signing_alg_values_supported"), "none"):
		t.Fatal("unsigned request objects are refused, so none must not be advertised")
	case m["userinfo_signing_alg_values_supported"] != nil:
		t.Fatal("userinfo is never signed, so no userinfo_signing_alg_values_supported")
	case m["request_uri_parameter_supported"] != false:
		t.Fatal("request_uri_parameter_supported defaults to true (Discovery section 3): bawwab takes request_uri only from /par")
	}
	for _, a := range list("token_endpoint_auth_signing_alg_values_supported") {
		if a == "none" {
			t.Fatal("none is advertised for client assertions")
		}
	}
	publishedKeys(t, e)
}

func randString() string { return token.NewOpaque() }
