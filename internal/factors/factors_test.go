package factors

import (
	"context"
	"errors"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/storage/sqlite"
)

var ctx = context.Background()

type fixture struct {
	store storage.Storage
	now   time.Time
	mu    sync.Mutex
	totp  *TOTP
	rec   *Recovery
	user  *storage.User
}

func (f *fixture) clock() time.Time {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.now
}

func (f *fixture) advance(d time.Duration) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.now = f.now.Add(d)
}

// newFixture returns factors on a fresh SQLite store whose guard lets
// free attempts through before it throttles.
func newFixture(t *testing.T, free int) *fixture {
	t.Helper()
	s, err := sqlite.Open(ctx, filepath.Join(t.TempDir(), "bawwab.db"))
	if err != nil {
		t.Fatal(err)
	}
	t.Cleanup(func() { s.Close() })
	// Near the real time, 10 s into a TOTP step: go-webauthn checks a
	// ceremony's expiry on the real clock too, so a fixed date would make
	// every passkey ceremony expired once the day passes it.
	f := &fixture{store: s, now: time.Now().UTC().Truncate(totpPeriod * time.Second).Add(10 * time.Second)}
	sealer, err := StoreSealer(ctx, s)
	if err != nil {
		t.Fatal(err)
	}
	guard := &Guard{Attempts: &ratelimit.Backoff{Counter: s, Free: free, Base: time.Minute, Max: time.Hour, Now: f.clock}}
	f.totp = &TOTP{Store: s, Sealer: sealer, Guard: guard, Issuer: "bawwab.test", Now: f.clock}
	f.rec = &Recovery{Store: s, Guard: guard, Now: f.clock}
	f.user = &storage.User{ID: "u1", Username: "amal", Email: "amal@example.com", CreatedAt: f.now}
	if err := s.CreateUser(ctx, *f.user); err != nil {
		t.Fatal(err)
	}
	return f
}

// enrol enrols and confirms TOTP for the fixture's user and returns the
// secret, leaving the clock three steps later, beyond the skew of the step
// the confirming code spent.
func (f *fixture) enrol(t *testing.T) string {
	t.Helper()
	e, err := f.totp.Enrol(ctx, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.totp.Confirm(ctx, f.user.ID, f.code(t, e.Secret, 0)); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	f.advance(3 * totpPeriod * time.Second)
	return e.Secret
}

// code computes the code of secret at the fixture's clock plus offset
// time steps, with the library, as an authenticator app would.
func (f *fixture) code(t *testing.T, secret string, offset int) string {
	t.Helper()
	c, err := totp.GenerateCode(secret, f.clock().Add(time.Duration(offset)*totpPeriod*time.Second))
	if err != nil {
		t.Fatal(err)
	}
	return c
}

func TestTOTPEnrolment(t *testing.T) {
	f := newFixture(t, 100)
	e, err := f.totp.Enrol(ctx, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if !strings.HasPrefix(e.QR, "data:image/png;base64,") || !strings.HasPrefix(e.URL, "otpauth://totp/") || len(e.Secret) != 32 {
		t.Fatalf("enrolment: secret %q url %q qr %.40q", e.Secret, e.URL, e.QR)
	}
	rec, err := f.store.GetTOTP(ctx, f.user.ID)
	if err != nil {
		t.Fatal(err)
	}
	if strings.Contains(rec.SecretSealed, e.Secret) {
		t.Fatal("the secret is stored in the clear")
	}
	// An enrolment proves nothing before it is confirmed.
	if err := f.totp.Verify(ctx, f.user.ID, f.code(t, e.Secret, 0)); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("verify before confirming: %v, want ErrNotEnrolled", err)
	}
	if on, _ := f.totp.Active(ctx, f.user.ID); on {
		t.Fatal("active before confirming")
	}
	if err := f.totp.Confirm(ctx, f.user.ID, "000000"); !errors.Is(err, ErrInvalidCode) {
		t.Fatalf("confirm with a wrong code: %v", err)
	}
	// Enrolling again (another tab) replaces the secret: the first one's
	// code no longer confirms.
	e2, err := f.totp.Enrol(ctx, f.user)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.totp.Confirm(ctx, f.user.ID, f.code(t, e.Secret, 0)); !errors.Is(err, ErrInvalidCode) && f.code(t, e.Secret, 0) != f.code(t, e2.Secret, 0) {
		t.Fatalf("confirm with the replaced secret: %v", err)
	}
	if err := f.totp.Confirm(ctx, f.user.ID, f.code(t, e2.Secret, 0)); err != nil {
		t.Fatalf("confirm: %v", err)
	}
	if on, _ := f.totp.Active(ctx, f.user.ID); !on {
		t.Fatal("not active after confirming")
	}
	if _, err := f.totp.Enrol(ctx, f.user); !errors.Is(err, storage.ErrAlreadyExists) {
		t.Fatalf("enrol over an active TOTP: %v", err)
	}
	if err := f.totp.Disable(ctx, f.user.ID); err != nil {
		t.Fatal(err)
	}
	if err := f.totp.Verify(ctx, f.user.ID, f.code(t, e2.Secret, 0)); !errors.Is(err, ErrNotEnrolled) {
		t.Fatalf("verify after turning off: %v", err)
	}
}

func TestTOTPVerify(t *testing.T) {
	f := newFixture(t, 100)
	secret := f.enrol(t)
	tests := []struct {
		name string
		code func() string
		want error
	}{
		{"now", func() string { return f.code(t, secret, 0) }, nil},
		{"now again", func() string { return f.code(t, secret, 0) }, ErrReplayed},
		{"one step ago", func() string { return f.code(t, secret, -1) }, nil},
		{"one step ahead", func() string { return f.code(t, secret, 1) }, nil},
		{"two steps ago", func() string { return f.code(t, secret, -2) }, ErrInvalidCode},
		{"two steps ahead", func() string { return f.code(t, secret, 2) }, ErrInvalidCode},
		{"wrong", func() string { return "12345" + string('0'+(f.code(t, secret, 0)[5]-'0'+1)%10) }, ErrInvalidCode},
		{"too short", func() string { return "12345" }, ErrInvalidCode},
		{"letters", func() string { return "abcdef" }, ErrInvalidCode},
		{"empty", func() string { return "" }, ErrInvalidCode},
		{"huge", func() string { return strings.Repeat("1", 1<<16) }, ErrInvalidCode},
	}
	for _, tc := range tests {
		t.Run(tc.name, func(t *testing.T) {
			err := f.totp.Verify(ctx, f.user.ID, tc.code())
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("got %v, want %v", err, tc.want)
			}
		})
	}
	// Spaces as some apps show the code are ignored.
	f.advance(3 * totpPeriod * time.Second)
	c := f.code(t, secret, 0)
	if err := f.totp.Verify(ctx, f.user.ID, c[:3]+" "+c[3:]); err != nil {
		t.Fatalf("code with a space: %v", err)
	}
	// Another user's secret does not verify this user's codes.
	other := &storage.User{ID: "u2", Username: "badr"}
	e, err := f.totp.Enrol(ctx, other)
	if err != nil {
		t.Fatal(err)
	}
	if err := f.totp.Verify(ctx, f.user.ID, f.code(t, e.Secret, 1)); !errors.Is(err, ErrInvalidCode) && f.code(t, e.Secret, 1) != f.code(t, secret, 1) {
		t.Fatalf("another user's code: %v", err)
	}
}

