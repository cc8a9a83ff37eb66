package adminapi

import (
	"encoding/json"
	"slices"
	"strings"
	"testing"
)

// TestOpenAPIMatchesRoutes: the document lists exactly the served routes,
// and every schema it refers to is defined.
func TestOpenAPIMatchesRoutes(t *testing.T) {
	var doc struct {
		OpenAPI    string                    `json:"openapi"`
		Paths      map[string]map[string]any `json:"paths"`
		Components struct {
			Schemas   map[string]any `json:"schemas"`
			Responses map[string]any `json:"responses"`
		} `json:"components"`
	}
	if err := json.Unmarshal(openapi, &doc); err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(doc.OpenAPI, "3.") {
		t.Fatalf("openapi %q", doc.OpenAPI)
	}
	var documented []string
	for path, ops := range doc.Paths {
		for method := range ops {
			if method == "parameters" {
				continue
			}
			documented = append(documented, strings.ToUpper(method)+" "+path)
		}
	}
	served := Patterns()
	slices.Sort(documented)
	slices.Sort(served)
	if !slices.Equal(documented, served) {
		t.Fatalf("openapi.json and the routes differ:\ndocumented %v\nserved     %v", documented, served)
	}
	for _, ref := range refs(openapi) {
		kind, name, _ := strings.Cut(strings.TrimPrefix(ref, "#/components/"), "/")
		if (kind == "schemas" && doc.Components.Schemas[name] == nil) || (kind == "responses" && doc.Components.Responses[name] == nil) {
			t.Errorf("dangling $ref %s", ref)
		}
	}
}

func refs(raw []byte) []string {
	var out []string
	s := string(raw)
	for {
		i := strings.Index(s, `"$ref": "`)
		if i < 0 {
			return out
		}
		s = s[i+9:]
		out = append(out, s[:strings.IndexByte(s, '"')])
	}
}
