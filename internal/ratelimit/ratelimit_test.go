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

// counting counts the reads of a Counter.
type counting struct {
	Counter
	reads int
}

func (c *counting) Failures(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	c.reads++
	return c.Counter.Failures(ctx, key, now)
}

// TestFresh: two nodes (Backoffs) share one counter. A clean key is not
// read again within Fresh; a local failure is seen at once; a failure on
// the other node within Fresh.
func TestFresh(t *testing.T) {
	ctx := context.Background()
	now := time.Unix(1000, 0)
	clock := func() time.Time { return now }
	shared := &counting{Counter: &Memory{}}
	a := &Backoff{Counter: shared, Free: 1, Base: time.Minute, Max: time.Hour, Now: clock, Fresh: time.Second}
	b := &Backoff{Counter: shared, Free: 1, Base: time.Minute, Max: time.Hour, Now: clock, Fresh: time.Second}
	for range 100 {
		if d, err := a.Wait(ctx, "k"); d != 0 || err != nil {
			t.Fatalf("clean key waits %v (%v)", d, err)
		}
		if err := a.Reset(ctx, "k"); err != nil {
			t.Fatal(err)
		}
	}
	if shared.reads != 1 {
		t.Fatalf("100 clean checks read the counter %d times, want 1", shared.reads)
	}
	// Failures on node b: node a trusts its clean view for at most Fresh.
	b.Fail(ctx, "k")
	b.Fail(ctx, "k")
	if d, _ := b.Wait(ctx, "k"); d != time.Minute {
		t.Fatalf("node b: wait %v", d)
	}
	now = now.Add(time.Second)
	if d, _ := a.Wait(ctx, "k"); d == 0 {
		t.Fatal("node a still trusts a stale clean view after Fresh")
	}
	// A local failure is seen at once.
	a.Reset(ctx, "j")
	a.Wait(ctx, "j")
	a.Fail(ctx, "j")
	a.Fail(ctx, "j")
	if d, _ := a.Wait(ctx, "j"); d != time.Minute {
		t.Fatalf("local failures not seen: wait %v", d)
	}
}
