package config

import (
	"os"
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

// FuzzLoad: any file either loads or yields an error that names the file;
// never a panic; and what loads validates or explains why not, each reason
// naming the setting it concerns.
func FuzzLoad(f *testing.F) {
	for _, seed := range []string{"", "issuer: https://id.example\n", "audience: [a, b]\n", "access_token_ttl: 1h\n",
		"listen: 127.0.0.1:0\npprof_listen: 0.0.0.0:6060\n", "- a\n- b\n", "issuer: [1, {a: b}]\n", "x: !!binary aGk=\n"} {
		f.Add([]byte(seed))
	}
	f.Fuzz(func(t *testing.T, raw []byte) {
		c := Default()
		if err := Load(&c, raw, "fuzz.yaml"); err != nil {
			if !strings.HasPrefix(err.Error(), "config: fuzz.yaml: ") {
				t.Fatalf("the error does not name the file: %v", err)
			}
			return
		}
		err := c.Validate()
		if err == nil {
			return
		}
		reasons := []error{err}
		if joined, ok := err.(interface{ Unwrap() []error }); ok {
			reasons = joined.Unwrap()
		}
		for _, r := range reasons {
			key, _, _ := strings.Cut(r.Error(), " ")
			if _, ok := field(strings.TrimSuffix(key, ":")); !ok {
				t.Fatalf("%q does not name the setting it concerns", r)
			}
		}
	})
}

func TestMistakesExplained(t *testing.T) {
	c := Default()
	err := Load(&c, []byte("isuer: https://id.example\n"), "t.yaml")
	if err == nil || !strings.Contains(err.Error(), `did you mean "issuer"`) {
		t.Fatalf("typo not explained: %v", err)
	}
	for _, tc := range []struct {
		set  map[string]string
		want string // in the error, or in a warning when it starts with "warn:"
	}{
		{map[string]string{"issuer": "http://id.example"}, "must use https outside localhost"},
		{map[string]string{"issuer": "https://id.example/"}, "must not end with a slash"},
		{map[string]string{"issuer": "id.example"}, "absolute URL"},
		{map[string]string{"database": "mysql://x"}, "postgres://"},
		{map[string]string{"pprof_listen": "0.0.0.0:6060"}, "loopback"},
		{map[string]string{"code_ttl": "20m"}, "10 minutes"},
		{map[string]string{"refresh_reuse_horizon": "10s"}, "must exceed refresh_grace"},
		{map[string]string{"listen": "0.0.0.0:8080"}, "warn:put TLS in front"},
		{map[string]string{"admin_listen": "0.0.0.0:8081", "admin_token": strings.Repeat("a", 32)}, "warn:admin_listen 0.0.0.0:8081 is not loopback and serves plain http"},
		{map[string]string{"access_token_ttl": "24h"}, "warn:keep it short"},
		{map[string]string{"password_time": "1", "password_memory_kib": "8192"}, "warn:OWASP"},
		{map[string]string{}, "warn:one node only"},
	} {
		c := Default()
		for k, v := range tc.set {
			f, _ := field(k)
			if err := f.Set(&c, v); err != nil {
				t.Fatalf("%s=%s: %v", k, v, err)
			}
		}
		if want, ok := strings.CutPrefix(tc.want, "warn:"); ok {
			if err := c.Validate(); err != nil {
				t.Errorf("%v: %v", tc.set, err)
			}
			if !strings.Contains(strings.Join(c.Warnings(), "\n"), want) {
				t.Errorf("%v: no warning about %q in %v", tc.set, want, c.Warnings())
			}
			continue
		}
		if err := c.Validate(); err == nil || !strings.Contains(err.Error(), tc.want) {
			t.Errorf("%v: error %v, want %q", tc.set, err, tc.want)
		}
	}
}

// TestReferenceCurrent keeps docs/config.md equal to Reference().
func TestReferenceCurrent(t *testing.T) {
	const path = "../../docs/config.md"
	want := Reference()
	if os.Getenv("BAWWAB_UPDATE_DOCS") == "1" {
		if err := os.WriteFile(path, []byte(want), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	got, err := os.ReadFile(path)
	if err != nil || string(got) != want {
		t.Fatalf("docs/config.md is stale: run BAWWAB_UPDATE_DOCS=1 go test ./internal/config")
	}
	// The example in the reference is itself a valid file.
	example := want[strings.Index(want, "```yaml\n")+8 : strings.LastIndex(want, "```")]
	c := Default()
	if err := Load(&c, []byte(example), "example"); err != nil || c.Validate() != nil {
		t.Fatalf("the reference's example does not load: %v %v", err, c.Validate())
	}
}
