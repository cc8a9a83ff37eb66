package token

import (
	"crypto/sha256"
	"crypto/subtle"
	"encoding/base64"
	"slices"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// PKCE (RFC 7636). bawwab accepts only the S256 method (RFC 9700 §2.1.1),
// and requires it of every client but those the operator lets send nonce
// instead (see CheckChallenge).
const PKCEMethodS256 = "S256"

// ValidVerifier reports whether v has the form of RFC 7636 §4.1:
//
//	code-verifier = 43*128unreserved
//	unreserved = ALPHA / DIGIT / "-" / "." / "_" / "~"
func ValidVerifier(v string) bool {
	if len(v) < 43 || len(v) > 128 {
		return false
	}
	for i := 0; i < len(v); i++ {
		c := v[i]
		if !(c >= 'A' && c <= 'Z' || c >= 'a' && c <= 'z' || c >= '0' && c <= '9' || c == '-' || c == '.' || c == '_' || c == '~') {
			return false
		}
	}
	return true
}

// ValidChallenge reports whether c has the form of an S256 code_challenge:
// the unpadded base64url of a SHA-256, 43 characters.
func ValidChallenge(c string) bool {
	b, err := base64.RawURLEncoding.DecodeString(c)
	return err == nil && len(b) == sha256.Size
}

// S256 returns BASE64URL(SHA256(ASCII(verifier))) (RFC 7636 §4.2).
func S256(verifier string) string {
	sum := sha256.Sum256([]byte(verifier))
	return base64.RawURLEncoding.EncodeToString(sum[:])
}

// VerifyPKCE checks a verifier against an S256 challenge in constant time.
func VerifyPKCE(verifier, challenge string) bool {
	return subtle.ConstantTimeCompare([]byte(S256(verifier)), []byte(challenge)) == 1
}

// CheckChallenge checks the PKCE part of an authorization request (RFC
// 7636 §4.3). Every client must send an S256 code_challenge, except that a
// confidential client whose policy is storage.PKCENonceInstead may leave
// it out of a request that asks for openid and carries a nonce: RFC 9700
// §2.1.1 accepts nonce as the defence against code injection for
// confidential OpenID Connect clients. Public clients never may. A
// challenge that is sent is always held to the rules, whatever the policy.
func CheckChallenge(c *storage.Client, challenge, method string, scopes []string, nonce string) *oautherr.Error {
	if challenge == "" && method == "" {
		if c.PKCEPolicy == storage.PKCENonceInstead && !c.Public && slices.Contains(scopes, "openid") && nonce != "" {
			return nil
		}
		if c.PKCEPolicy == storage.PKCENonceInstead && !c.Public {
			return oautherr.New(oautherr.InvalidRequest, "code_challenge is required, unless the request asks for openid and sends a nonce (RFC 9700 section 2.1.1)")
		}
		return oautherr.New(oautherr.InvalidRequest, "code_challenge is required: bawwab requires PKCE with S256 (RFC 7636, RFC 9700 section 2.1.1)")
	}
	switch {
	case challenge == "":
		return oautherr.New(oautherr.InvalidRequest, "code_challenge_method was sent without code_challenge")
	case method == "plain":
		return oautherr.New(oautherr.InvalidRequest, "code_challenge_method=plain is not allowed; use S256")
	case method != PKCEMethodS256:
		return oautherr.New(oautherr.InvalidRequest, "code_challenge_method must be S256")
	case !ValidChallenge(challenge):
		return oautherr.New(oautherr.InvalidRequest, "code_challenge must be the base64url SHA-256 of the code_verifier (43 characters)")
	}
	return nil
}

// checkVerifierForm checks code_verifier before the code is looked up:
// its form when sent, and its presence for a client that must use PKCE.
func checkVerifierForm(c *storage.Client, verifier string) *oautherr.Error {
	switch {
	case verifier == "" && (c.PKCEPolicy != storage.PKCENonceInstead || c.Public):
		return oautherr.New(oautherr.InvalidRequest, "code_verifier is required: bawwab requires PKCE (RFC 7636)")
	case verifier != "" && !ValidVerifier(verifier):
		return oautherr.New(oautherr.InvalidRequest, "code_verifier must be 43 to 128 characters of [A-Za-z0-9-._~] (RFC 7636 section 4.1)")
	}
	return nil
}

// checkVerifier holds a code to what its authorization request chose (RFC
// 7636 §4.6): a code issued for a code_challenge needs the matching
// verifier, and a verifier sent for a code issued without one is refused,
// so that PKCE cannot be added or dropped after the fact (RFC 9700 §4.8.2).
func checkVerifier(verifier, challenge string) *oautherr.Error {
	switch {
	case challenge != "" && verifier == "":
		return oautherr.New(oautherr.InvalidGrant, "code_verifier is required: the authorization request sent a code_challenge")
	case challenge == "" && verifier != "":
		return oautherr.New(oautherr.InvalidGrant, "the authorization request sent no code_challenge, so no code_verifier may be sent")
	case challenge != "" && !VerifyPKCE(verifier, challenge):
		return oautherr.New(oautherr.InvalidGrant, "code_verifier does not match the code_challenge (PKCE)")
	}
	return nil
}
