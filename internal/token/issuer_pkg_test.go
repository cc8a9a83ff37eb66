package token

import (
	"context"
	"net/http"
	"net/http/httptest"
	"net/url"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestValidateAccess pins why an access token is not valid (RFC 6750
// §3.1 invalid_token, RFC 9068 §4): each row a token and the
// description it gets.
func TestValidateAccess(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	cc := func() string {
		return e.post("svc", url.Values{"grant_type": {"client_credentials"}}, "").AccessToken
	}
	user := func() (string, string) {
		grant := NewID()
		return e.post("web", codeForm(e.code(func(c *storage.AuthCode) { c.GrantID = grant })), "").AccessToken, grant
	}
	tests := []struct {
		name     string
		token    func() string
		wantDesc string // "" when valid
	}{
		{"valid client token", cc, ""},
		{"valid user token", func() string { tok, _ := user(); return tok }, ""},
		{"not a JWT", func() string { return "opaque" }, "not valid"},
		{"signature broken", func() string { tok := cc(); return tok[:len(tok)-4] + "AAAA" }, "not valid"},
		{"an ID token", func() string {
			return e.post("web", codeForm(e.code(nil)), "").IDToken
		}, "not valid"},
		{"another issuer's claims", func() string {
			raw, err := e.issuer.Keys.Sign(jwks.TypeAccessToken, AccessClaims{Claims: jwt.Claims{Issuer: "https://evil.example", Subject: "svc",
				Expiry: jwt.NewNumericDate(e.now.Add(time.Minute)), ID: NewID()}, ClientID: "svc"})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}, "not valid"},
		{"expired", func() string {
			raw, err := e.issuer.Keys.Sign(jwks.TypeAccessToken, AccessClaims{Claims: jwt.Claims{Issuer: tIssuer, Subject: "svc",
				Expiry: jwt.NewNumericDate(e.now.Add(-time.Minute)), ID: NewID()}, ClientID: "svc"})
			if err != nil {
				t.Fatal(err)
			}
			return raw
		}, "has expired"},
		{"jti revoked", func() string {
			tok := cc()
			c, err := e.issuer.ValidateAccess(ctx, tok)
			if err != nil {
				t.Fatal(err)
			}
			if err := e.store.RevokeToken(ctx, c.ID, c.Expiry.Time()); err != nil {
				t.Fatal(err)
			}
			return tok
		}, "was revoked"},
		{"grant revoked", func() string {
			tok, grant := user()
			if err := e.store.RevokeGrant(ctx, grant, e.now); err != nil {
				t.Fatal(err)
			}
			return tok
		}, "was revoked"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.issuer.ValidateAccess(ctx, tt.token())
			if tt.wantDesc == "" {
				if err != nil || c == nil {
					t.Fatalf("ValidateAccess = %v, want valid", err)
				}
				return
			}
			oe := oautherr.From(err)
			if err == nil || oe.Code != oautherr.InvalidToken || !strings.Contains(oe.Description, tt.wantDesc) {
				t.Fatalf("ValidateAccess = %v, want invalid_token mentioning %q", err, tt.wantDesc)
			}
		})
	}
}

// TestAccessTokenLifetime: an access token expires after AccessTTL
// (leeway aside), and never outlives its grant.
func TestAccessTokenLifetime(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	tok := e.post("svc", url.Values{"grant_type": {"client_credentials"}}, "").AccessToken
	start := e.now
	e.now = start.Add(time.Minute + DefaultLeeway + time.Second)
	if _, err := e.issuer.ValidateAccess(ctx, tok); err == nil {
		t.Fatal("an access token past its lifetime and the leeway is valid")
	}
	e.now = start
	e.issuer.AccessTTL = time.Hour
	raw := e.storeRefresh(func(g *storage.Grant) { g.ExpiresAt = e.now.Add(10 * time.Minute) }, nil)
	r := e.post("web", url.Values{"grant_type": {"refresh_token"}, "refresh_token": {raw}}, "")
	r.check(t, "", 200, "")
	c, err := e.issuer.ValidateAccess(ctx, r.AccessToken)
	if err != nil {
		t.Fatal(err)
	}
	if got := c.Expiry.Time(); !got.Equal(e.now.Add(10 * time.Minute)) {
		t.Fatalf("exp %v, want the grant's end %v", got, e.now.Add(10*time.Minute))
	}
}

// TestIDTokenHint: only an ID token of this issuer is a hint (OpenID
// Connect RP-Initiated Logout §2); an expired one still is, an access
// token is not.
func TestIDTokenHint(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	r := e.post("web", codeForm(e.code(nil)), "")
	sign := func(typ string, c any) string {
		raw, err := e.issuer.Keys.Sign(typ, c)
		if err != nil {
			t.Fatal(err)
		}
		return raw
	}
	past := jwt.NewNumericDate(e.now.Add(-time.Hour))
	tests := []struct {
		name    string
		raw     string
		wantSub string
		wantErr bool
	}{
		{"ID token", r.IDToken, "u1", false},
		{"expired ID token", sign(jwks.TypeJWT, IDClaims{Claims: jwt.Claims{Issuer: tIssuer, Subject: "u1", Audience: jwt.Audience{"web"}, Expiry: past}}), "u1", false},
		{"access token", r.AccessToken, "", true},
		{"another issuer", sign(jwks.TypeJWT, IDClaims{Claims: jwt.Claims{Issuer: "https://evil.example", Subject: "u1", Audience: jwt.Audience{"web"}}}), "", true},
		{"logout token", sign(jwks.TypeJWT, map[string]any{"iss": tIssuer, "sub": "u1", "aud": "web",
			"events": map[string]any{"http://schemas.openid.net/event/backchannel-logout": map[string]any{}}}), "", true},
		{"no subject", sign(jwks.TypeJWT, IDClaims{Claims: jwt.Claims{Issuer: tIssuer, Audience: jwt.Audience{"web"}}}), "", true},
		{"no audience", sign(jwks.TypeJWT, IDClaims{Claims: jwt.Claims{Issuer: tIssuer, Subject: "u1"}}), "", true},
		{"garbage", "a.b.c", "", true},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := e.issuer.IDTokenHint(ctx, tt.raw)
			if (err != nil) != tt.wantErr {
				t.Fatalf("IDTokenHint = %v, wantErr %v", err, tt.wantErr)
			}
			if err == nil && c.Subject != tt.wantSub {
				t.Fatalf("sub %q, want %q", c.Subject, tt.wantSub)
			}
		})
	}
}

