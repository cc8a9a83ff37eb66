package backchannel

import (
	"context"
	"log/slog"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"path/filepath"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4"

	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestLoggedOut: when a user signs out, each client the user consented to
// that registered a back-channel logout URI gets one logout token
// (OpenID Connect Back-Channel Logout §2.4, §2.5): typ logout+jwt, signed
// with the client's ID token alg, for that client, with the sub it knows
// and the event, and no nonce. Other clients and other users' clients get
// nothing.
func TestLoggedOut(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	now := time.Now()
	keys, err := jwks.New(ctx, s, slog.New(slog.DiscardHandler), func() time.Time { return now }, time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	type delivery struct {
		path, token string
	}
	got := make(chan delivery, 10)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		_ = r.ParseForm()
		got <- delivery{r.URL.Path, r.PostForm.Get("logout_token")}
	}))
	defer srv.Close()
	for _, c := range []storage.Client{
		{ID: "es", BackchannelLogoutURI: srv.URL + "/es", IDTokenAlg: "ES256"},
		{ID: "rs", BackchannelLogoutURI: srv.URL + "/rs"},
		{ID: "quiet"},
		{ID: "others", BackchannelLogoutURI: srv.URL + "/others"},
	} {
		if err := s.CreateClient(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	for _, c := range []storage.Consent{
		{UserID: "u1", ClientID: "es", Scopes: []string{"openid"}, GrantedAt: now, UpdatedAt: now},
		{UserID: "u1", ClientID: "rs", Scopes: []string{"openid"}, GrantedAt: now, UpdatedAt: now},
		{UserID: "u1", ClientID: "quiet", Scopes: []string{"openid"}, GrantedAt: now, UpdatedAt: now},
		{UserID: "u2", ClientID: "others", Scopes: []string{"openid"}, GrantedAt: now, UpdatedAt: now},
	} {
		if err := s.SaveConsent(ctx, c); err != nil {
			t.Fatal(err)
		}
	}
	loopback := outbound.Allow{Networks: []netip.Prefix{netip.MustParsePrefix("127.0.0.0/8")}}
	n := &Notifier{Store: s, Keys: keys, Issuer: "https://issuer.example", Fetch: outbound.New(outbound.Options{Allow: loopback}),
		Subject: func(c *storage.Client, userID string) string { return c.ID + ":" + userID }, Log: slog.New(slog.DiscardHandler),
		Now: func() time.Time { return now }}

	if clients := n.Clients(ctx, "u1"); len(clients) != 2 {
		t.Fatalf("Clients(u1) = %v, want es and rs", clients)
	}
	n.LoggedOut(ctx, "u1")
	wantAlg := map[string]string{"/es": "ES256", "/rs": "RS256"}
	for range 2 {
		var d delivery
		select {
		case d = <-got:
		case <-time.After(10 * time.Second):
			t.Fatal("a logout token was not delivered")
		}
		alg, ok := wantAlg[d.path]
		if !ok {
			t.Fatalf("a logout token went to %s", d.path)
		}
		delete(wantAlg, d.path)
		tok, err := jose.ParseSignedCompact(d.token, jwks.Algorithms)
		if err != nil || tok.Signatures[0].Protected.Algorithm != alg {
			t.Fatalf("%s: token alg %v (%v), want %s", d.path, tok, err, alg)
		}
		var c Claims
		var other map[string]any
		if err := keys.Verify(ctx, d.token, jwks.TypeLogout, &c, &other); err != nil {
			t.Fatalf("%s: %v", d.path, err)
		}
		client := d.path[1:]
		if _, ok := c.Events[Event]; !ok || c.Issuer != "https://issuer.example" || !c.Audience.Contains(client) ||
			c.Subject != client+":u1" || c.ID == "" || c.Expiry == nil || other["nonce"] != nil {
			t.Fatalf("%s: claims %+v %v", d.path, c, other)
		}
	}
	select {
	case d := <-got:
		t.Fatalf("an extra logout token went to %s", d.path)
	case <-time.After(200 * time.Millisecond):
	}

	// The outbound rules apply: without the allow list, loopback is an
	// internal address and nothing is sent.
	strict := &Notifier{Store: s, Keys: keys, Issuer: n.Issuer, Fetch: outbound.New(outbound.Options{}), Log: n.Log, Now: n.Now}
	strict.LoggedOut(ctx, "u1")
	select {
	case d := <-got:
		t.Fatalf("a logout token reached an internal address: %s", d.path)
	case <-time.After(300 * time.Millisecond):
	}
	var none *Notifier
	none.LoggedOut(ctx, "u1") // no notifier, nothing to do
}
