// Package password hashes user passwords with argon2id (RFC 9106) and
// stores them in the PHC string format:
//
//	$argon2id$v=19$m=65536,t=3,p=2$<salt>$<hash>
//
// Parameters travel with each hash, so they can be raised later; Verify
// reports when a stored hash used weaker parameters than the current ones,
// and the caller rehashes on a successful login.
package password

import (
	"crypto/rand"
	"crypto/subtle"
	_ "embed"
	"encoding/base64"
	"errors"
	"fmt"
	"runtime"
	"strings"
	"sync"
	"unicode/utf8"

	"golang.org/x/crypto/argon2"
)

// Params are argon2id cost parameters.
type Params struct {
	Memory  uint32 // KiB
	Time    uint32 // iterations
	Threads uint8
}

// Default is OWASP's recommended argon2id configuration (Password Storage
// Cheat Sheet: m=19 MiB, t=2, p=1): about 25 ms of one CPU and 19 MiB per
// hash, which keeps a burst of logins from taking a small server's memory.
// Hashes made with stronger parameters stay as they are; weaker ones are
// upgraded at the next login.
var Default = Params{Memory: 19 * 1024, Time: 2, Threads: 1}

const (
	saltLen = 16
	keyLen  = 32
)

// ErrMismatch means the password does not match the hash.
var ErrMismatch = errors.New("password: mismatch")

// ErrMalformed means the stored hash cannot be parsed.
var ErrMalformed = errors.New("password: malformed hash")

// running admits as many argon2id runs at once as there are CPUs: each
// holds Params.Memory KiB, so a burst of logins queues instead of taking
// the process's memory with it, and the CPUs are busy either way.
var running = make(chan struct{}, runtime.GOMAXPROCS(0))

func idKey(pw string, salt []byte, p Params, n uint32) []byte {
	running <- struct{}{}
	defer func() { <-running }()
	return argon2.IDKey([]byte(pw), salt, p.Time, p.Memory, p.Threads, n)
}

// Hash returns the PHC string of an argon2id hash of pw with params p.
func Hash(pw string, p Params) (string, error) {
	salt := make([]byte, saltLen)
	if _, err := rand.Read(salt); err != nil {
		return "", err
	}
	key := idKey(pw, salt, p, keyLen)
	enc := base64.RawStdEncoding
	return fmt.Sprintf("$argon2id$v=%d$m=%d,t=%d,p=%d$%s$%s", argon2.Version, p.Memory, p.Time, p.Threads,
		enc.EncodeToString(salt), enc.EncodeToString(key)), nil
}

// Verify checks pw against a PHC hash in constant time. On success it also
// reports whether the hash should be replaced because its parameters are
// weaker than want.
func Verify(pw, hash string, want Params) (needsRehash bool, err error) {
	p, salt, key, err := parse(hash)
	if err != nil {
		return false, err
	}
	got := idKey(pw, salt, p, uint32(len(key)))
	if subtle.ConstantTimeCompare(got, key) != 1 {
		return false, ErrMismatch
	}
	return p.Memory < want.Memory || p.Time < want.Time || p.Threads < want.Threads, nil
}

// parse reads a PHC string of argon2id (RFC 9106 §4 parameters):
// $argon2id$v=19$m=…,t=…,p=…$salt$key, refusing anything else.
func parse(hash string) (Params, []byte, []byte, error) {
	parts := strings.Split(hash, "$")
	if len(parts) != 6 || parts[0] != "" || parts[1] != "argon2id" {
		return Params{}, nil, nil, ErrMalformed
	}
	p, err := parseParams(parts[2], parts[3])
	if err != nil {
		return p, nil, nil, err
	}
	salt, err := decode(parts[4], 8, -1)
	if err != nil {
		return p, nil, nil, err
	}
	key, err := decode(parts[5], 16, 64)
	if err != nil {
		return p, nil, nil, err
	}
	return p, salt, key, nil
}

// parseParams reads the version (only argon2 version 0x13, RFC 9106 §3.1)
// and the cost parameters, refusing absurd ones from a tampered store
// (resource exhaustion).
func parseParams(version, params string) (Params, error) {
	var p Params
	var v int
	if _, err := fmt.Sscanf(version, "v=%d", &v); err != nil || v != argon2.Version {
		return p, ErrMalformed
	}
	if _, err := fmt.Sscanf(params, "m=%d,t=%d,p=%d", &p.Memory, &p.Time, &p.Threads); err != nil {
		return p, ErrMalformed
	}
	if p.Memory == 0 || p.Memory > 4*1024*1024 || p.Time == 0 || p.Time > 64 || p.Threads == 0 {
		return p, ErrMalformed
	}
	return p, nil
}

// decode reads a salt or key: unpadded standard base64, of at least lo
// bytes and, unless hi is negative, at most hi.
func decode(s string, lo, hi int) ([]byte, error) {
	b, err := base64.RawStdEncoding.DecodeString(s)
	if err != nil || len(b) < lo || hi >= 0 && len(b) > hi {
		return nil, ErrMalformed
	}
	return b, nil
}

// dummies holds, per Params, a valid hash of a random password, verified
// when a username is unknown so that a login takes the same time whether or
// not it exists. Made on first use: hashing at start-up would cost every
// process the time and memory of one argon2id run.
var dummies sync.Map // Params → string

// VerifyDummy spends the time of one Verify with p, always failing.
func VerifyDummy(p Params) error {
	h, ok := dummies.Load(p)
	if !ok {
		fresh, err := Hash(rand.Text(), p)
		if err != nil {
			return err
		}
		h, _ = dummies.LoadOrStore(p, fresh)
	}
	_, _ = Verify("", h.(string), p)
	return ErrMismatch
}

// MinLength and MaxLength bound new passwords (NIST SP 800-63B §5.1.1.2:
// at least 8 characters, long passphrases allowed).
const (
	MinLength = 8
	MaxLength = 256
)

//go:embed common.txt
var commonList string

// common is the set of passwords that top published breach corpora.
var common = sync.OnceValue(func() map[string]bool {
	m := map[string]bool{}
	for line := range strings.Lines(commonList) {
		if line = strings.TrimSpace(line); line != "" && !strings.HasPrefix(line, "#") {
			m[line] = true
		}
	}
	return m
})

// Check tells why pw is not acceptable as a new password for the account
// named username, or returns nil: too short or too long, the user name
// itself, a single repeated character, or among the most common breached
// passwords (NIST SP 800-63B §5.1.1.2).
func Check(pw, username string) error {
	n := utf8.RuneCountInString(pw)
	lower := strings.ToLower(pw)
	switch {
	case n < MinLength:
		return fmt.Errorf("the password must have at least %d characters", MinLength)
	case n > MaxLength:
		return fmt.Errorf("the password may have at most %d characters", MaxLength)
	case lower == strings.ToLower(username) || (len(username) >= 4 && strings.Contains(lower, strings.ToLower(username))):
		return errors.New("the password may not contain the user name")
	case strings.Count(pw, pw[:1]) == len(pw):
		return errors.New("the password may not be one repeated character")
	case common()[lower]:
		return errors.New("the password is one of the most common breached passwords; choose another")
	}
	return nil
}