// grantEnded is ChainEnded of a new refresh token of grant id, read with
// its grant and user: whether the grant still counts when a token of it
// is used.
func grantEnded(t *testing.T, e *tokenEnv, id, user string) bool {
	t.Helper()
	ctx := context.Background()
	hash := storage.Hash(NewOpaque())
	if err := e.store.CreateRefreshToken(ctx, storage.RefreshToken{Hash: hash, GrantID: id, ClientID: "web", UserID: user,
		CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour)}); err != nil {
		t.Fatal(err)
	}
	c, err := e.store.GetRefreshTokenChain(ctx, hash)
	if err != nil {
		t.Fatal(err)
	}
	return ChainEnded(c)
}

func TestChainEnded(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	for _, g := range []storage.Grant{
		{ID: "live", ClientID: "web", UserID: "u1", CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour)},
		{ID: "revoked", ClientID: "web", UserID: "u1", CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour), RevokedAt: e.now},
		{ID: "other-client", ClientID: "mobile", UserID: "u1", CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour)},
	} {
		if err := e.store.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	tests := []struct {
		id   string
		want bool
		user string
	}{{"live", false, "u1"}, {"revoked", true, "u1"}, {"missing", true, "u1"},
		{"other-client", true, "u1"}, // a token of web under a grant of mobile
		{"live", true, "u2"}}         // a token of u2 under a grant of u1
	for _, tt := range tests {
		t.Run(tt.id+" "+tt.user, func(t *testing.T) {
			if got := grantEnded(t, e, tt.id, tt.user); got != tt.want {
				t.Fatalf("ended(%s) = %v, want %v", tt.id, got, tt.want)
			}
		})
	}
}

// TestSubject: a public client sees the user id; pairwise clients of one
// sector share a value that is not the user id, other sectors differ
// (OpenID Connect Core §8.1).
func TestSubject(t *testing.T) {
	i := &Issuer{PairwiseKey: []byte("k")}
	a := &storage.Client{ID: "a", Pairwise: true, RedirectURIs: []string{"https://one.example/cb"}}
	a2 := &storage.Client{ID: "a2", Pairwise: true, RedirectURIs: []string{"https://one.example/other"}}
	b := &storage.Client{ID: "b", Pairwise: true, RedirectURIs: []string{"https://two.example/cb"}}
	if got := i.Subject(&storage.Client{ID: "p"}, "u1"); got != "u1" {
		t.Fatalf("public subject %q, want u1", got)
	}
	sa, sa2, sb := i.Subject(a, "u1"), i.Subject(a2, "u1"), i.Subject(b, "u1")
	if sa == "u1" || sa != sa2 || sa == sb || sa == i.Subject(a, "u2") {
		t.Fatalf("pairwise subjects a=%q a2=%q b=%q", sa, sa2, sb)
	}
	if other := (&Issuer{PairwiseKey: []byte("other")}).Subject(a, "u1"); other == sa {
		t.Fatal("the pairwise subject does not depend on the key")
	}
}

