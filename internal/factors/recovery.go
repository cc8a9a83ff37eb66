package factors

import (
	"context"
	"crypto/rand"
	"errors"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// RecoveryCodeCount is how many recovery codes a person gets at a time.
const RecoveryCodeCount = 10

// Recovery issues and spends recovery codes: one-time codes that stand in
// for a lost second factor.
//
// A code is 26 base32 characters from crypto/rand (rand.Text: 130 bits).
// It is stored as its SHA-256 (storage.Hash), like session ids and
// refresh tokens: a slow password hash such as argon2id protects
// low-entropy secrets from offline guessing, but no amount of guessing
// finds a 130-bit random value from its SHA-256, so a fast hash loses
// nothing and a stolen database still yields no usable code.
type Recovery struct {
	Store storage.Storage
	Guard *Guard
	Now   func() time.Time
}

// Generate replaces the user's recovery codes with RecoveryCodeCount new
// ones and returns them, grouped for reading. They are shown once: only
// their hashes are kept.
func (r *Recovery) Generate(ctx context.Context, userID string) ([]string, error) {
	codes := make([]string, RecoveryCodeCount)
	hashes := make([]string, RecoveryCodeCount)
	for i := range codes {
		c := rand.Text()
		hashes[i] = storage.Hash(c)
		codes[i] = group(c)
	}
	if err := r.Store.ReplaceRecoveryCodes(ctx, userID, hashes, r.Now()); err != nil {
		return nil, err
	}
	return codes, nil
}

// Use spends one of the user's recovery codes, throttled. Of concurrent
// uses of one code exactly one succeeds; a spent code is ErrReplayed.
func (r *Recovery) Use(ctx context.Context, userID, code string) error {
	return r.Guard.Try(ctx, userID, func() error {
		c := normalize(code)
		if len(c) != 26 {
			return ErrInvalidCode
		}
		err := r.Store.UseRecoveryCode(ctx, userID, storage.Hash(c), r.Now())
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return ErrInvalidCode
		case errors.Is(err, storage.ErrAlreadyUsed):
			return ErrReplayed
		}
		return err
	})
}

// Remaining returns how many unused codes the user has.
func (r *Recovery) Remaining(ctx context.Context, userID string) (int, error) {
	return r.Store.CountRecoveryCodes(ctx, userID)
}

// group writes a code in groups of five for reading and copying.
func group(c string) string {
	var b strings.Builder
	for i := 0; i < len(c); i += 5 {
		if i > 0 {
			b.WriteByte('-')
		}
		b.WriteString(c[i:min(i+5, len(c))])
	}
	return b.String()
}

// normalize undoes grouping and case: what a person typed, as generated.
func normalize(code string) string {
	code = strings.ToUpper(code)
	return strings.Map(func(r rune) rune {
		if r == '-' || r == ' ' || r == '\t' {
			return -1
		}
		return r
	}, code)
}
