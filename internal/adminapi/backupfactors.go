package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"time"

	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/storage"
)

// BackupFactors are a user's second factors as a backup keeps them: the
// TOTP secret sealed as stored (under the store's factor-seal key, which
// the backup does not hold), the hashes of the unused recovery codes, and
// the passkeys' credential records (public keys). A backup restored into
// a store with another factor-seal key cannot open the TOTP secrets: the
// import leaves them out (Imported.TOTPSkipped), and those users sign in
// with a recovery code or a passkey and set up their app again.
type BackupFactors struct {
	TOTP          *BackupTOTP     `json:"totp,omitempty"`
	RecoveryCodes []string        `json:"recovery_code_hashes,omitempty"`
	Passkeys      []BackupPasskey `json:"passkeys,omitempty"`
}

// BackupTOTP is a confirmed TOTP enrolment, its secret sealed.
type BackupTOTP struct {
	SecretSealed string    `json:"secret_sealed"`
	CreatedAt    time.Time `json:"created_at"`
	ConfirmedAt  time.Time `json:"confirmed_at"`
}

// BackupPasskey is a passkey with its WebAuthn credential record.
type BackupPasskey struct {
	ID         string          `json:"id"`
	Name       string          `json:"name"`
	Credential json.RawMessage `json:"credential"`
	SignCount  uint32          `json:"sign_count"`
	CreatedAt  time.Time       `json:"created_at"`
	LastUsedAt time.Time       `json:"last_used_at,omitzero"`
}

// backupFactors reads the factors of a user for a backup; nil when none.
func (a *API) backupFactors(ctx context.Context, userID string) (*BackupFactors, error) {
	var f BackupFactors
	t, err := a.Store.GetTOTP(ctx, userID)
	switch {
	case err == nil && !t.ConfirmedAt.IsZero():
		f.TOTP = &BackupTOTP{t.SecretSealed, t.CreatedAt, t.ConfirmedAt}
	case err != nil && !errors.Is(err, storage.ErrNotFound):
		return nil, err
	}
	if f.RecoveryCodes, err = a.Store.ListRecoveryCodes(ctx, userID); err != nil {
		return nil, err
	}
	pks, err := a.Store.ListPasskeys(ctx, userID)
	if err != nil {
		return nil, err
	}
	for _, p := range pks {
		f.Passkeys = append(f.Passkeys, BackupPasskey{p.ID, p.Name, json.RawMessage(p.Credential), p.SignCount, p.CreatedAt, p.LastUsedAt})
	}
	if f.TOTP == nil && len(f.RecoveryCodes) == 0 && len(f.Passkeys) == 0 {
		return nil, nil
	}
	return &f, nil
}

// check checks the factors of a backup's user.
func (f *BackupFactors) check(username string) error {
	if f == nil {
		return nil
	}
	if f.TOTP != nil && (f.TOTP.SecretSealed == "" || f.TOTP.ConfirmedAt.IsZero()) {
		return badRequest("user " + username + ": a TOTP needs secret_sealed and confirmed_at")
	}
	for _, h := range f.RecoveryCodes {
		if len(h) != 64 {
			return badRequest("user " + username + ": recovery_code_hashes are SHA-256 hashes, 64 hex digits")
		}
	}
	for _, p := range f.Passkeys {
		if p.ID == "" || !storage.ValidText(p.ID) || !storage.ValidText(p.Name) || !json.Valid(p.Credential) {
			return badRequest("user " + username + ": a passkey needs an id and its credential record (JSON)")
		}
	}
	return nil
}

// importFactors stores the factors of a user the import added. A TOTP
// secret this store's key does not open is left out, and so is a passkey
// whose credential id another user registered.
func (a *API) importFactors(ctx context.Context, sealer *factors.Sealer, userID string, f *BackupFactors, out *Imported) error {
	if f == nil {
		return nil
	}
	if err := a.importTOTP(ctx, sealer, userID, f.TOTP, out); err != nil {
		return err
	}
	if len(f.RecoveryCodes) > 0 {
		if err := a.Store.ReplaceRecoveryCodes(ctx, userID, f.RecoveryCodes, a.Now()); err != nil {
			return err
		}
	}
	for _, p := range f.Passkeys {
		err := a.Store.CreatePasskey(ctx, storage.Passkey{ID: p.ID, UserID: userID, Name: p.Name, Credential: string(p.Credential),
			SignCount: p.SignCount, CreatedAt: p.CreatedAt, LastUsedAt: p.LastUsedAt})
		if errors.Is(err, storage.ErrAlreadyExists) {
			out.PasskeysSkipped++
		} else if err != nil {
			return err
		}
	}
	return nil
}

// importTOTP stores a TOTP that sealer (this store's) opens.
func (a *API) importTOTP(ctx context.Context, sealer *factors.Sealer, userID string, t *BackupTOTP, out *Imported) error {
	if t == nil {
		return nil
	}
	if _, err := sealer.Open(userID, t.SecretSealed); err != nil {
		out.TOTPSkipped++
		return nil
	}
	if err := a.Store.SaveTOTP(ctx, storage.TOTP{UserID: userID, SecretSealed: t.SecretSealed, CreatedAt: t.CreatedAt}); err != nil {
		return err
	}
	return a.Store.ConfirmTOTP(ctx, userID, t.SecretSealed, t.ConfirmedAt)
}
