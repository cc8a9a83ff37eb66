package upstream

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

func claimsOf(t *testing.T, raw string) map[string]any {
	t.Helper()
	m, err := decode([]byte(raw))
	if err != nil {
		t.Fatal(err)
	}
	return m
}

func TestMap(t *testing.T) {
	oidcClaims := Config{Type: TypeOIDC}.Resolved().Claims
	github := Config{Type: TypeGitHub}.Resolved().Claims
	tests := []struct {
		name    string
		claims  string
		mapping Claims
		want    Identity
		wantErr error
	}{
		{"oidc", `{"sub":"248289761001","email":"jane@corp.example","email_verified":true,"name":"Jane","preferred_username":"jane"}`, oidcClaims,
			Identity{Subject: "248289761001", Username: "jane", Email: "jane@corp.example", EmailVerified: true, Name: "Jane"}, nil},
		{"email_verified as a string", `{"sub":"s","email":"a@b.example","email_verified":"true"}`, oidcClaims,
			Identity{Subject: "s", Email: "a@b.example", EmailVerified: true}, nil},
		{"email_verified false", `{"sub":"s","email":"a@b.example","email_verified":false}`, oidcClaims,
			Identity{Subject: "s", Email: "a@b.example"}, nil},
		{"email_verified missing is unverified", `{"sub":"s","email":"a@b.example"}`, oidcClaims, Identity{Subject: "s", Email: "a@b.example"}, nil},
		{"github: a number id, login", `{"id":583231,"login":"octocat","name":"The Octocat","email":"octo@github.example"}`, github,
			Identity{Subject: "583231", Username: "octocat", Email: "octo@github.example", Name: "The Octocat"}, nil},
		{"github: a large id stays exact", `{"id":9007199254740993,"login":"big"}`, github, Identity{Subject: "9007199254740993", Username: "big"}, nil},
		{"no email_verified mapping: never verified", `{"id":1,"email":"a@b.example","email_verified":true}`, github,
			Identity{Subject: "1", Email: "a@b.example"}, nil},
		{"no subject", `{"email":"a@b.example"}`, oidcClaims, Identity{}, ErrNoSubject},
		{"subject of another type", `{"sub":{"x":1}}`, oidcClaims, Identity{}, ErrNoSubject},
		{"control characters and NUL are dropped", `{"sub":"s","name":"A\u0000B\nC","email":"x@y.example"}`, oidcClaims,
			Identity{Subject: "s", Name: "ABC", Email: "x@y.example"}, nil},
		{"a subject with NUL is none", `{"sub":"s\u0000t"}`, oidcClaims, Identity{}, ErrNoSubject},
		{"a huge subject is none", `{"sub":"` + strings.Repeat("s", 300) + `"}`, oidcClaims, Identity{}, ErrNoSubject},
		{"an email that is no address is dropped", `{"sub":"s","email":"not an address","email_verified":true}`, oidcClaims,
			Identity{Subject: "s", EmailVerified: true}, nil},
		{"an email with a control character is dropped, not mended into another", `{"sub":"s","email":"vic\u0000tim@y.example","email_verified":true}`,
			oidcClaims, Identity{Subject: "s", EmailVerified: true}, nil},
		{"an email over 254 bytes is dropped, not cut into another", `{"sub":"s","email":"` + strings.Repeat("a", 250) + `@y.example.evil.example"}`,
			oidcClaims, Identity{Subject: "s"}, nil},
		{"the root domain's trailing dot is dropped", `{"sub":"s","email":"a@b.example..","email_verified":true}`,
			oidcClaims, Identity{Subject: "s", Email: "a@b.example", EmailVerified: true}, nil},
		{"custom mapping", `{"uid":"u-7","mail":"m@x.example","verified":true,"cn":"M"}`, Claims{Subject: "uid", Email: "mail", EmailVerified: "verified", Name: "cn"},
			Identity{Subject: "u-7", Email: "m@x.example", EmailVerified: true, Name: "M"}, nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := Map(claimsOf(t, tt.claims), tt.mapping)
			if err != tt.wantErr || got != tt.want {
				t.Errorf("Map = %+v, %v; want %+v, %v", got, err, tt.want, tt.wantErr)
			}
		})
	}
}

