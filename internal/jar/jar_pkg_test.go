package jar

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/go-jose/go-jose/v4/jwt"

	"github.com/bawwab/bawwab/internal/oautherr"
)

func TestCheckClaims(t *testing.T) {
	now := time.Date(2026, 11, 30, 12, 0, 0, 0, time.UTC)
	at := func(d time.Duration) *jwt.NumericDate { return jwt.NewNumericDate(now.Add(d)) }
	good := jwt.Claims{Issuer: "c1", Audience: jwt.Audience{"https://issuer.example"}, Expiry: at(time.Minute)}
	with := func(f func(*jwt.Claims)) jwt.Claims { c := good; f(&c); return c }
	tests := []struct {
		name    string
		claims  jwt.Claims
		wantErr string
	}{
		{"good", good, ""},
		{"another issuer", with(func(c *jwt.Claims) { c.Issuer = "c2" }), "iss must be the client_id"},
		{"another audience", with(func(c *jwt.Claims) { c.Audience = jwt.Audience{"https://else.example"} }), "aud must be"},
		{"no exp", with(func(c *jwt.Claims) { c.Expiry = nil }), "needs an exp"},
		{"exp beyond an hour", with(func(c *jwt.Claims) { c.Expiry = at(MaxLife + time.Second) }), "needs an exp"},
		{"expired", with(func(c *jwt.Claims) { c.Expiry = at(-time.Minute) }), "expired or is not valid yet"},
		{"expired within leeway", with(func(c *jwt.Claims) { c.Expiry = at(-time.Second) }), ""},
		{"not valid yet", with(func(c *jwt.Claims) { c.NotBefore = at(time.Minute) }), "not valid yet"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			e := checkClaims(tt.claims, "c1", "https://issuer.example", now, 5*time.Second)
			if tt.wantErr == "" {
				if e != nil {
					t.Fatalf("got %v, want nil", e)
				}
				return
			}
			if e == nil || e.Code != InvalidRequestObject || !strings.Contains(e.Description, tt.wantErr) {
				t.Fatalf("got %v, want %s mentioning %q", e, InvalidRequestObject, tt.wantErr)
			}
		})
	}
}

func TestParams(t *testing.T) {
	tests := []struct {
		name    string
		claims  map[string]any
		want    map[string]string
		wantErr string
	}{
		{"parameters kept, JWT claims dropped", map[string]any{"iss": "c1", "aud": "x", "exp": 1.0, "jti": "j", "scope": "openid", "max_age": 60.0},
			map[string]string{"scope": "openid", "max_age": "60", "client_id": "c1"}, ""},
		{"same client_id inside", map[string]any{"client_id": "c1"}, map[string]string{"client_id": "c1"}, ""},
		{"another client_id inside", map[string]any{"client_id": "c2"}, nil, "differs"},
		{"nested request", map[string]any{"request": "x"}, nil, "may not nest request"},
		{"nested request_uri", map[string]any{"request_uri": "x"}, nil, "may not nest request_uri"},
		{"array parameter", map[string]any{"scope": []any{"openid"}}, nil, "must be a string"},
		{"fractional number", map[string]any{"max_age": 1.5}, nil, "must be a string"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := params(tt.claims, "c1")
			if tt.wantErr != "" {
				var e *oautherr.Error
				if !errors.As(err, &e) || e.Code != InvalidRequestObject || !strings.Contains(e.Description, tt.wantErr) {
					t.Fatalf("err = %v, want %s mentioning %q", err, InvalidRequestObject, tt.wantErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if len(got) != len(tt.want) {
				t.Fatalf("got %v, want %v", got, tt.want)
			}
			for k, v := range tt.want {
				if got.Get(k) != v {
					t.Errorf("%s = %q, want %q", k, got.Get(k), v)
				}
			}
		})
	}
}
