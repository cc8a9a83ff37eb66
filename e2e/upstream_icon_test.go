package e2e

import (
	"io"
	"net/http"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/upstream"
)

// TestUpstreamIcon: an upstream's button shows its icon: a preset served
// by bawwab itself (nothing loaded from another site), or a data: URI,
// kept as it is rather than filtered; the login page's
// Content-Security-Policy is the one of a page without icons; an icon that
// is no image is refused through the admin API.
func TestUpstreamIcon(t *testing.T) {
	plain := start(t)
	b := plain.browser()
	wantCSP := b.get(b.get(plain.notesRequest("openid").url()).Location).Header.Get("Content-Security-Policy")
	if wantCSP == "" {
		t.Fatal("no Content-Security-Policy on the login page")
	}
	const png = "data:image/png;base64,iVBORw0KGgo="
	for _, tt := range []struct{ icon, src string }{
		{"github", `<img src="/static/icons/github.svg"`},
		{"google", `<img src="/static/icons/google.svg"`},
		{png, `<img src="` + png + `"`},
	} {
		t.Run(tt.icon[:6], func(t *testing.T) {
			op := startFakeOP(t)
			e := startWithUpstream(t, op, "fake", func(c *upstream.Config) { c.Icon = tt.icon })
			b := e.browser()
			p := b.get(b.get(e.notesRequest("openid").url()).Location)
			if !strings.Contains(p.Body, tt.src) || strings.Contains(p.Body, "ZgotmplZ") {
				t.Fatalf("no icon %s on the login page: %s", tt.src, p.Body)
			}
			if got := p.Header.Get("Content-Security-Policy"); got != wantCSP {
				t.Fatalf("Content-Security-Policy %q, want %q", got, wantCSP)
			}
			if !strings.HasPrefix(tt.icon, "data:") {
				resp, err := http.Get(e.URL + "/static/icons/" + tt.icon + ".svg")
				if err != nil {
					t.Fatal(err)
				}
				body, _ := io.ReadAll(resp.Body)
				resp.Body.Close()
				if resp.StatusCode != 200 || resp.Header.Get("Content-Type") != "image/svg+xml" || !strings.Contains(string(body), "<svg") {
					t.Fatalf("icon %s: %d %s", tt.icon, resp.StatusCode, resp.Header.Get("Content-Type"))
				}
			}
			b.startUpstreamLogin(b.get(e.notesRequest("openid").url()).Location, "fake") // the button still works
		})
	}
	op := startFakeOP(t)
	for _, icon := range []string{"javascript:alert(1)", "data:text/html;base64,PGI+", "http://cdn.example/i.png"} {
		c := op.Config("corp")
		c.Icon = icon
		if st, obj, body := plain.operatorCall("POST", "/admin/upstreams", c); st != http.StatusBadRequest || !strings.Contains(body, "icon") {
			t.Fatalf("icon %q: %d %v", icon, st, obj)
		}
	}
}
