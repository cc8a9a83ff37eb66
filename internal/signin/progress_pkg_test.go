package signin

import (
	"context"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

type fakeUsers map[string]*storage.User

func (f fakeUsers) GetUser(_ context.Context, id string) (*storage.User, error) {
	if u, ok := f[id]; ok {
		return u, nil
	}
	return nil, storage.ErrNotFound
}

// TestCookieProgress pins what an unfinished sign-in's cookie restores:
// only the request it was made for, unforged, before it expires, for a
// user who still exists.
func TestCookieProgress(t *testing.T) {
	now := t0
	users := fakeUsers{"u1": {ID: "u1"}}
	c := &CookieProgress{Key: []byte("k1"), TTL: 5 * time.Minute, Now: func() time.Time { return now }, Users: users}
	proved := []Proof{{Step: "password", Kind: FirstFactor, AMR: []string{AMRPassword}, At: t0}}
	w := httptest.NewRecorder()
	if err := c.Save(context.Background(), w, nil, &Attempt{Request: &storage.AuthRequest{ID: "r1"}, User: users["u1"], Proved: proved}); err != nil {
		t.Fatal(err)
	}
	saved := w.Result().Cookies()[0]
	if !saved.HttpOnly || saved.Path != "/login" || saved.SameSite != http.SameSiteLaxMode {
		t.Fatalf("cookie %+v", saved)
	}
	cleared := httptest.NewRecorder()
	if err := c.Clear(context.Background(), cleared, nil); err != nil {
		t.Fatal(err)
	}
	if gone := cleared.Result().Cookies()[0]; gone.Name != ProgressCookie || gone.MaxAge >= 0 || gone.Value != "" {
		t.Errorf("Clear set %+v, want the cookie removed", gone)
	}
	payload, mac, _ := strings.Cut(saved.Value, ".")
	tests := []struct {
		name     string
		value    string
		req      string
		later    time.Duration
		key      string
		drop     bool
		wantUser string
	}{
		{"same request", saved.Value, "r1", 0, "k1", false, "u1"},
		{"another request", saved.Value, "r2", 0, "k1", false, ""},
		{"expired", saved.Value, "r1", 5 * time.Minute, "k1", false, ""},
		{"another key", saved.Value, "r1", 0, "k2", false, ""},
		{"forged payload", strings.ToUpper(payload[:4]) + payload[4:] + "." + mac, "r1", 0, "k1", false, ""},
		{"no signature", payload, "r1", 0, "k1", false, ""},
		{"user gone", saved.Value, "r1", 0, "k1", true, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			now = t0.Add(tt.later)
			c.Key = []byte(tt.key)
			c.Users = users
			if tt.drop {
				c.Users = fakeUsers{}
			}
			r := httptest.NewRequest(http.MethodPost, "/login", nil)
			r.AddCookie(&http.Cookie{Name: ProgressCookie, Value: tt.value})
			a := &Attempt{Request: &storage.AuthRequest{ID: tt.req}}
			if err := c.Load(context.Background(), r, a); err != nil {
				t.Fatal(err)
			}
			got := ""
			if a.User != nil {
				got = a.User.ID
			}
			if got != tt.wantUser || (got != "" && len(a.Proved) != 1) {
				t.Errorf("restored %q with %v, want %q", got, a.Proved, tt.wantUser)
			}
		})
	}
}