func TestUserClaims(t *testing.T) {
	u := &storage.User{ID: "u1", Username: "amal", Name: "Amal", Email: "a@example.com", EmailVerified: true, Picture: "https://p.example/a.png"}
	noPic := *u
	noPic.Picture = ""
	tests := []struct {
		name   string
		user   *storage.User
		scopes []string
		want   map[string]any
	}{
		{"openid only", u, []string{"openid"}, map[string]any{}},
		{"profile", u, []string{"openid", "profile"}, map[string]any{"name": "Amal", "preferred_username": "amal"}},
		{"email", u, []string{"email"}, map[string]any{"email": "a@example.com", "email_verified": true}},
		{"photo", u, []string{"photo"}, map[string]any{"picture": "https://p.example/a.png"}},
		{"photo, none set", &noPic, []string{"photo"}, map[string]any{}},
		{"unknown scope", u, []string{"files.read"}, map[string]any{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := UserClaims(scope.Default(), tt.user, tt.scopes)
			if len(got) != len(tt.want) {
				t.Fatalf("UserClaims = %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got[k] != v {
					t.Fatalf("UserClaims[%s] = %v, want %v", k, got[k], v)
				}
			}
		})
	}
}

// TestPKCE pins RFC 7636: the verifier grammar (§4.1), the S256 challenge
// (§4.2, with the example of appendix B) and its check.
func TestPKCE(t *testing.T) {
	const challenge = "E9Melhoa2OwvFrEMTJguCHaoeK1t8URWbuGJSstw-cM" // RFC 7636 appendix B
	if got := S256(tVerifier); got != challenge {
		t.Fatalf("S256 = %q, want %q", got, challenge)
	}
	verifiers := []struct {
		v    string
		want bool
	}{
		{tVerifier, true},
		{strings.Repeat("a", 42), false},
		{strings.Repeat("a", 43), true},
		{strings.Repeat("-._~", 32), true},
		{strings.Repeat("a", 129), false},
		{strings.Repeat("a", 42) + "=", false},
		{strings.Repeat("a", 42) + "é", false},
	}
	for _, tt := range verifiers {
		if got := ValidVerifier(tt.v); got != tt.want {
			t.Errorf("ValidVerifier(%q) = %v, want %v", tt.v, got, tt.want)
		}
	}
	challenges := []struct {
		c    string
		want bool
	}{
		{challenge, true},
		{challenge + "=", false},
		{challenge[:42], false},
		{strings.ReplaceAll(challenge, "-", "+"), false},
		{"", false},
	}
	for _, tt := range challenges {
		if got := ValidChallenge(tt.c); got != tt.want {
			t.Errorf("ValidChallenge(%q) = %v, want %v", tt.c, got, tt.want)
		}
	}
	if !VerifyPKCE(tVerifier, challenge) || VerifyPKCE(tVerifier+"x", challenge) || VerifyPKCE(tVerifier, "") {
		t.Error("VerifyPKCE does not tell the verifier of the challenge from others")
	}
}

func TestIsJWT(t *testing.T) {
	for _, tt := range []struct {
		raw  string
		want bool
	}{{"a.b.c", true}, {NewOpaque(), false}, {"a.b", false}, {"a.b.c.d.e", false}, {"", false}} {
		if got := IsJWT(tt.raw); got != tt.want {
			t.Errorf("IsJWT(%q) = %v, want %v", tt.raw, got, tt.want)
		}
	}
	if strings.Contains(NewOpaque(), ".") {
		t.Error("an opaque token contains a dot: IsJWT could mistake it")
	}
}

// TestRefreshBinding: a public client's refresh token is bound to the
// DPoP key of the request that got it (RFC 9449 §5) and refreshes only
// with a proof of that key; a confidential client's is bound by client
// authentication instead.
func TestRefreshBinding(t *testing.T) {
	e := newTokenEnv(t)
	key, other := newDPoPKey(t), newDPoPKey(t)
	tests := []struct {
		name      string
		client    string
		wantBound bool
	}{
		{"public client", "spa", true},
		{"confidential client", "web", false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			code := e.code(func(c *storage.AuthCode) { c.ClientID, c.Scopes = tt.client, []string{"openid", "offline_access"} })
			r := e.post(tt.client, codeForm(code), key.proof(t, e.now))
			r.check(t, "", 200, "")
			rt, err := e.store.GetRefreshToken(context.Background(), storage.Hash(r.RefreshToken))
			if err != nil {
				t.Fatal(err)
			}
			if (rt.JKT == key.jkt) != tt.wantBound || !tt.wantBound && rt.JKT != "" {
				t.Fatalf("refresh token bound to %q, want bound %v to %s", rt.JKT, tt.wantBound, key.jkt)
			}
			form := url.Values{"grant_type": {"refresh_token"}, "refresh_token": {r.RefreshToken}}
			if !tt.wantBound {
				e.post(tt.client, form, "").check(t, "", 200, "")
				return
			}
			e.post(tt.client, form, "").check(t, oautherr.InvalidGrant, 400, "bound to a DPoP key")
			e.post(tt.client, form, other.proof(t, e.now)).check(t, oautherr.InvalidGrant, 400, "bound to a DPoP key")
			next := e.post(tt.client, form, key.proof(t, e.now))
			next.check(t, "", 200, "")
			if next.TokenType != "DPoP" {
				t.Fatalf("token_type %q after a bound refresh", next.TokenType)
			}
			rt, err = e.store.GetRefreshToken(context.Background(), storage.Hash(next.RefreshToken))
			if err != nil || rt.JKT != key.jkt {
				t.Fatalf("the rotated refresh token lost its binding: %+v, %v", rt, err)
			}
		})
	}
}