// TestTOTPReplayRace: one code sent many times at once is accepted once.
func TestTOTPReplayRace(t *testing.T) {
	f := newFixture(t, 100)
	secret := f.enrol(t)
	code := f.code(t, secret, 0)
	var ok, replayed int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 16 {
		wg.Go(func() {
			err := f.totp.Verify(ctx, f.user.ID, code)
			mu.Lock()
			defer mu.Unlock()
			switch {
			case err == nil:
				ok++
			case errors.Is(err, ErrReplayed):
				replayed++
			default:
				t.Errorf("verify: %v", err)
			}
		})
	}
	wg.Wait()
	if ok != 1 || replayed != 15 {
		t.Fatalf("accepted %d, replayed %d; want 1 and 15", ok, replayed)
	}
}

// TestTOTPThrottle: after the free attempts fail, even the right code
// waits; a burst of guesses checks no more than the free budget.
func TestTOTPThrottle(t *testing.T) {
	f := newFixture(t, 3)
	secret := f.enrol(t)
	wrong := "000000"
	if wrong == f.code(t, secret, 0) || wrong == f.code(t, secret, -1) || wrong == f.code(t, secret, 1) {
		wrong = "111111"
	}
	var checked, throttled int
	var mu sync.Mutex
	var wg sync.WaitGroup
	for range 12 {
		wg.Go(func() {
			err := f.totp.Verify(ctx, f.user.ID, wrong)
			var te *ThrottledError
			mu.Lock()
			defer mu.Unlock()
			switch {
			case errors.Is(err, ErrInvalidCode):
				checked++
			case errors.As(err, &te) && te.Wait > 0:
				throttled++
			default:
				t.Errorf("guess: %v", err)
			}
		})
	}
	wg.Wait()
	if checked != 3 || throttled != 9 {
		t.Fatalf("checked %d, throttled %d; want 3 and 9", checked, throttled)
	}
	var te *ThrottledError
	if err := f.totp.Verify(ctx, f.user.ID, f.code(t, secret, 0)); !errors.As(err, &te) {
		t.Fatalf("right code while throttled: %v", err)
	}
	// Recovery codes share the budget.
	if err := f.rec.Use(ctx, f.user.ID, "AAAAA-AAAAA-AAAAA-AAAAA-AAAAA-A"); !errors.As(err, &te) {
		t.Fatalf("recovery code while throttled: %v", err)
	}
	f.advance(time.Minute)
	if err := f.totp.Verify(ctx, f.user.ID, f.code(t, secret, 0)); err != nil {
		t.Fatalf("right code after the wait: %v", err)
	}
}

func TestSealerBindsUser(t *testing.T) {
	f := newFixture(t, 100)
	sealed := f.totp.Sealer.Seal("u1", "SECRET")
	if got, err := f.totp.Sealer.Open("u1", sealed); err != nil || got != "SECRET" {
		t.Fatalf("open: %q %v", got, err)
	}
	if _, err := f.totp.Sealer.Open("u2", sealed); err == nil {
		t.Fatal("a secret sealed for u1 opened for u2")
	}
	if _, err := f.totp.Sealer.Open("u1", sealed[:len(sealed)-2]+"AA"); err == nil {
		t.Fatal("a tampered secret opened")
	}
}

// TestIssuerName: the issuer an authenticator app shows holds no colon,
// which would split the key URI's "issuer:account" label.
func TestIssuerName(t *testing.T) {
	for in, want := range map[string]string{
		"https://id.example.com":       "id.example.com",
		"http://localhost:8080":        "localhost",
		"https://id.example.com:8443/": "id.example.com",
		"http://[::1]:8080":            "1",
		"not a url at all: x":          "not a url at all x",
	} {
		if got := IssuerName(in); got != want {
			t.Errorf("IssuerName(%q) = %q, want %q", in, got, want)
		}
	}
}
