package clientauth

import (
	"testing"

	"github.com/go-jose/go-jose/v4"
)

// TestAssertionKind: a JWT is a client assertion only when nothing about
// it says it is another kind (RFC 8725 §3.11): its typ, a key in its
// header, the claims of ID tokens, logout tokens, DPoP proofs, bound
// access tokens and request objects, or this server as its issuer.
func TestAssertionKind(t *testing.T) {
	issuers := []string{"https://id.example", "https://id.example/token"}
	base := func(extra map[string]any) map[string]any {
		c := map[string]any{"iss": "app", "sub": "app", "aud": "https://id.example", "jti": "j", "exp": 1}
		for k, v := range extra {
			c[k] = v
		}
		return c
	}
	tests := []struct {
		name    string
		signed  Signed
		claims  map[string]any
		wantErr bool
	}{
		{"RFC 7523 assertion, no typ", Signed{}, base(nil), false},
		{"typ JWT", Signed{Typ: "jwt"}, base(nil), false},
		{"typ client-authentication+jwt", Signed{Typ: TypAssertion}, base(nil), false},
		{"extra harmless claims", Signed{}, base(map[string]any{"iat": 1, "nbf": 1, "client_id": "app"}), false},
		{"request object", Signed{Typ: TypRequestObject}, base(nil), true},
		{"DPoP proof", Signed{Typ: "dpop+jwt", Embedded: true}, base(nil), true},
		{"access token", Signed{Typ: "at+jwt"}, base(nil), true},
		{"logout token", Signed{Typ: "logout+jwt"}, base(nil), true},
		{"unknown typ", Signed{Typ: "secevent+jwt"}, base(nil), true},
		{"embedded key", Signed{Embedded: true}, base(nil), true},
		{"issued by this server", Signed{}, base(map[string]any{"iss": "https://id.example", "sub": "https://id.example"}), true},
		{"issued by this server's token endpoint", Signed{}, base(map[string]any{"iss": "https://id.example/token"}), true},
		{"ID token: nonce", Signed{Typ: "jwt"}, base(map[string]any{"nonce": "n"}), true},
		{"ID token: at_hash", Signed{}, base(map[string]any{"at_hash": "h"}), true},
		{"ID token: auth_time", Signed{}, base(map[string]any{"auth_time": 1}), true},
		{"logout token: events", Signed{}, base(map[string]any{"events": map[string]any{}}), true},
		{"logout token: sid", Signed{}, base(map[string]any{"sid": "s"}), true},
		{"DPoP proof: htm htu", Signed{}, base(map[string]any{"htm": "POST", "htu": "https://id.example/token"}), true},
		{"DPoP proof: ath", Signed{}, base(map[string]any{"ath": "h"}), true},
		{"bound access token: cnf", Signed{}, base(map[string]any{"cnf": map[string]any{"jkt": "x"}}), true},
		{"untyped request object", Signed{}, base(map[string]any{"response_type": "code", "redirect_uri": "https://a.example/cb"}), true},
		{"untyped request object: code_challenge", Signed{}, base(map[string]any{"code_challenge": "c"}), true},
		{"untyped request object: request_uri", Signed{}, base(map[string]any{"request_uri": "urn:x"}), true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := assertionKind(tt.signed, tt.claims, issuers)
			if (err != nil) != tt.wantErr {
				t.Fatalf("assertionKind = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestTyp: typ values compare without case and without the
// "application/" prefix (RFC 7515 §4.1.9).
func TestTyp(t *testing.T) {
	tests := []struct {
		name string
		typ  any
		want string
	}{
		{"absent", nil, ""},
		{"not a string", 7, ""},
		{"JWT", "JWT", "jwt"},
		{"request object", "oauth-authz-req+jwt", TypRequestObject},
		{"with prefix", "application/oauth-authz-req+jwt", TypRequestObject},
		{"upper case", "Application/OAuth-Authz-Req+JWT", TypRequestObject},
		{"prefix only once", "application/application/oauth-authz-req+jwt", "application/oauth-authz-req+jwt"},
		{"suffix is not the type", "x-oauth-authz-req+jwt", "x-oauth-authz-req+jwt"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			h := jose.Header{ExtraHeaders: map[jose.HeaderKey]any{}}
			if tt.typ != nil {
				h.ExtraHeaders[jose.HeaderType] = tt.typ
			}
			if got := Typ(h); got != tt.want {
				t.Fatalf("Typ = %q, want %q", got, tt.want)
			}
		})
	}
}
