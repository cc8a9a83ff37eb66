package adminapi

import (
	"strings"
	"testing"
)

// TestBackupClientCheck pins what an imported client must meet, one row
// per rule: the secret hash goes with the auth method, and a backup cannot
// bring in what registration would refuse.
func TestBackupClientCheck(t *testing.T) {
	hash := strings.Repeat("ab", 32)
	client := func(f func(*BackupClient)) BackupClient {
		c := BackupClient{Client: Client{NewClient: NewClient{ID: "c", RedirectURIs: []string{"https://a.example/cb"}}}, SecretHash: hash}
		f(&c)
		return c
	}
	for _, tt := range []struct {
		name    string
		c       BackupClient
		wantErr string
	}{
		{"confidential", client(func(*BackupClient) {}), ""},
		{"public", client(func(c *BackupClient) { c.Public, c.SecretHash = true, "" }), ""},
		{"private key", client(func(c *BackupClient) { c.AuthMethod, c.SecretHash = "private_key_jwt", "" }), ""},
		{"nonce instead", client(func(c *BackupClient) { c.PKCEPolicy = "nonce_instead" }), ""},
		{"no id", client(func(c *BackupClient) { c.ID = "" }), "client_id is required"},
		{"no secret", client(func(c *BackupClient) { c.SecretHash = "" }), "exactly when the client authenticates with a secret"},
		{"public with secret", client(func(c *BackupClient) { c.Public = true }), "exactly when the client authenticates with a secret"},
		{"private key with secret", client(func(c *BackupClient) { c.AuthMethod = "private_key_jwt" }), "exactly when the client authenticates with a secret"},
		{"short hash", client(func(c *BackupClient) { c.SecretHash = "abcd" }), "exactly when the client authenticates with a secret"},
		{"public token exchange", client(func(c *BackupClient) {
			c.Public, c.SecretHash, c.GrantTypes = true, "", []string{"urn:ietf:params:oauth:grant-type:token-exchange"}
		}), "a public client cannot use token exchange"},
		{"fragment", client(func(c *BackupClient) { c.RedirectURIs = []string{"https://a.example/cb#"} }), "redirect URI https://a.example/cb# is not allowed"},
		{"alg", client(func(c *BackupClient) { c.IDTokenAlg = "HS256" }), "id_token_signed_response_alg must be"},
		{"public nonce instead", client(func(c *BackupClient) { c.Public, c.SecretHash, c.PKCEPolicy = true, "", "nonce_instead" }), "pkce_policy must be required"},
		{"pkce plain", client(func(c *BackupClient) { c.PKCEPolicy = "plain" }), "pkce_policy must be required"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantBadRequest(t, tt.c.check(), tt.wantErr)
		})
	}
}

// TestNewScopeCheck: a scope needs an English description, texts in the
// UI's languages only, and claims scopes may release.
func TestNewScopeCheck(t *testing.T) {
	en := map[string]string{"en": "Read your notes"}
	for _, tt := range []struct {
		name    string
		in      NewScope
		wantErr string
	}{
		{"minimal", NewScope{Description: en}, ""},
		{"with claims", NewScope{Description: en, Claims: []string{"email"}}, ""},
		{"no english", NewScope{Description: map[string]string{"en": " "}}, "description.en is required"},
		{"unknown description language", NewScope{Description: map[string]string{"en": "x", "xx": "y"}}, "description languages are"},
		{"unknown explanation language", NewScope{Description: en, Explanation: map[string]string{"xx": "y"}}, "explanation languages are"},
		{"unknown claim", NewScope{Description: en, Claims: []string{"password_hash"}}, "claims may be"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantBadRequest(t, tt.in.check(), tt.wantErr)
		})
	}
}

func wantBadRequest(t *testing.T, err error, want string) {
	t.Helper()
	if want == "" {
		if err != nil {
			t.Fatalf("unexpected error: %v", err)
		}
		return
	}
	if err == nil || !strings.Contains(err.Error(), want) {
		t.Fatalf("error %v, want one containing %q", err, want)
	}
}
