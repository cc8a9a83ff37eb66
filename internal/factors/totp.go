package factors

import (
	"bytes"
	"context"
	"crypto/subtle"
	"encoding/base64"
	"errors"
	"fmt"
	"image/png"
	"net/url"
	"strconv"
	"strings"
	"time"

	"github.com/pquerna/otp"
	"github.com/pquerna/otp/totp"

	"github.com/bawwab/bawwab/internal/storage"
)

// TOTP parameters: those every authenticator app reads from a QR code
// (RFC 6238 §4: T0 = 0, X = 30 s; six digits, HMAC-SHA-1, RFC 4226 §5.3).
const (
	totpPeriod = 30
	totpDigits = otp.DigitsSix
	// totpSkew is how many time steps before and after now a code is
	// accepted, for clock drift and typing time (RFC 6238 §5.2 recommends
	// at most one step of network delay).
	totpSkew = 1
)

var totpOpts = totp.ValidateOpts{Period: totpPeriod, Digits: totpDigits, Algorithm: otp.AlgorithmSHA1}

// TOTP enrols and checks time-based one-time passwords (RFC 6238).
type TOTP struct {
	Store  storage.Storage
	Sealer *Sealer
	Guard  *Guard
	// Issuer names the account in authenticator apps (the otpauth URI's
	// issuer), e.g. the server's host.
	Issuer string
	Now    func() time.Time
}

// IssuerName is the issuer an authenticator app shows for a server whose
// issuer URL is issuer: its host name, without port or scheme. The key URI
// format has the label "issuer:account", so the name may hold no colon (a
// port's would split it in the wrong place).
func IssuerName(issuer string) string {
	u, err := url.Parse(issuer)
	if err != nil || u.Hostname() == "" {
		return strings.ReplaceAll(issuer, ":", "")
	}
	return strings.ReplaceAll(u.Hostname(), ":", "") // an IPv6 address loses its colons
}

// Enrolment is a secret waiting for its first code: what the person scans
// or types into an authenticator app.
type Enrolment struct {
	// Secret is the base32 key, for typing by hand.
	Secret string
	// URL is the otpauth:// URI the QR code holds.
	URL string
	// QR is the QR code as a PNG data URI.
	QR string
}

// Enrol makes a new secret for user and stores it unconfirmed, replacing
// an earlier unconfirmed one. A user with active TOTP gets
// storage.ErrAlreadyExists: it is turned off first.
func (t *TOTP) Enrol(ctx context.Context, user *storage.User) (*Enrolment, error) {
	account := user.Username
	if user.Email != "" {
		account = user.Email
	}
	key, err := totp.Generate(totp.GenerateOpts{Issuer: t.Issuer, AccountName: account, Period: totpPeriod, Digits: totpDigits,
		Algorithm: otp.AlgorithmSHA1, SecretSize: 20}) // 160 bits, RFC 4226 §4 R6
	if err != nil {
		return nil, err
	}
	img, err := key.Image(200, 200)
	if err != nil {
		return nil, err
	}
	var buf bytes.Buffer
	if err := png.Encode(&buf, img); err != nil {
		return nil, err
	}
	err = t.Store.SaveTOTP(ctx, storage.TOTP{UserID: user.ID, SecretSealed: t.Sealer.Seal(user.ID, key.Secret()), CreatedAt: t.Now()})
	if err != nil {
		return nil, err
	}
	return &Enrolment{Secret: key.Secret(), URL: key.URL(), QR: "data:image/png;base64," + base64.StdEncoding.EncodeToString(buf.Bytes())}, nil
}

// Confirm activates the user's enrolment with its first code, so that a
// secret the person never managed to set up does not lock them out.
func (t *TOTP) Confirm(ctx context.Context, userID, code string) error {
	return t.Guard.Try(ctx, userID, func() error {
		rec, err := t.Store.GetTOTP(ctx, userID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return ErrNotEnrolled
		case err != nil:
			return err
		case !rec.ConfirmedAt.IsZero():
			return storage.ErrAlreadyExists
		}
		if err := t.check(ctx, userID, rec.SecretSealed, code); err != nil {
			return err
		}
		// Only the secret whose code was checked is activated: one
		// replaced meanwhile in another tab stays pending.
		if err := t.Store.ConfirmTOTP(ctx, userID, rec.SecretSealed, t.Now()); errors.Is(err, storage.ErrNotFound) {
			return ErrNotEnrolled
		} else if err != nil {
			return err
		}
		return nil
	})
}

// Verify checks a code of the user's active TOTP, throttled, and spends
// its time step: the same code (or any code of that step) is refused
// afterwards. An unconfirmed enrolment proves nothing: ErrNotEnrolled.
func (t *TOTP) Verify(ctx context.Context, userID, code string) error {
	return t.Guard.Try(ctx, userID, func() error {
		rec, err := t.Store.GetTOTP(ctx, userID)
		switch {
		case errors.Is(err, storage.ErrNotFound):
			return ErrNotEnrolled
		case err != nil:
			return err
		case rec.ConfirmedAt.IsZero():
			return ErrNotEnrolled
		}
		return t.check(ctx, userID, rec.SecretSealed, code)
	})
}

// Active reports whether the user has confirmed TOTP.
func (t *TOTP) Active(ctx context.Context, userID string) (bool, error) {
	rec, err := t.Store.GetTOTP(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return false, nil
	}
	if err != nil {
		return false, err
	}
	return !rec.ConfirmedAt.IsZero(), nil
}

// Disable turns the user's TOTP off (or drops an unconfirmed enrolment).
func (t *TOTP) Disable(ctx context.Context, userID string) error {
	err := t.Store.DeleteTOTP(ctx, userID)
	if errors.Is(err, storage.ErrNotFound) {
		return ErrNotEnrolled
	}
	return err
}

// check compares code with the codes of the steps around now in constant
// time, then spends the matching step in the store (UseOnce), so that of
// two requests with one code, however concurrent, one is accepted.
func (t *TOTP) check(ctx context.Context, userID, sealed, code string) error {
	code = strings.Join(strings.Fields(code), "") // "123 456" as some apps show it
	if len(code) != totpDigits.Length() {
		return ErrInvalidCode
	}
	secret, err := t.Sealer.Open(userID, sealed)
	if err != nil {
		return err
	}
	now := t.Now().Unix() / totpPeriod
	matched := int64(-1)
	for step := now - totpSkew; step <= now+totpSkew; step++ {
		want, err := totp.GenerateCodeCustom(secret, time.Unix(step*totpPeriod, 0), totpOpts)
		if err != nil {
			return err
		}
		if subtle.ConstantTimeCompare([]byte(want), []byte(code)) == 1 {
			matched = step
		}
	}
	if matched < 0 {
		return ErrInvalidCode
	}
	// The step stays spent until no skew can accept it any more.
	until := time.Unix((matched+totpSkew+1)*totpPeriod, 0)
	err = t.Store.UseOnce(ctx, "totp:"+userID+":"+strconv.FormatInt(matched, 10), until)
	if errors.Is(err, storage.ErrAlreadyUsed) {
		return fmt.Errorf("%w: time step %d", ErrReplayed, matched)
	}
	return err
}