func TestPrimaryEmail(t *testing.T) {
	tests := []struct {
		list     string
		want     string
		verified bool
	}{
		{`[{"email":"old@x.example","primary":false,"verified":true},{"email":"me@x.example","primary":true,"verified":true}]`, "me@x.example", true},
		{`[{"email":"me@x.example","primary":true,"verified":false}]`, "me@x.example", false},
		{`[]`, "", false},
		{`[{"email":"me\r\n@x.example","primary":true,"verified":true}]`, "", false},
		{`[{"email":"me.x.example","primary":true,"verified":true}]`, "", false},
		{`{"email":"not-a-list"}`, "", false},
	}
	for _, tt := range tests {
		var v any
		if err := json.Unmarshal([]byte(tt.list), &v); err != nil {
			t.Fatal(err)
		}
		if got, verified := primaryEmail(v); got != tt.want || verified != tt.verified {
			t.Errorf("primaryEmail(%s) = %q %v, want %q %v", tt.list, got, verified, tt.want, tt.verified)
		}
	}
}

func TestValidate(t *testing.T) {
	en := map[string]string{"en": "Corp"}
	ok := Config{ID: "corp", Name: en, Type: TypeOIDC, Issuer: "https://login.corp.example", ClientID: "c"}
	tests := []struct {
		name string
		list []Config
		want string // a part of the error; empty for none
	}{
		{"oidc", []Config{ok}, ""},
		{"google preset needs only a client", []Config{{ID: "google", Name: en, Type: TypeGoogle, ClientID: "c"}}, ""},
		{"github preset needs only a client", []Config{{ID: "gh", Name: en, Type: TypeGitHub, ClientID: "c"}}, ""},
		{"oauth2 without urls", []Config{{ID: "x", Name: en, Type: TypeOAuth2, ClientID: "c", Claims: Claims{Subject: "id"}}}, "auth_url must be"},
		{"oauth2 without a subject claim", []Config{{ID: "x", Name: en, Type: TypeOAuth2, ClientID: "c", AuthURL: "https://a.example/auth",
			TokenURL: "https://a.example/token", UserinfoURL: "https://a.example/user"}}, "claims.subject is required"},
		{"oidc without issuer", []Config{{ID: "x", Name: en, Type: TypeOIDC, ClientID: "c"}}, "issuer must be"},
		{"relative issuer", []Config{{ID: "x", Name: en, Type: TypeOIDC, ClientID: "c", Issuer: "/login"}}, "issuer must be"},
		{"unknown type", []Config{{ID: "x", Name: en, Type: "saml", ClientID: "c"}}, `type "saml"`},
		{"bad id", []Config{{ID: "Corp/1", Name: en, Type: TypeGoogle, ClientID: "c"}}, "id must be"},
		{"no English name", []Config{{ID: "x", Name: map[string]string{"ar": "س"}, Type: TypeGoogle, ClientID: "c"}}, "English label"},
		{"no client", []Config{{ID: "x", Name: en, Type: TypeGoogle}}, "client_id is required"},
		{"same id twice", []Config{ok, ok}, "used twice"},
		{"domain with @", []Config{{ID: "x", Name: en, Type: TypeGoogle, ClientID: "c", AllowedDomains: []string{"@corp.example"}}}, "not a domain"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := Validate(tt.list)
			switch {
			case tt.want == "" && err != nil:
				t.Errorf("Validate: %v, want none", err)
			case tt.want != "" && (err == nil || !strings.Contains(err.Error(), tt.want)):
				t.Errorf("Validate: %v, want %q", err, tt.want)
			}
		})
	}
}

func TestDomainAllowed(t *testing.T) {
	tests := []struct {
		allowed []string
		id      Identity
		want    bool
	}{
		{nil, Identity{Email: "a@any.example"}, true},
		{[]string{"corp.example"}, Identity{Email: "a@Corp.Example", EmailVerified: true}, true},
		{[]string{"corp.example"}, Identity{Email: "a@corp.example"}, false}, // unverified: the domain proves nothing
		{[]string{"corp.example"}, Identity{Email: "a@evil.example", EmailVerified: true}, false},
		{[]string{"corp.example"}, Identity{Email: "a@sub.corp.example", EmailVerified: true}, false},
		{[]string{"corp.example"}, Identity{Email: "corp.example", EmailVerified: true}, false},
	}
	for _, tt := range tests {
		if got := DomainAllowed(tt.allowed, tt.id); got != tt.want {
			t.Errorf("DomainAllowed(%v, %+v) = %v", tt.allowed, tt.id, got)
		}
	}
}

func TestUsername(t *testing.T) {
	for id, want := range map[Identity]string{
		{Username: "Octo.Cat"}:              "octo.cat",
		{Email: "Jane.Doe+x@corp.example"}:  "jane.doex",
		{Username: "ج"}:                     "user",
		{}:                                  "user",
		{Username: strings.Repeat("a", 40)}: strings.Repeat("a", 32),
		{Username: "a b/c", Email: "z@x.example"}: "abc",
	} {
		if got := Username(id); got != want {
			t.Errorf("Username(%+v) = %q, want %q", id, got, want)
		}
	}
}

