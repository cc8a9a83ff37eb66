package upstream

import (
	"encoding/base64"
	"html/template"
	"net/url"
	"strings"
)

// Icons bawwab serves itself (under /static/icons/), named in an
// upstream's icon setting: the login page then loads nothing from another
// site.
var presetIcons = map[string]bool{"google": true, "github": true}

// maxIconData bounds a data: URI icon, which every login page carries.
const maxIconData = 16 << 10

// iconTypes are the image types a data: URI icon may have.
var iconTypes = []string{"image/png", "image/svg+xml", "image/gif", "image/webp", "image/jpeg"}

// iconProblem says what is wrong with an icon setting: a preset name
// ("google", "github"), an https URL, or a base64 data: URI of an image
// of at most 16 KiB; "" when it is fine or empty.
func iconProblem(icon string) string {
	switch {
	case icon == "" || presetIcons[icon]:
		return ""
	case strings.HasPrefix(icon, "data:"):
		return dataIconProblem(icon)
	}
	u, err := url.Parse(icon)
	if err != nil || u.Scheme != "https" || u.Host == "" || u.User != nil || u.Fragment != "" || strings.ContainsAny(icon, " \"'<>") {
		return "icon must be google, github, an https URL or a data: URI of an image"
	}
	return ""
}

// dataIconProblem checks a data: URI icon: an image type, base64, small.
func dataIconProblem(icon string) string {
	if len(icon) > maxIconData {
		return "icon: a data: URI may be at most 16 KiB"
	}
	meta, data, ok := strings.Cut(strings.TrimPrefix(icon, "data:"), ",")
	typ, b64 := strings.CutSuffix(meta, ";base64")
	known := false
	for _, t := range iconTypes {
		known = known || typ == t
	}
	if _, err := base64.StdEncoding.DecodeString(data); !ok || !b64 || !known || err != nil || data == "" {
		return "icon: a data: URI must be a base64 image (png, svg+xml, gif, webp or jpeg)"
	}
	return ""
}

// IconURL is where the login page loads the upstream's icon from: a
// preset's path on this server, the URL or data: URI configured, or ""
// for none. Validate checked it.
func (c Config) IconURL() template.URL {
	if presetIcons[c.Icon] {
		return template.URL("/static/icons/" + c.Icon + ".svg")
	}
	if iconProblem(c.Icon) != "" {
		return ""
	}
	return template.URL(c.Icon) // checked by iconProblem: https, or a base64 image data: URI
}
