package config

import (
	"os"
	"regexp"
	"strings"
	"testing"
)

// TestFederationDocExamples loads every YAML example of
// docs/federation.md with the real loader (which refuses unknown keys) and
// validates the result, so that the page names only keys that exist and
// shows only upstreams bawwab accepts. Every key of an upstream the page's
// table lists must be one the loader knows, too.
func TestFederationDocExamples(t *testing.T) {
	raw, err := os.ReadFile("../../docs/federation.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(raw)
	blocks := regexp.MustCompile("(?s)```yaml\n(.*?)```").FindAllStringSubmatch(doc, -1)
	if len(blocks) < 5 {
		t.Fatalf("docs/federation.md has %d YAML examples; expected the claim mapping, Google, GitHub (two), a generic provider and several", len(blocks))
	}
	for i, b := range blocks {
		c := Default()
		if err := Load(&c, []byte(b[1]), "docs/federation.md"); err != nil {
			t.Errorf("example %d does not load: %v\n%s", i+1, err, b[1])
			continue
		}
		if len(c.Upstreams) == 0 {
			t.Errorf("example %d configures no upstream:\n%s", i+1, b[1])
		}
		if err := c.Validate(); err != nil {
			t.Errorf("example %d is refused: %v\n%s", i+1, err, b[1])
		}
	}
	for _, typ := range []string{"type: google", "type: github", "type: oidc", "type: oauth2"} {
		if !strings.Contains(doc, typ) {
			t.Errorf("docs/federation.md shows no example with %q", typ)
		}
	}
	// The configuration table: each `key` in its first column.
	table := regexp.MustCompile("(?m)^\\| ((?:`[a-z_]+`(?:, )?)+) \\|").FindAllStringSubmatch(doc, -1)
	if len(table) < 10 {
		t.Fatalf("the configuration table has %d rows", len(table))
	}
	for _, row := range table {
		for _, key := range regexp.MustCompile("`([a-z_]+)`").FindAllStringSubmatch(row[1], -1) {
			yaml := "upstreams:\n  - " + key[1] + ": " + sample(key[1]) + "\n"
			c := Default()
			if err := Load(&c, []byte(yaml), "table"); err != nil {
				t.Errorf("the table's key %q is not an upstream key: %v", key[1], err)
			}
		}
	}
}

// sample is a value of the right shape for an upstream key.
func sample(key string) string {
	switch key {
	case "name":
		return "{en: X}"
	case "claims":
		return "{subject: sub}"
	case "scopes", "allowed_domains":
		return "[x]"
	case "jit", "enabled":
		return "true"
	}
	return "x"
}
