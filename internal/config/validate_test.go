package config

import (
	"strings"
	"testing"
	"time"
)

// TestValidateRules: each rule of Validate, one row per branch, and that
// a config breaking several gets every message, in the order of the
// rules.
func TestValidateRules(t *testing.T) {
	for _, tt := range []struct {
		name string
		set  func(*Config)
		want []string // each message, in order; none: valid
	}{
		{"default", func(*Config) {}, nil},
		{"issuer query", func(c *Config) { c.Issuer = "https://id.example?x=1" }, []string{"must have no query or fragment (RFC 8414 §2)"}},
		{"issuer fragment", func(c *Config) { c.Issuer = "https://id.example#x" }, []string{"must have no query or fragment"}},
		{"issuer on localhost", func(c *Config) { c.Issuer = "http://auth.localhost:8080" }, nil},
		{"log format", func(c *Config) { c.LogFormat = "xml" }, []string{`log_format "xml" must be text or json`}},
		{"log level", func(c *Config) { c.LogLevel = "trace" }, []string{`log_level "trace" must be debug, info, warn or error`}},
		{"postgresql scheme", func(c *Config) { c.Database = "postgresql://db/x" }, nil},
		{"listen", func(c *Config) { c.Listen = "localhost" }, []string{`listen "localhost"`}},
		{"admin listen unused", func(c *Config) { c.AdminListen = "nowhere" }, nil},
		{"admin listen", func(c *Config) { c.AdminListen, c.AdminToken = "nowhere", strings.Repeat("a", 32) }, []string{`admin_listen "nowhere"`}},
		{"admin tls cert without key", func(c *Config) { c.AdminTLSCert = "admin.pem" }, []string{"admin_tls_cert and admin_tls_key go together"}},
		{"admin tls key without cert", func(c *Config) { c.AdminTLSKey = "admin.key" }, []string{"admin_tls_cert and admin_tls_key go together"}},
		{"admin tls", func(c *Config) { c.AdminTLSCert, c.AdminTLSKey = "admin.pem", "admin.key" }, nil},
		{"console second factor", func(c *Config) { c.ConsoleSecondFactor = "off" }, []string{`console_second_factor "off" must be enrolled or required`}},
		{"console second factor required", func(c *Config) { c.ConsoleSecondFactor = "required" }, nil},
		{"pprof loopback", func(c *Config) { c.PprofListen = "127.0.0.1:6060" }, nil},
		{"dpop nonce", func(c *Config) { c.DPoPNonce = "yes" }, []string{`dpop_nonce "yes" must be on or off`}},
		{"registration mode", func(c *Config) { c.Registration = "closed" }, []string{`registration "closed" must be off, open or token`}},
		{"registration token short", func(c *Config) { c.Registration, c.RegistrationToken = "token", "short" }, []string{"registration_token of at least 32 characters"}},
		{"registration token none: issued tokens only", func(c *Config) { c.Registration = "token" }, nil},
		{"registration token", func(c *Config) { c.Registration, c.RegistrationToken = "token", strings.Repeat("t", 32) }, nil},
		{"access token alg", func(c *Config) { c.AccessTokenAlg = "HS256" }, []string{`access_token_alg "HS256" must be ES256, RS256 or PS256`}},
		{"registration pkce", func(c *Config) { c.RegistrationPKCE = "plain" }, []string{`registration_pkce "plain" must be required or nonce_instead`}},
		{"admin token short", func(c *Config) { c.AdminToken = "short" }, []string{"admin_token must have at least 32 characters"}},
		{"code ttl", func(c *Config) { c.CodeTTL = 11 * time.Minute }, []string{"longer than the 10 minutes RFC 6749 §4.1.2 allows"}},
		{"several, in order", func(c *Config) {
			c.Issuer, c.LogLevel, c.Listen, c.DPoPNonce, c.CodeTTL = "nope", "loud", "x", "maybe", time.Hour
		}, []string{`issuer "nope" must be an absolute URL`, "log_level", "listen", "dpop_nonce", "code_ttl"}},
	} {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			tt.set(&c)
			err := c.Validate()
			if len(tt.want) == 0 {
				if err != nil {
					t.Fatalf("unexpected error: %v", err)
				}
				return
			}
			if err == nil {
				t.Fatalf("no error, want %q", tt.want)
			}
			lines := strings.Split(err.Error(), "\n")
			if len(lines) != len(tt.want) {
				t.Fatalf("errors %q, want %d", lines, len(tt.want))
			}
			for i, w := range tt.want {
				if !strings.Contains(lines[i], w) {
					t.Errorf("error %d %q, want %q", i, lines[i], w)
				}
			}
		})
	}
}

