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

	"github.com/coreos/go-oidc/v3/oidc"
	"github.com/go-jose/go-jose/v4"
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
