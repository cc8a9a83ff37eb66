package ratelimit

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

func TestDelay(t *testing.T) {
	p := storage.Throttle{Free: 3, Base: time.Second, Max: 8 * time.Second}
	for _, tc := range []struct {
		name string
		n    int
		want time.Duration
	}{
		{"nothing counted", 0, 0},
		{"within the free budget", 2, 0},
		{"budget spent", 3, time.Second},
		{"doubles", 4, 2 * time.Second},
		{"doubles again", 5, 4 * time.Second},
		{"reaches Max", 6, 8 * time.Second},
		{"stays at Max", 7, 8 * time.Second},
		{"no overflow", 1000, 8 * time.Second},
	} {
		if got := p.Delay(tc.n); got != tc.want {
			t.Errorf("%s: Delay(%d) = %v, want %v", tc.name, tc.n, got, tc.want)
		}
	}
}

// counters are the Counters a Backoff is tested on: in memory and the
// store bawwab uses.
func counters(t *testing.T) map[string]func() Counter {
	return map[string]func() Counter{
		"memory": func() Counter { return &Memory{} },
		"store": func() Counter {
			s, err := sqlite.Open(context.Background(), filepath.Join(t.TempDir(), "b.db"))
			if err != nil {
				t.Fatal(err)
			}
			t.Cleanup(func() { s.Close() })
			return s
		},
	}
}

// modes are the two ways a Backoff counts: every attempt in the Counter,
// or attempts in process and failures in the Counter.
var modes = map[string]time.Duration{"counted in store": 0, "decided in process": time.Second}

// step is one move of a policy test: advance the clock, then either end
// the oldest attempt still open, or reserve one more.
type step struct {
	name    string
	advance time.Duration
	end     string // "fail", "succeed", "release"; empty reserves
	key     string // default "amal"
	want    time.Duration
	refused bool // a reservation refused with want as the wait
}

func TestBackoff(t *testing.T) {
	// Free 3, Base 1 s, Max 8 s.
	steps := []step{
		{name: "first"},
		{name: "first fails", end: "fail"},
		{name: "second"},
		{name: "third, the last free"},
		{name: "fourth waits: two in flight and a failure fill the budget", refused: true, want: 0},
		{name: "second fails", end: "fail"},
		{name: "third fails, spending the budget", end: "fail", want: time.Second},
		{name: "refused, a second to wait", refused: true, want: time.Second},
		{name: "refused, waits less later", advance: 400 * time.Millisecond, refused: true, want: 600 * time.Millisecond},
		{name: "other keys are not throttled", key: "badr"},
		{name: "after the wait", advance: 600 * time.Millisecond},
		{name: "the one in flight counts: two seconds", refused: true, want: 2 * time.Second},
		{name: "fails: wait doubles", end: "fail", want: 2 * time.Second},
		{name: "refused for two seconds", refused: true, want: 2 * time.Second},
		{name: "after them", advance: 2 * time.Second},
		{name: "a success forgets the failures", end: "succeed"},
		{name: "free again"},
		{name: "and again"},
		{name: "released attempts are not counted", end: "release"},
		{name: "released again", end: "release"},
		{name: "so the budget is back"},
		{name: "and back"},
		{name: "all three"},
		{name: "but no fourth", refused: true, want: 0},
	}
	for cname, newCounter := range counters(t) {
		for mname, fresh := range modes {
			t.Run(cname+"/"+mname, func(t *testing.T) { runSteps(t, newCounter(), fresh, steps) })
		}
	}
}

func runSteps(t *testing.T, c Counter, fresh time.Duration, steps []step) {
	ctx := context.Background()
	now := time.UnixMilli(time.Now().UnixMilli())
	b := &Backoff{Counter: c, Free: 3, Base: time.Second, Max: 8 * time.Second, Now: func() time.Time { return now }, Fresh: fresh}
	var open []*Attempt
	for _, st := range steps {
		now = now.Add(st.advance)
		if st.end != "" {
			a := open[0]
			open = open[1:]
			var d time.Duration
			var err error
			switch st.end {
			case "fail":
				d, err = a.Fail(ctx)
			case "succeed":
				err = a.Succeed(ctx)
			case "release":
				err = a.Release(ctx)
			}
			if err != nil || d != st.want {
				t.Fatalf("%s: wait %v (%v), want %v", st.name, d, err, st.want)
			}
			continue
		}
		key := st.key
		if key == "" {
			key = "amal"
		}
		rctx, cancel := context.WithTimeout(ctx, 50*time.Millisecond)
		a, wait, err := b.Reserve(rctx, key)
		cancel()
		switch {
		case st.refused && st.want == 0:
			// The budget is held by attempts in flight, which may yet
			// succeed: Reserve waits for them (here, until its context
			// ends).
			if !errors.Is(err, context.DeadlineExceeded) {
				t.Fatalf("%s: got %v, wait %v, %v", st.name, a, wait, err)
			}
		case err != nil:
			t.Fatalf("%s: %v", st.name, err)
		case st.refused && (a != nil || wait != st.want):
			t.Fatalf("%s: got %v, wait %v; want refused for %v", st.name, a, wait, st.want)
		case !st.refused && (a == nil || wait != 0):
			t.Fatalf("%s: refused for %v", st.name, wait)
		case a != nil && key == "amal":
			open = append(open, a)
		}
	}
}

