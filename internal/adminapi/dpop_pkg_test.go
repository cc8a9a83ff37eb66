package adminapi

import (
	"context"
	"strings"
	"testing"
)

// TestClientDPoPBound: the operator sets and clears a client's
// dpop_bound_access_tokens (RFC 9449 §5.2); every view states it, and a
// backup carries it to another server.
func TestClientDPoPBound(t *testing.T) {
	a, h := newAPI(t)
	const body = `{"client_id":"notes","name":"Notes","redirect_uris":["https://notes.example/cb"],"scopes":["openid"]`
	steps := []struct {
		name, method, path, body string
		wantStatus               int
		want                     bool
	}{
		{"create with it", "POST", "/admin/clients", body + `,"dpop_bound_access_tokens":true}`, 201, true},
		{"get", "GET", "/admin/clients/notes", "", 200, true},
		{"update clearing it", "PUT", "/admin/clients/notes", body + `,"dpop_bound_access_tokens":false}`, 200, false},
		{"get after clearing", "GET", "/admin/clients/notes", "", 200, false},
		{"update setting it", "PUT", "/admin/clients/notes", body + `,"dpop_bound_access_tokens":true}`, 200, true},
		{"not a boolean", "PUT", "/admin/clients/notes", body + `,"dpop_bound_access_tokens":"yes"}`, 400, true},
	}
	for _, st := range steps {
		t.Run(st.name, func(t *testing.T) {
			status, got, raw := call(t, h, st.method, st.path, adminToken, st.body)
			if status != st.wantStatus {
				t.Fatalf("got %d %s, want %d", status, raw, st.wantStatus)
			}
			if status < 300 && got["dpop_bound_access_tokens"] != st.want {
				t.Fatalf("view %s: want dpop_bound_access_tokens %v", raw, st.want)
			}
			if c, err := a.Store.GetClient(context.Background(), "notes"); err != nil || c.DPoPBound != st.want {
				t.Fatalf("stored %+v, %v: want DPoPBound %v", c, err, st.want)
			}
		})
	}
	if _, _, raw := call(t, h, "GET", "/admin/clients", adminToken, ""); !strings.Contains(raw, `"dpop_bound_access_tokens":true`) {
		t.Fatalf("the list does not state the flag: %s", raw)
	}
	_, _, backup := call(t, h, "GET", "/admin/export", adminToken, "")
	b, h2 := newAPI(t)
	if status, _, raw := call(t, h2, "POST", "/admin/import", adminToken, backup); status != 200 {
		t.Fatalf("import: %d %s", status, raw)
	}
	if c, err := b.Store.GetClient(context.Background(), "notes"); err != nil || !c.DPoPBound {
		t.Fatalf("imported %+v, %v: the backup lost dpop_bound_access_tokens", c, err)
	}
}