// TestClientForm: the back channel's common first step, form then client
// (RFC 6749 §2.3, §3.2).
func TestClientForm(t *testing.T) {
	e := newTokenEnv(t)
	auth := &clientauth.Authenticator{Store: e.store, Now: e.issuer.Now}
	req := func(ct, body string, basic bool) *http.Request {
		r := httptest.NewRequest("POST", "/introspect", strings.NewReader(body))
		r.Header.Set("Content-Type", ct)
		if basic {
			r.SetBasicAuth("web", e.secrets["web"])
		}
		return r
	}
	const form = "application/x-www-form-urlencoded"
	tests := []struct {
		name    string
		r       *http.Request
		want    string
		wantErr string
	}{
		{"authenticated", req(form, "token=x", true), "web", ""},
		{"public client", req(form, "client_id=spa", false), "spa", ""},
		{"JSON", req("application/json", `{}`, true), "", oautherr.InvalidRequest},
		{"repeated", req(form, "token=a&token=b", true), "", oautherr.InvalidRequest},
		{"no client", req(form, "token=x", false), "", oautherr.InvalidClient},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c, err := ClientForm(auth, tt.r)
			if oautherr.Code(err) != tt.wantErr || err == nil && c.ID != tt.want {
				t.Fatalf("ClientForm = %v, %v; want %q %q", c, err, tt.want, tt.wantErr)
			}
		})
	}
}

// TestDisabledUser: once a user is disabled, its tokens are refused when
// used, whether or not their grant was revoked: an access token is
// invalid_token, a code invalid_grant, and the grant counts as ended (as
// a deleted user's does).
func TestDisabledUser(t *testing.T) {
	e := newTokenEnv(t)
	ctx := context.Background()
	access := e.post("web", codeForm(e.code(nil)), "").AccessToken
	code := e.code(nil)
	for _, g := range []storage.Grant{
		{ID: "of-u1", ClientID: "web", UserID: "u1", CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour)},
		{ID: "of-ghost", ClientID: "web", UserID: "ghost", CreatedAt: e.now, ExpiresAt: e.now.Add(time.Hour)},
	} {
		if err := e.store.CreateGrant(ctx, g); err != nil {
			t.Fatal(err)
		}
	}
	if err := e.store.SetUserDisabled(ctx, "u1", true); err != nil {
		t.Fatal(err)
	}
	for _, tt := range []struct {
		name     string
		check    func() error
		wantCode string
		wantDesc string
	}{
		{"access token", func() error { _, err := e.issuer.ValidateAccess(ctx, access); return err }, oautherr.InvalidToken, "is disabled"},
		{"code", func() error {
			r := e.post("web", codeForm(code), "")
			return oautherr.New(r.Error, r.ErrorDescription)
		}, oautherr.InvalidGrant, "is disabled"},
	} {
		t.Run(tt.name, func(t *testing.T) {
			oe := oautherr.From(tt.check())
			if oe == nil || oe.Code != tt.wantCode || !strings.Contains(oe.Description, tt.wantDesc) {
				t.Fatalf("got %v, want %s mentioning %q", oe, tt.wantCode, tt.wantDesc)
			}
		})
	}
	for id, user := range map[string]string{"of-u1": "u1", "of-ghost": "ghost"} {
		if !grantEnded(t, e, id, user) {
			t.Fatalf("grant %s not ended", id)
		}
	}
	if err := e.store.SetUserDisabled(ctx, "u1", false); err != nil {
		t.Fatal(err)
	}
	if grantEnded(t, e, "of-u1", "u1") {
		t.Fatal("grant ended after enabling")
	}
	if _, err := e.issuer.ValidateAccess(ctx, access); err != nil {
		t.Fatalf("ValidateAccess after enabling (grant never revoked here) = %v", err)
	}
}
