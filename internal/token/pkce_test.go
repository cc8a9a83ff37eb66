package token

import (
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

var (
	strict      = &storage.Client{ID: "strict"}
	nonceOK     = &storage.Client{ID: "rp", PKCEPolicy: storage.PKCENonceInstead}
	publicNonce = &storage.Client{ID: "spa", Public: true, PKCEPolicy: storage.PKCENonceInstead} // never stored: admin refuses it
	verifier    = strings.Repeat("v", 43)
	challenge   = S256(verifier)
)

func wantCode(t *testing.T, got *oautherr.Error, want string) {
	t.Helper()
	switch {
	case want == "" && got != nil:
		t.Fatalf("got %v, want success", got)
	case want != "" && (got == nil || got.Code != want):
		t.Fatalf("got %v, want %s", got, want)
	}
}

// TestCheckChallenge pins every branch of the authorization request's PKCE
// check, per client policy.
func TestCheckChallenge(t *testing.T) {
	openid := []string{"openid", "email"}
	for _, tc := range []struct {
		name              string
		client            *storage.Client
		challenge, method string
		scopes            []string
		nonce             string
		want              string
	}{
		{"strict: S256", strict, challenge, "S256", openid, "n", ""},
		{"strict: no PKCE even with nonce", strict, "", "", openid, "n", oautherr.InvalidRequest},
		{"strict: plain", strict, verifier, "plain", openid, "", oautherr.InvalidRequest},
		{"strict: no method", strict, challenge, "", openid, "", oautherr.InvalidRequest},
		{"strict: method without challenge", strict, "", "S256", openid, "", oautherr.InvalidRequest},
		{"strict: malformed challenge", strict, "abc", "S256", openid, "", oautherr.InvalidRequest},
		{"nonce policy: nonce with openid, no PKCE", nonceOK, "", "", openid, "n", ""},
		{"nonce policy: S256 without nonce", nonceOK, challenge, "S256", openid, "", ""},
		{"nonce policy: neither", nonceOK, "", "", openid, "", oautherr.InvalidRequest},
		{"nonce policy: nonce without openid", nonceOK, "", "", []string{"email"}, "n", oautherr.InvalidRequest},
		{"nonce policy: a sent challenge is still checked", nonceOK, "abc", "S256", openid, "n", oautherr.InvalidRequest},
		{"nonce policy: plain is still refused", nonceOK, verifier, "plain", openid, "n", oautherr.InvalidRequest},
		{"nonce policy: method alone", nonceOK, "", "S256", openid, "n", oautherr.InvalidRequest},
		{"public client: the policy does not apply", publicNonce, "", "", openid, "n", oautherr.InvalidRequest},
	} {
		t.Run(tc.name, func(t *testing.T) {
			wantCode(t, CheckChallenge(tc.client, tc.challenge, tc.method, tc.scopes, tc.nonce), tc.want)
		})
	}
}

// TestVerifierChecks pins the token endpoint's PKCE branches: before the
// code is read (form, presence per policy) and against the code (no
// downgrade, no upgrade, match).
func TestVerifierChecks(t *testing.T) {
	for _, tc := range []struct {
		name      string
		client    *storage.Client
		verifier  string
		challenge string // of the stored code
		wantForm  string
		wantCode  string
	}{
		{"strict: match", strict, verifier, challenge, "", ""},
		{"strict: missing", strict, "", challenge, oautherr.InvalidRequest, ""},
		{"strict: malformed", strict, "short", challenge, oautherr.InvalidRequest, ""},
		{"strict: wrong", strict, strings.Repeat("w", 43), challenge, "", oautherr.InvalidGrant},
		{"nonce policy: code without challenge, no verifier", nonceOK, "", "", "", ""},
		{"nonce policy: code without challenge, verifier sent", nonceOK, verifier, "", "", oautherr.InvalidGrant},
		{"nonce policy: code with challenge, verifier left out", nonceOK, "", challenge, "", oautherr.InvalidGrant},
		{"nonce policy: code with challenge, match", nonceOK, verifier, challenge, "", ""},
		{"nonce policy: code with challenge, wrong", nonceOK, strings.Repeat("w", 43), challenge, "", oautherr.InvalidGrant},
		{"nonce policy: malformed", nonceOK, "short", "", oautherr.InvalidRequest, ""},
		{"public with policy: missing", publicNonce, "", "", oautherr.InvalidRequest, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			form := checkVerifierForm(tc.client, tc.verifier)
			wantCode(t, form, tc.wantForm)
			if form == nil {
				wantCode(t, checkVerifier(tc.verifier, tc.challenge), tc.wantCode)
			}
		})
	}
}
