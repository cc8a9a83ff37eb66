package clientauth

import (
	"testing"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestCheckMethod: a client authenticates only with the method it was
// registered with (RFC 7591 §2, RFC 6749 §2.3, RFC 7523 §2.2); each
// mismatch is invalid_client.
func TestCheckMethod(t *testing.T) {
	confidential := &storage.Client{ID: "c", AuthMethod: MethodBasic}
	public := &storage.Client{ID: "p", Public: true, AuthMethod: MethodNone}
	jwt := &storage.Client{ID: "j", AuthMethod: MethodPrivateKeyJWT}
	hmac := &storage.Client{ID: "h", AuthMethod: MethodSecretJWT}
	tests := []struct {
		name    string
		client  *storage.Client
		method  string
		wantErr bool
	}{
		{"confidential, basic", confidential, MethodBasic, false},
		{"confidential, post", confidential, MethodPost, false},
		{"confidential, none", confidential, MethodNone, true},
		{"confidential, assertion", confidential, methodAssertion, true},
		{"public, none", public, MethodNone, false},
		{"public, a secret", public, MethodPost, true},
		{"public, assertion", public, methodAssertion, true},
		{"private_key_jwt, assertion", jwt, methodAssertion, false},
		{"private_key_jwt, a secret", jwt, MethodBasic, true},
		{"private_key_jwt, none", jwt, MethodNone, true},
		{"client_secret_jwt, assertion", hmac, methodAssertion, false},
		{"client_secret_jwt, its secret in basic", hmac, MethodBasic, true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkMethod(tt.client, tt.method)
			if (err != nil) != tt.wantErr || err != nil && oautherr.Code(err) != oautherr.InvalidClient {
				t.Fatalf("checkMethod = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}
