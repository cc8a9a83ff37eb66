package token

import (
	"slices"
	"testing"

	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

func TestConsentItems(t *testing.T) {
	cat := scope.Default()
	all := &storage.Client{Scopes: cat.Names()}
	narrow := &storage.Client{Scopes: []string{"openid", "email"}}
	for _, tc := range []struct {
		name   string
		client *storage.Client
		scopes []string
		claims string
		want   []string
	}{
		{"no claims parameter", all, []string{"openid"}, "", []string{"openid"}},
		{"name for userinfo", all, []string{"openid"}, `{"userinfo":{"name":{"essential":true}}}`, []string{"openid", "claim:name"}},
		{"covered by a requested scope", all, []string{"openid", "profile"}, `{"userinfo":{"name":null}}`, []string{"openid", "profile"}},
		{"both targets, once each", all, []string{"openid"}, `{"userinfo":{"email":null},"id_token":{"email":null,"phone_number":null}}`,
			[]string{"openid", "claim:email", "claim:phone_number"}},
		{"not user claims", all, []string{"openid"}, `{"id_token":{"acr":{"essential":false},"auth_time":null,"sub":null,"shoe_size":null}}`,
			[]string{"openid"}},
		{"beyond the client's scopes", narrow, []string{"openid"}, `{"userinfo":{"phone_number":null,"email":null}}`,
			[]string{"openid", "claim:email"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := ConsentItems(cat, tc.client, tc.scopes, tc.claims); !slices.Equal(got, tc.want) {
				t.Fatalf("got %v, want %v", got, tc.want)
			}
		})
	}
}

func TestSplitGranted(t *testing.T) {
	cat := scope.Default()
	const param = `{"userinfo":{"name":null,"email":null},"id_token":{"email":null}}`
	for _, tc := range []struct {
		name       string
		granted    []string
		wantScopes []string
		want       string
	}{
		{"all granted", []string{"openid", "claim:name", "claim:email"}, []string{"openid"}, `{"userinfo":["email","name"],"id_token":["email"]}`},
		{"email refused", []string{"openid", "claim:name"}, []string{"openid"}, `{"userinfo":["name"]}`},
		{"none", []string{"openid", "profile"}, []string{"openid", "profile"}, ""},
		{"an item not asked for is ignored", []string{"openid", "claim:phone_number"}, []string{"openid"}, ""},
	} {
		t.Run(tc.name, func(t *testing.T) {
			scopes, got := SplitGranted(cat, tc.granted, param)
			if !slices.Equal(scopes, tc.wantScopes) || got != tc.want {
				t.Fatalf("got %v %s, want %v %s", scopes, got, tc.wantScopes, tc.want)
			}
		})
	}
}
