package adminapi

import (
	"encoding/json"
	"testing"
)

// TestBackupUpstreamCheck pins what an imported upstream and an imported
// user's links must meet: a backup cannot bring in an upstream the API
// would refuse, nor a link without its identity.
func TestBackupUpstreamCheck(t *testing.T) {
	a, _, _ := newUpstreamAPI(t)
	cfg := json.RawMessage(`{"name":{"en":"Corp"},"type":"oidc","issuer":"https://login.corp.example","client_id":"bawwab"}`)
	for _, tt := range []struct {
		name    string
		u       BackupUpstream
		wantErr string
	}{
		{"sealed secret", BackupUpstream{ID: "corp", Config: cfg, SecretSealed: "x"}, ""},
		{"bad id", BackupUpstream{ID: "Corp!", Config: cfg}, "id must be lowercase letters"},
		{"no config", BackupUpstream{ID: "corp"}, "config must be an upstream's settings"},
		{"config not an object", BackupUpstream{ID: "corp", Config: json.RawMessage(`[1]`)}, "config must be an upstream's settings"},
		{"http issuer", BackupUpstream{ID: "corp", Config: json.RawMessage(`{"name":{"en":"Corp"},"type":"oidc","issuer":"http://login.corp.example","client_id":"bawwab"}`),
			SecretSealed: "x"}, "issuer"},
		{"loopback issuer", BackupUpstream{ID: "corp", Config: json.RawMessage(`{"name":{"en":"Corp"},"type":"oidc","issuer":"https://127.0.0.1","client_id":"bawwab"}`),
			SecretSealed: "x"}, "issuer"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantBadRequest(t, tt.u.check(a), tt.wantErr)
		})
	}
	hash := "$argon2id$v=19$m=65536,t=1,p=4$c2FsdA$aGFzaA"
	user := func(pw string, links ...BackupLink) BackupUser {
		u := BackupUser{PasswordHash: pw, Links: links}
		u.ID, u.Username = "u1", "jane"
		return u
	}
	for _, tt := range []struct {
		name    string
		u       BackupUser
		wantErr string
	}{
		{"password", user(hash), ""},
		{"upstream only", user("", BackupLink{Upstream: "corp", Subject: "s"}), ""},
		{"no password, no link", user(""), "an argon2id password_hash are required"},
		{"link without subject", user(hash, BackupLink{Upstream: "corp"}), "an upstream link needs an upstream id and a subject"},
		{"link with a bad upstream id", user(hash, BackupLink{Upstream: "../x", Subject: "s"}), "an upstream link needs"},
		// Names made before the rules of new accounts refused them are kept.
		{"invisible character in the username", func() BackupUser { u := user(hash); u.Username = "ad\u200bmin"; return u }(), ""},
		{"mixed scripts in the username", func() BackupUser { u := user(hash); u.Username = "sara.سارة"; return u }(), ""},
		{"space in the username", func() BackupUser { u := user(hash); u.Username = "ja ne"; return u }(), "a username may not be empty"},
		{"no username", func() BackupUser { u := user(hash); u.Username = ""; return u }(), "a username may not be empty"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			wantBadRequest(t, tt.u.check(), tt.wantErr)
		})
	}
}
