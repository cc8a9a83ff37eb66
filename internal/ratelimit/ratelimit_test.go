package ratelimit

import (
	"testing"
	"time"
)

func TestBackoff(t *testing.T) {
	now := time.Unix(1000, 0)
	b := NewBackoff(3, time.Second, 8*time.Second, func() time.Time { return now })
	for i := range 3 {
		if d := b.Fail("amal"); d != 0 {
			t.Fatalf("free failure %d got wait %v", i+1, d)
		}
	}
	want := []time.Duration{time.Second, 2 * time.Second, 4 * time.Second, 8 * time.Second, 8 * time.Second}
	for i, w := range want {
		if d := b.Fail("amal"); d != w {
			t.Fatalf("failure %d: wait %v, want %v", i+4, d, w)
		}
	}
	if d := b.Wait("amal"); d != 8*time.Second {
		t.Fatalf("wait = %v", d)
	}
	if d := b.Wait("badr"); d != 0 {
		t.Fatalf("other key waits %v", d)
	}
	now = now.Add(9 * time.Second)
	if d := b.Wait("amal"); d != 0 {
		t.Fatalf("after the wait: %v", d)
	}
	b.Reset("amal")
	if d := b.Fail("amal"); d != 0 {
		t.Fatalf("after reset: %v", d)
	}
}

func TestRetrySeconds(t *testing.T) {
	for d, want := range map[time.Duration]int{0: 0, time.Millisecond: 1, time.Second: 1, 1500 * time.Millisecond: 2, 8 * time.Second: 8} {
		if got := RetrySeconds(d); got != want {
			t.Errorf("RetrySeconds(%v) = %d, want %d", d, got, want)
		}
	}
}
