package upstream

import (
	"context"
	"log/slog"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestRegistry: the configured upstreams come first and win over a stored
// one of the same id; stored ones are read again after TTL (at once after
// Forget), keep their provider while unchanged, and one whose sealed
// secret does not open is left out, not the others.
func TestRegistry(t *testing.T) {
	ctx := context.Background()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer s.Close()
	sealer, err := SecretSealer(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	now := time.Now()
	clock := func() time.Time { return now }
	var logged strings.Builder
	r := &Registry{Static: []Config{{ID: "cfg", Name: map[string]string{"en": "Configured"}, Type: TypeGoogle, ClientID: "c"}},
		Store: s, Sealer: sealer, Base: "https://id.example", Now: clock, TTL: 2 * time.Second, Log: slog.New(slog.NewTextHandler(&logged, nil))}
	add := func(c Config, enabled bool) {
		t.Helper()
		row, err := Encode(c, sealer)
		if err != nil {
			t.Fatal(err)
		}
		row.Enabled, row.CreatedAt, row.UpdatedAt = enabled, now, now
		if err := s.CreateUpstream(ctx, row); err != nil {
			t.Fatal(err)
		}
	}
	ids := func() string {
		t.Helper()
		list, err := r.Providers(ctx)
		if err != nil {
			t.Fatal(err)
		}
		var out []string
		for _, p := range list {
			out = append(out, p.ID+map[bool]string{true: "+", false: "-"}[p.On()])
		}
		return strings.Join(out, ",")
	}
	if got := ids(); got != "cfg+" {
		t.Fatalf("before any is stored: %s", got)
	}
	// With no upstream at all the empty list is cached too: no store read
	// per login page.
	counting := &countingStore{Storage: s}
	empty := &Registry{Store: counting, Sealer: sealer, Now: clock, TTL: time.Hour}
	for range 3 {
		if list, err := empty.Providers(ctx); err != nil || len(list) != 0 {
			t.Fatalf("no upstreams: %v %v", list, err)
		}
	}
	if counting.n != 1 {
		t.Fatalf("with no upstreams the store was read %d times in the TTL, want 1", counting.n)
	}
	add(Config{ID: "corp", Name: map[string]string{"en": "Corp"}, Type: TypeOIDC, Issuer: "https://corp.example", ClientID: "b", ClientSecret: "s3cret"}, true)
	add(Config{ID: "cfg", Name: map[string]string{"en": "Shadow"}, Type: TypeGoogle, ClientID: "x"}, true)
	add(Config{ID: "off", Name: map[string]string{"en": "Off"}, Type: TypeGoogle, ClientID: "x"}, false)
	if got := ids(); got != "cfg+" {
		t.Fatalf("within the TTL: %s", got)
	}
	now = now.Add(3 * time.Second)
	if got := ids(); got != "cfg+,corp+,off-" {
		t.Fatalf("after the TTL: %s", got)
	}
	if !strings.Contains(logged.String(), "hides one of the same id") {
		t.Errorf("the hidden stored upstream is not logged: %s", logged.String())
	}
	p, _ := r.Lookup(ctx, "corp")
	if p == nil || p.ClientSecret != "s3cret" || p.RedirectURL != "https://id.example/upstream/corp/callback" {
		t.Fatalf("corp: %+v", p)
	}
	if c, _ := r.Lookup(ctx, "cfg"); c == nil || c.Label("en") != "Configured" {
		t.Fatal("a stored upstream hides the configured one of its id")
	}
	r.Forget()
	if again, _ := r.Lookup(ctx, "corp"); again != p {
		t.Fatal("an unchanged upstream got a new provider (and forgot its discovery)")
	}
	// A row whose secret was sealed for another id is left out, alone.
	row, _ := s.GetUpstream(ctx, "corp")
	moved := *row
	moved.ID = "moved"
	if err := s.CreateUpstream(ctx, moved); err != nil {
		t.Fatal(err)
	}
	row.Enabled = false
	if err := s.UpdateUpstream(ctx, *row); err != nil {
		t.Fatal(err)
	}
	r.Forget()
	if got := ids(); got != "cfg+,corp-,off-" {
		t.Fatalf("with a broken row: %s", got)
	}
	if !strings.Contains(logged.String(), "upstream left out") {
		t.Errorf("the broken row is not logged: %s", logged.String())
	}
	if p2, _ := r.Lookup(ctx, "corp"); p2 == p || p2.On() {
		t.Fatal("a changed row kept its old provider")
	}
}

// countingStore counts ListUpstreams.
type countingStore struct {
	storage.Storage
	n int
}

func (c *countingStore) ListUpstreams(ctx context.Context) ([]storage.Upstream, error) {
	c.n++
	return c.Storage.ListUpstreams(ctx)
}