// TestConcurrent: attempts of one key reserved at once, each failing once
// let through, get through exactly Free times, in either mode; the right
// secret among them gets in only within the budget.
func TestConcurrent(t *testing.T) {
	for cname, newCounter := range counters(t) {
		for mname, fresh := range modes {
			t.Run(cname+"/"+mname, func(t *testing.T) {
				ctx := context.Background()
				now := time.UnixMilli(time.Now().UnixMilli()) // stores keep milliseconds
				b := &Backoff{Counter: newCounter(), Free: 5, Base: time.Minute, Max: time.Hour, Now: func() time.Time { return now }, Fresh: fresh}
				var through, refused atomic.Int32
				var wg sync.WaitGroup
				for range 40 {
					wg.Go(func() {
						a, wait, err := b.Reserve(ctx, "login-user:amal")
						switch {
						case err != nil:
							t.Error(err)
						case a == nil:
							if wait != time.Minute {
								t.Errorf("refused with wait %v, want a minute", wait)
							}
							refused.Add(1)
						default:
							through.Add(1)
							if _, err := a.Fail(ctx); err != nil {
								t.Error(err)
							}
						}
					})
				}
				wg.Wait()
				if through.Load() != 5 || refused.Load() != 35 {
					t.Fatalf("40 at once with 5 free: %d let through, %d refused", through.Load(), refused.Load())
				}
			})
		}
	}
}

// TestGoodAttemptsAtOnce: more good attempts at once than the budget wait
// for each other instead of being refused, in either mode.
func TestGoodAttemptsAtOnce(t *testing.T) {
	for cname, newCounter := range counters(t) {
		for mname, fresh := range modes {
			t.Run(cname+"/"+mname, func(t *testing.T) {
				ctx := context.Background()
				b := &Backoff{Counter: newCounter(), Free: 3, Base: time.Minute, Max: time.Hour, Now: time.Now, Fresh: fresh}
				var wg sync.WaitGroup
				for range 20 {
					wg.Go(func() {
						a, wait, err := b.Reserve(ctx, "login-user:amal")
						if err != nil || a == nil {
							t.Errorf("good attempt refused: wait %v, %v", wait, err)
							return
						}
						time.Sleep(time.Millisecond) // checking the secret
						if err := a.Succeed(ctx); err != nil {
							t.Error(err)
						}
					})
				}
				wg.Wait()
			})
		}
	}
}

// countingCounter counts a Counter's calls, and records whether each
// write's context was live.
type countingCounter struct {
	Counter
	mu              sync.Mutex
	reads, writes   int
	cancelledWrites int
}

func (c *countingCounter) write(ctx context.Context) {
	c.mu.Lock()
	defer c.mu.Unlock()
	c.writes++
	if ctx.Err() != nil {
		c.cancelledWrites++
	}
}

func (c *countingCounter) Failures(ctx context.Context, key string, now time.Time) (int, time.Time, error) {
	c.mu.Lock()
	c.reads++
	c.mu.Unlock()
	return c.Counter.Failures(ctx, key, now)
}

func (c *countingCounter) AddFailure(ctx context.Context, key string, at, expiresAt time.Time) (int, error) {
	c.write(ctx)
	return c.Counter.AddFailure(ctx, key, at, expiresAt)
}

func (c *countingCounter) ResetFailures(ctx context.Context, key string) error {
	c.write(ctx)
	return c.Counter.ResetFailures(ctx, key)
}

func (c *countingCounter) EndAttempt(ctx context.Context, key string, o storage.Outcome) error {
	c.write(ctx)
	return c.Counter.EndAttempt(ctx, key, o)
}

