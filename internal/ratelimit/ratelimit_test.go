package ratelimit

import (
	"context"
	"path/filepath"
	"strings"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

// TestBackoff runs the policy on the in-memory counter and on a store, the
// counter bawwab uses.
func TestBackoff(t *testing.T) {
	store, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "b.db"))
	if err != nil {
		t.Fatal(err)
	}
	defer store.Close()
	for name, c := range map[string]Counter{"memory": &Memory{}, "store": store} {
		t.Run(name, func(t *testing.T) { testBackoff(t, c) })
	}
}

func testBackoff(t *testing.T, c Counter) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	b := &Backoff{Counter: c, Free: 3, Base: time.Second, Max: 8 * time.Second, Now: func() time.Time { return now }}
	must := func(d time.Duration, err error) time.Duration {
		t.Helper()
		if err != nil {
			t.Fatal(err)
		}
		return d
	}
	for i := range 3 {
		if d := must(b.Fail(ctx, "amal")); d != 0 {
			t.Fatalf("free failure %d got wait %v", i+1, d)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if d := must(b.Fail(ctx, "amal")); d != w {
			t.Fatalf("failure %d: wait %v, want %v", i+4, d, w)
		}
	}
	if d := must(b.Wait(ctx, "amal")); d != 8*time.Second {
		t.Fatalf("wait = %v", d)
	}
	if d := must(b.Wait(ctx, "badr")); d != 0 {
		t.Fatalf("other key waits %v", d)
	}
	now = now.Add(3 * time.Second)
	if d := must(b.Wait(ctx, "amal")); d != 5*time.Second {
		t.Fatalf("wait after 3s = %v, want 5s", d)
	}
	now = now.Add(6 * time.Second)
	if d := must(b.Wait(ctx, "amal")); d != 0 {
		t.Fatalf("after the wait: %v", d)
	}
	if err := b.Reset(ctx, "amal"); err != nil {
		t.Fatal(err)
	}
	if d := must(b.Fail(ctx, "amal")); d != 0 {
		t.Fatalf("after reset: %v", d)
	}
	// Max without failures forgets the key.
	for range 4 {
		must(b.Fail(ctx, "idle"))
	}
	now = now.Add(b.Max + time.Second)
	if d := must(b.Fail(ctx, "idle")); d != 0 {
		t.Fatalf("failure after a quiet Max still waits %v", d)
	}
	// Huge keys are stored by hash, and still counted apart.
	long := strings.Repeat("x", 10_000)
	for range 4 {
		must(b.Fail(ctx, long))
	}
	if d := must(b.Wait(ctx, long)); d != time.Second {
		t.Fatalf("long key waits %v", d)
	}
	if d := must(b.Wait(ctx, long+"y")); d != 0 {
		t.Fatalf("other long key waits %v", d)
	}
}

func TestRetrySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 8 * time.Second: 8} {
		if got := RetrySeconds(d); got != want {
			t.Errorf("RetrySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
