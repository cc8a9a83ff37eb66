package upstream

import (
	"strings"
	"testing"
)

func TestIconProblem(t *testing.T) {
	png := "data:image/png;base64,iVBORw0KGgo="
	tests := []struct {
		name, icon, want string
	}{
		{"none", "", ""},
		{"google", "google", ""},
		{"github", "github", ""},
		{"https", "https://cdn.example/corp.svg", ""},
		{"data png", png, ""},
		{"data svg", "data:image/svg+xml;base64,PHN2Zy8+", ""},
		{"unknown preset", "gitlab", "icon must be"},
		{"http", "http://cdn.example/corp.svg", "icon must be"},
		{"javascript", "javascript:alert(1)", "icon must be"},
		{"relative", "/static/icons/google.svg", "icon must be"},
		{"credentials", "https://u:p@cdn.example/i.png", "icon must be"},
		{"quote", `https://cdn.example/i.png"onerror="x`, "icon must be"},
		{"fragment", "https://cdn.example/i.svg#x", "icon must be"},
		{"data html", "data:text/html;base64,PGI+", "base64 image"},
		{"data not base64", "data:image/png,hello", "base64 image"},
		{"data bad base64", "data:image/png;base64,!!!", "base64 image"},
		{"data empty", "data:image/png;base64,", "base64 image"},
		{"data too big", "data:image/png;base64," + strings.Repeat("A", 16<<10), "at most 16 KiB"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got := iconProblem(tt.icon)
			if tt.want == "" && got != "" || tt.want != "" && !strings.Contains(got, tt.want) {
				t.Fatalf("iconProblem(%.40q) = %q, want %q", tt.icon, got, tt.want)
			}
			url := Config{Icon: tt.icon}.IconURL()
			if (tt.want != "" || tt.icon == "") != (url == "") {
				t.Fatalf("IconURL of %.40q = %q", tt.icon, url)
			}
		})
	}
	if u := (Config{Icon: "github"}).IconURL(); u != "/static/icons/github.svg" {
		t.Fatalf("github icon at %s", u)
	}
}