// TestInProcessFastPath: decided in process, a key without failures costs
// one read per Fresh, however many attempts succeed at once, and more
// attempts at once than the budget wait for each other instead of being
// refused.
func TestInProcessFastPath(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	c := &countingCounter{Counter: &Memory{}}
	b := &Backoff{Counter: c, Free: 3, Base: time.Minute, Max: time.Hour, Now: func() time.Time { return now }, Fresh: time.Second}
	var wg sync.WaitGroup
	for range 100 {
		wg.Go(func() {
			a, wait, err := b.Reserve(ctx, "client:robot|192.0.2.1")
			if err != nil || a == nil {
				t.Errorf("good attempt refused: wait %v, %v", wait, err)
				return
			}
			if err := a.Succeed(ctx); err != nil {
				t.Error(err)
			}
		})
	}
	wg.Wait()
	if c.reads != 1 || c.writes != 0 {
		t.Fatalf("100 good attempts: %d reads, %d writes of the store; want 1 and 0", c.reads, c.writes)
	}
}

// TestNodes: two nodes (Backoffs) deciding in process share one Counter.
// Failures on one are seen by the other within Fresh.
func TestNodes(t *testing.T) {
	ctx := context.Background()
	now := time.Now()
	clock := func() time.Time { return now }
	shared := &Memory{}
	a := &Backoff{Counter: shared, Free: 2, Base: time.Minute, Max: time.Hour, Now: clock, Fresh: time.Second}
	b := &Backoff{Counter: shared, Free: 2, Base: time.Minute, Max: time.Hour, Now: clock, Fresh: time.Second}
	if try, _, _ := a.Reserve(ctx, "k"); try == nil {
		t.Fatal("node a: clean key refused")
	} else {
		try.Succeed(ctx)
	}
	for range 2 {
		try, _, err := b.Reserve(ctx, "k")
		if try == nil || err != nil {
			t.Fatalf("node b: %v", err)
		}
		try.Fail(ctx)
	}
	if _, wait, _ := b.Reserve(ctx, "k"); wait != time.Minute {
		t.Fatalf("node b after its failures: wait %v", wait)
	}
	now = now.Add(time.Second)
	if _, wait, _ := a.Reserve(ctx, "k"); wait != 59*time.Second {
		t.Fatalf("node a after Fresh: wait %v, want the rest of node b's minute", wait)
	}
}

// TestEndingSurvivesHangUp: a client that hangs up after its guess was
// checked is counted all the same.
func TestEndingSurvivesHangUp(t *testing.T) {
	for mname, fresh := range modes {
		t.Run(mname, func(t *testing.T) {
			c := &countingCounter{Counter: &Memory{}}
			b := &Backoff{Counter: c, Free: 1, Base: time.Minute, Max: time.Hour, Now: time.Now, Fresh: fresh}
			ctx, cancel := context.WithCancel(context.Background())
			a, _, err := b.Reserve(ctx, "k")
			if err != nil {
				t.Fatal(err)
			}
			cancel()
			if _, err := a.Fail(ctx); err != nil {
				t.Fatal(err)
			}
			if c.writes != 1 || c.cancelledWrites != 0 {
				t.Fatalf("%d writes, %d with a cancelled context", c.writes, c.cancelledWrites)
			}
			if _, wait, _ := b.Reserve(context.Background(), "k"); wait == 0 {
				t.Fatal("the failure of a client that hung up was not counted")
			}
		})
	}
}

// TestWaitCancelled: an attempt waiting for others in flight gives up with
// its context.
func TestWaitCancelled(t *testing.T) {
	b := &Backoff{Counter: &Memory{}, Free: 1, Base: time.Minute, Max: time.Hour, Now: time.Now, Fresh: time.Second}
	held, _, err := b.Reserve(context.Background(), "k")
	if err != nil {
		t.Fatal(err)
	}
	ctx, cancel := context.WithTimeout(context.Background(), 20*time.Millisecond)
	defer cancel()
	if _, _, err := b.Reserve(ctx, "k"); !errors.Is(err, context.DeadlineExceeded) {
		t.Fatalf("waiting attempt: %v", err)
	}
	held.Release(context.Background())
	if a, _, err := b.Reserve(context.Background(), "k"); a == nil || err != nil {
		t.Fatalf("after the release: %v", err)
	}
}

func TestStoredKey(t *testing.T) {
	long := strings.Repeat("x", 10_000)
	for _, tc := range []struct {
		name, key string
		hashed    bool
	}{
		{"short", "login-user:amal", false},
		{"long", long, true},
		{"invalid UTF-8", "login-user:\xff", true},
		{"NUL", "login-user:a\x00b", true},
		{"unicode", "login-user:أمل", false},
	} {
		got := storedKey(tc.key)
		if hashed := strings.HasPrefix(got, "sha256:"); hashed != tc.hashed || !tc.hashed && got != tc.key {
			t.Errorf("%s: stored as %q", tc.name, got)
		}
	}
	if storedKey(long) == storedKey(long+"y") {
		t.Error("two long keys stored alike")
	}
}

func TestRetrySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 8 * time.Second: 8} {
		if got := RetrySeconds(d); got != want {
			t.Errorf("RetrySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
