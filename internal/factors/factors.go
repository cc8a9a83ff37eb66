// Package factors implements the second factors of an account: TOTP
// (RFC 6238), recovery codes and passkeys (W3C Web Authentication). It
// checks what a person presents; the sign-in pipeline decides when to ask,
// and the Security page lets the person manage them.
//
// Every check of a guessable code is throttled per user before it is made
// (package ratelimit): one budget is shared by TOTP codes and recovery
// codes, so that switching between them gains an attacker nothing.
// Single-use rules live in the store (storage.Factors, UseOnce), so that
// they hold across concurrent requests and nodes.
package factors

import (
	"context"
	"crypto/rand"
	"errors"
	"fmt"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
)

var (
	// ErrInvalidCode means the code is not right (wrong, malformed, or
	// for another time step). Callers tell the person so, and nothing more.
	ErrInvalidCode = errors.New("factors: the code is not right")
	// ErrReplayed means a right code that was used before (RFC 6238 §5.2:
	// "the verifier MUST NOT accept the second attempt of the OTP after
	// the successful validation has been issued for the first OTP").
	ErrReplayed = errors.New("factors: the code was used before")
	// ErrNotEnrolled means the user has no such factor (or, for TOTP, one
	// not yet confirmed).
	ErrNotEnrolled = errors.New("factors: not enrolled")
)

// ThrottledError means the user's second-factor attempts must wait.
type ThrottledError struct{ Wait time.Duration }

func (e *ThrottledError) Error() string {
	return fmt.Sprintf("factors: too many attempts, next in %d s", ratelimit.RetrySeconds(e.Wait))
}

// Guard throttles the second-factor attempts of each user.
type Guard struct {
	// Attempts is counted per user, in the store (Fresh zero), so that
	// every node throttles the same guesser.
	Attempts *ratelimit.Backoff
}

// GuardKey is the throttle key of a user's second-factor attempts.
func GuardKey(userID string) string { return "factor-user:" + userID }

// Try reserves an attempt of userID before check runs (never after: a
// parallel burst must not pass the check uncounted), then ends it by
// check's result: ErrInvalidCode and ErrReplayed count as failures,
// success forgets the failures, any other error uncounts the attempt.
func (g *Guard) Try(ctx context.Context, userID string, check func() error) error {
	if g == nil || g.Attempts == nil {
		return check()
	}
	a, wait, err := g.Attempts.Reserve(ctx, GuardKey(userID))
	if err != nil {
		return err
	}
	if wait > 0 {
		return &ThrottledError{Wait: wait}
	}
	defer a.Release(ctx)
	err = check()
	switch {
	case err == nil:
		return a.Succeed(ctx)
	case errors.Is(err, ErrInvalidCode), errors.Is(err, ErrReplayed):
		if _, ferr := a.Fail(ctx); ferr != nil {
			return errors.Join(err, ferr)
		}
	}
	return err
}

// Sealer keeps the secrets the server must read back (TOTP secrets)
// encrypted under a key shared by the nodes through the store: the
// mechanism of client_secret_jwt secrets (clientauth.Sealer), under key
// material of its own. Each sealed value is bound to its user, so that a
// sealed secret copied to another user's row does not open there.
type Sealer struct{ s *clientauth.Sealer }

// StoreSealer returns the sealer of every node sharing store.
func StoreSealer(ctx context.Context, store storage.Storage) (*Sealer, error) {
	m, err := store.Secret(ctx, "factor-seal", []byte(rand.Text()+rand.Text()))
	if err != nil {
		return nil, err
	}
	s, err := clientauth.NewSealer(m)
	if err != nil {
		return nil, err
	}
	return &Sealer{s: s}, nil
}

// Seal encrypts the secret of userID.
func (s *Sealer) Seal(userID, secret string) string {
	return s.s.Seal(userID + "\x00" + secret)
}

// Open decrypts what Seal made for userID.
func (s *Sealer) Open(userID, sealed string) (string, error) {
	plain, err := s.s.Open(sealed)
	if err != nil {
		return "", err
	}
	secret, ok := strings.CutPrefix(plain, userID+"\x00")
	if !ok {
		return "", errors.New("factors: sealed secret belongs to another user")
	}
	return secret, nil
}