// TestLogoutChecks: what §2.6 of Back-Channel Logout asks of a logout
// token beyond an ID token's checks, and the JWT types a logout token may
// carry.
func TestLogoutChecks(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	p := &Provider{Now: func() time.Time { return now }}
	event := map[string]json.RawMessage{LogoutEvent: json.RawMessage(`{}`)}
	nonce := json.RawMessage(`"n"`)
	tests := []struct {
		name string
		iat  time.Time
		sub  string
		c    logoutClaims
		want string // "" valid, else a part of the refusal
	}{
		{"sub", now, "s", logoutClaims{Events: event, JTI: "j"}, ""},
		{"sid only", now, "", logoutClaims{Events: event, JTI: "j", SID: "x"}, ""},
		{"clock skew", now.Add(30 * time.Second), "s", logoutClaims{Events: event, JTI: "j"}, ""},
		{"no events", now, "s", logoutClaims{JTI: "j"}, "events"},
		{"another event", now, "s", logoutClaims{Events: map[string]json.RawMessage{"urn:other": json.RawMessage(`{}`)}, JTI: "j"}, "events"},
		{"event not an object", now, "s", logoutClaims{Events: map[string]json.RawMessage{LogoutEvent: json.RawMessage(`true`)}, JTI: "j"}, "object"},
		{"nonce", now, "s", logoutClaims{Events: event, JTI: "j", Nonce: &nonce}, "nonce"},
		{"neither sub nor sid", now, "", logoutClaims{Events: event, JTI: "j"}, "neither"},
		{"no jti", now, "s", logoutClaims{Events: event}, "jti"},
		{"no iat", time.Time{}, "s", logoutClaims{Events: event, JTI: "j"}, "iat"},
		{"old", now.Add(-6 * time.Minute), "s", logoutClaims{Events: event, JTI: "j"}, "iat"},
		{"future", now.Add(2 * time.Minute), "s", logoutClaims{Events: event, JTI: "j"}, "iat"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := p.checkLogoutClaims(tt.iat, tt.sub, tt.c)
			switch {
			case tt.want == "" && err != nil:
				t.Fatalf("refused: %v", err)
			case tt.want != "" && (!errors.Is(err, ErrLogoutToken) || !strings.Contains(logoutReason(err), tt.want)):
				t.Fatalf("got %v, want a refusal saying %q", err, tt.want)
			}
		})
	}
	for typ, ok := range map[string]bool{"": true, "JWT": true, "logout+jwt": true, "application/logout+jwt": true,
		"at+jwt": false, "secevent+jwt": false, "jwt": false, "Logout+JWT": false} {
		if logoutType(typ) != ok {
			t.Errorf("logoutType(%q) = %v", typ, !ok)
		}
	}
}

// TestLogoutReason: the public reason of a refusal names a replay, and
// says nothing of an error that is not a refusal.
func TestLogoutReason(t *testing.T) {
	if r := logoutReason(fmt.Errorf("x: %w", storage.ErrAlreadyUsed)); !strings.Contains(r, "used before") {
		t.Errorf("replay: %q", r)
	}
	if r := logoutReason(errors.New("store down")); r != "invalid" {
		t.Errorf("other: %q", r)
	}
}

func TestErrorCode(t *testing.T) {
	for in, want := range map[string]string{"access_denied": "access_denied", "login_required": "login_required", "temporarily_unavailable": "temporarily_unavailable",
		"x; upstream=corp;": "(not an error code)", "a\nb": "(not an error code)", "<b>": "(not an error code)", strings.Repeat("a", 41): "(not an error code)",
		"": ""} {
		if got := errorCode(in); got != want {
			t.Errorf("errorCode(%q) = %q, want %q", in, got, want)
		}
	}
}

func TestCheckAzp(t *testing.T) {
	p := &Provider{Config: Config{ID: "x", ClientID: "bawwab"}}
	for _, tt := range []struct {
		aud []string
		azp any
		ok  bool
	}{
		{[]string{"bawwab"}, nil, true},
		{[]string{"bawwab"}, "bawwab", true},
		{[]string{"bawwab", "other"}, "bawwab", true},
		{[]string{"bawwab"}, "other", false},
		{[]string{"other", "bawwab"}, "other", false},
		{[]string{"other", "bawwab"}, nil, false},
		{[]string{"bawwab"}, 7, false},
	} {
		if err := p.checkAzp(tt.aud, tt.azp); (err == nil) != tt.ok || err != nil && !errors.Is(err, ErrIDToken) {
			t.Errorf("checkAzp(%v, %v) = %v", tt.aud, tt.azp, err)
		}
	}
}
