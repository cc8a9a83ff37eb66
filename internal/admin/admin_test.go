package admin

import (
	"context"
	"errors"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/scope"
)

// TestBuildClientURLs pins the rules for the URLs bawwab calls for a client
// and for the sector of a pairwise client (OpenID Connect Core §8.1).
func TestBuildClientURLs(t *testing.T) {
	docs := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/both.json":
			_, _ = w.Write([]byte(`["https://a.example/cb","https://b.example/cb"]`))
		case "/one.json":
			_, _ = w.Write([]byte(`["https://a.example/cb"]`))
		case "/object.json":
			_, _ = w.Write([]byte(`{"redirect_uris":["https://a.example/cb"]}`))
		case "/moved.json":
			http.Redirect(w, r, "/both.json", http.StatusFound)
		default:
			http.NotFound(w, r)
		}
	}))
	defer docs.Close()
	allow, err := outbound.ParseAllow([]string{"127.0.0.1"})
	if err != nil {
		t.Fatal(err)
	}
	loopback := outbound.New(outbound.Options{Allow: allow})
	two := []string{"https://a.example/cb", "https://b.example/cb"}
	keyed := func(uri string, out *outbound.Client) ClientSpec {
		return ClientSpec{GrantTypes: []string{"client_credentials"}, AuthMethod: "private_key_jwt", JWKSURI: uri, Outbound: out}
	}
	for _, tt := range []struct {
		name    string
		spec    ClientSpec
		wantErr string // "" for success
	}{
		{"pairwise, one https host", ClientSpec{RedirectURIs: []string{"https://a.example/cb", "https://a.example/other"}, Pairwise: true}, ""},
		{"pairwise, custom scheme beside one https host", ClientSpec{RedirectURIs: []string{"https://a.example/cb", "com.b.app://b.example/cb"}, Pairwise: true}, ""},
		{"pairwise, custom scheme only", ClientSpec{RedirectURIs: []string{"com.b.app://b.example/cb"}, Pairwise: true}, ""},
		{"pairwise, two https hosts", ClientSpec{RedirectURIs: two, Pairwise: true}, "share one host"},
		{"public, two https hosts", ClientSpec{RedirectURIs: two}, ""},
		{"sector listing both", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: docs.URL + "/both.json", Outbound: loopback}, ""},
		{"sector missing one", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: docs.URL + "/one.json", Outbound: loopback}, "does not list"},
		{"sector not an array", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: docs.URL + "/object.json", Outbound: loopback}, "JSON array"},
		{"sector redirected", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: docs.URL + "/moved.json", Outbound: loopback}, "not one this server calls"},
		{"sector not found", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: docs.URL + "/gone.json", Outbound: loopback}, "could not be fetched"},
		{"sector on loopback, not allowed", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: docs.URL + "/both.json"}, "https"},
		{"sector with a fragment", ClientSpec{RedirectURIs: two, Pairwise: true, SectorIdentifierURI: "https://s.example/x.json#f"}, "fragment"},
		{"jwks_uri https", keyed("https://keys.example/jwks", nil), ""},
		{"jwks_uri http", keyed("http://keys.example/jwks", nil), "https"},
		{"jwks_uri on loopback, not allowed", keyed(docs.URL+"/jwks", nil), "https"},
		{"jwks_uri on loopback, allowed", keyed(docs.URL+"/jwks", loopback), ""},
		{"jwks_uri https at a private address", keyed("https://192.168.1.10/jwks", nil), "private"},
		{"jwks_uri https at localhost", keyed("https://localhost/jwks", nil), "loopback"},
		{"backchannel_logout_uri link-local", ClientSpec{RedirectURIs: two, BackchannelLogoutURI: "https://169.254.169.254/"}, "link-local"},
		{"backchannel_logout_uri https", ClientSpec{RedirectURIs: two, BackchannelLogoutURI: "https://rp.example/logout"}, ""},
	} {
		t.Run(tt.name, func(t *testing.T) {
			if tt.spec.Scopes == nil {
				tt.spec.Scopes = []string{"openid"}
			}
			_, _, err := BuildClient(context.Background(), tt.spec, scope.Default())
			var inv *InvalidError
			switch {
			case tt.wantErr == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.wantErr != "" && (err == nil || !errors.As(err, &inv) || !strings.Contains(err.Error(), tt.wantErr)):
				t.Fatalf("error %v, want an InvalidError containing %q", err, tt.wantErr)
			}
		})
	}
}
