package config

import (
	"strings"
	"testing"
)

func TestLoad(t *testing.T) {
	c := Default()
	if err := Load(&c, []byte("issuer: https://id.example\naudience: [api, files]\naccess_token_ttl: 5m\n"), "t.yaml"); err != nil {
		t.Fatal(err)
	}
	if c.Issuer != "https://id.example" || strings.Join(c.Audience, ",") != "api,files" || c.AccessTokenTTL.String() != "5m0s" {
		t.Fatalf("loaded %+v", c)
	}
	for _, bad := range []string{"isuer: x\n", "access_token_ttl: soon\n", "audience: []\n", ": :\n"} {
		c := Default()
		if err := Load(&c, []byte(bad), "t.yaml"); err == nil {
			t.Errorf("%q accepted", bad)
		}
	}
}

// FuzzLoad: any file either loads or yields an error; never a panic, and
// what loads validates or explains why not.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{"", "issuer: https://id.example\n", "audience: [a, b]\n", "access_token_ttl: 1h\n",
		"listen: 127.0.0.1:0\npprof_listen: 0.0.0.0:6060\n", "- a\n- b\n", "issuer: [1, {a: b}]\n", "x: !!binary aGk=\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := Default()
		if err := Load(&c, raw, "fuzz.yaml"); err != nil {
			return
		}
		_ = c.Validate()
	})
}