// TestWarningsOrder: exposure warnings come before policy warnings, and a
// sound production config has none.
func TestWarningsOrder(t *testing.T) {
	c := Default()
	c.Issuer, c.Listen, c.Registration, c.Database = "http://id.example", "0.0.0.0:8080", "open", ""
	w := c.Warnings()
	want := []string{"uses http", "put TLS in front", "registration: open", "one node only"}
	if len(w) != len(want) {
		t.Fatalf("warnings %q, want %d", w, len(want))
	}
	for i := range want {
		if !strings.Contains(w[i], want[i]) {
			t.Errorf("warning %d %q, want %q", i, w[i], want[i])
		}
	}
	c = Default()
	c.Issuer, c.Database = "https://id.example", "postgres://db/bawwab"
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings for a sound config: %q", w)
	}
	// An admin listener off loopback, over TLS: no warning.
	c.AdminListen, c.AdminToken, c.AdminTLSCert, c.AdminTLSKey = "0.0.0.0:8081", strings.Repeat("a", 32), "admin.pem", "admin.key"
	if w := c.Warnings(); len(w) != 0 {
		t.Fatalf("warnings for an admin listener over TLS: %q", w)
	}
}

// TestUpstreams reads the upstreams list from YAML and from the
// environment (JSON), refuses unknown members, and validates the list.
func TestUpstreams(t *testing.T) {
	tests := []struct {
		name, yaml string
		loadErr    string
		ids        string
		validErr   string
	}{
		{name: "two upstreams", yaml: "upstreams:\n  - id: corp\n    name: {en: Example Corp, ar: إكزامبل}\n    type: oidc\n    issuer: https://login.corp.example\n    client_id: c\n    allowed_domains: [corp.example]\n  - id: github\n    name: {en: GitHub}\n    type: github\n    client_id: g\n",
			ids: "corp,github"},
		{name: "unknown member", yaml: "upstreams:\n  - id: corp\n    issuer_url: https://x.example\n", loadErr: "issuer_url"},
		{name: "not a list", yaml: "upstreams: corp\n", loadErr: "not a list of upstreams"},
		{name: "invalid upstream", yaml: "upstreams:\n  - id: corp\n    name: {en: Corp}\n    type: oidc\n    client_id: c\n", ids: "corp", validErr: "issuer must be"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			c := Default()
			err := Load(&c, []byte(tt.yaml), "test.yaml")
			if tt.loadErr != "" {
				if err == nil || !strings.Contains(err.Error(), tt.loadErr) {
					t.Fatalf("Load: %v, want %q", err, tt.loadErr)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			f, _ := field("upstreams")
			if got := f.Get(&c); got != tt.ids {
				t.Errorf("upstreams = %q, want %q", got, tt.ids)
			}
			err = c.Validate()
			if (tt.validErr == "") != (err == nil) || err != nil && !strings.Contains(err.Error(), tt.validErr) {
				t.Errorf("Validate: %v, want %q", err, tt.validErr)
			}
		})
	}
	c := Default()
	env := map[string]string{"BAWWAB_UPSTREAMS": `[{"id":"g","name":{"en":"Google"},"type":"google","client_id":"x"}]`}
	if err := LoadEnv(&c, func(k string) string { return env[k] }); err != nil || len(c.Upstreams) != 1 || c.Upstreams[0].Type != "google" {
		t.Fatalf("LoadEnv: %v %+v", err, c.Upstreams)
	}
}
