package token

import (
	"testing"

	"github.com/bawwab/bawwab/internal/storage"
)

// TestSector pins where a pairwise client's sector comes from (OpenID
// Connect Core §8.1): a custom scheme or loopback http never names one.
func TestSector(t *testing.T) {
	for _, tt := range []struct {
		name   string
		client storage.Client
		want   string
	}{
		{"https host", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example/cb"}}, "notes.example"},
		{"host case", storage.Client{ID: "c", RedirectURIs: []string{"https://Notes.Example/cb"}}, "notes.example"},
		{"port kept", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example:8443/cb"}}, "notes.example:8443"},
		{"custom scheme beside https", storage.Client{ID: "c", RedirectURIs: []string{"com.attacker.app://notes.example/cb", "https://mine.example/cb"}}, "client:c"},
		{"https beside custom scheme", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example/cb", "com.attacker.app://cb"}}, "client:c"},
		{"https beside loopback", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example/cb", "http://127.0.0.1/cb"}}, "client:c"},
		{"two https hosts", storage.Client{ID: "c", RedirectURIs: []string{"https://a.example/cb", "https://b.example/cb"}}, "client:c"},
		{"one https host, two paths", storage.Client{ID: "c", RedirectURIs: []string{"https://a.example/cb", "https://A.example/other"}}, "a.example"},
		{"device flow", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example/cb"}, GrantTypes: []string{"authorization_code", DeviceCodeGrantType}}, "client:c"},
		{"token exchange", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example/cb"}, GrantTypes: []string{TokenExchangeGrantType}}, "client:c"},
		{"device flow with sector_identifier_uri", storage.Client{ID: "c", RedirectURIs: []string{"https://notes.example/cb"}, GrantTypes: []string{DeviceCodeGrantType},
			SectorIdentifierURI: "https://sector.example/uris.json"}, "sector.example"},
		{"custom scheme only", storage.Client{ID: "c", RedirectURIs: []string{"com.attacker.app://notes.example/cb"}}, "client:c"},
		{"loopback http only", storage.Client{ID: "c", RedirectURIs: []string{"http://127.0.0.1/cb"}}, "client:c"},
		{"no redirect URI", storage.Client{ID: "notes.example"}, "client:notes.example"},
		{"sector_identifier_uri", storage.Client{ID: "c", RedirectURIs: []string{"https://a.example/cb", "https://b.example/cb"},
			SectorIdentifierURI: "https://sector.example/uris.json"}, "sector.example"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if got := Sector(&tt.client); got != tt.want {
				t.Errorf("Sector = %q, want %q", got, tt.want)
			}
		})
	}
	i := &Issuer{PairwiseKey: []byte("k")}
	web := &storage.Client{ID: "web", Pairwise: true, RedirectURIs: []string{"https://notes.example/cb"}}
	app := &storage.Client{ID: "app", Pairwise: true, RedirectURIs: []string{"com.attacker.app://notes.example/cb"}}
	if i.Subject(web, "u1") == i.Subject(app, "u1") || i.Subject(web, "u1") == "u1" {
		t.Fatal("a custom-scheme client shares the sub of the https client it names")
	}
	if i.Subject(&storage.Client{ID: "pub"}, "u1") != "u1" {
		t.Fatal("a public client's sub is the user id")
	}
}
