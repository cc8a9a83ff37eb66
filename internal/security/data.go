package security

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// Export is the person's copy of their data ("Download my data"): what is
// kept about them, never a secret. Passwords, TOTP secrets, recovery codes
// and every token are kept only hashed or sealed, and none of that is
// written here, nor a passkey's public key: a passkey is named by its
// credential id, a session by its times.
type Export struct {
	ExportedAt time.Time       `json:"exported_at"`
	Account    exportAccount   `json:"account"`
	Factors    exportFactors   `json:"sign_in_methods"`
	Apps       []exportApp     `json:"connected_apps"`
	Sessions   []exportSession `json:"sessions"`
	Events     []exportEvent   `json:"security_events"`
}

type exportAccount struct {
	ID            string                `json:"id"`
	Username      string                `json:"username"`
	Name          string                `json:"name,omitempty"`
	Email         string                `json:"email,omitempty"`
	EmailVerified bool                  `json:"email_verified"`
	Picture       string                `json:"picture,omitempty"`
	Profile       storage.ProfileClaims `json:"profile"`
	CreatedAt     time.Time             `json:"created_at"`
	UpdatedAt     *time.Time            `json:"profile_updated_at,omitempty"`
}

type exportFactors struct {
	Password          bool            `json:"password"`
	TOTP              *exportTOTP     `json:"authenticator_app,omitempty"`
	RecoveryCodesLeft int             `json:"recovery_codes_left"`
	Passkeys          []exportPasskey `json:"passkeys"`
}

type exportTOTP struct {
	CreatedAt   time.Time  `json:"created_at"`
	ConfirmedAt *time.Time `json:"confirmed_at,omitempty"`
}

type exportPasskey struct {
	ID         string     `json:"credential_id"`
	Name       string     `json:"name"`
	CreatedAt  time.Time  `json:"created_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

type exportApp struct {
	ClientID   string     `json:"client_id"`
	Name       string     `json:"name"`
	Scopes     []string   `json:"scopes"`
	GrantedAt  time.Time  `json:"granted_at"`
	UpdatedAt  time.Time  `json:"updated_at"`
	LastUsedAt *time.Time `json:"last_used_at,omitempty"`
}

type exportSession struct {
	CreatedAt time.Time `json:"created_at"`
	SignedIn  time.Time `json:"signed_in_at"`
	ExpiresAt time.Time `json:"expires_at"`
	Methods   []string  `json:"methods"`
	Current   bool      `json:"current"`
}

type exportEvent struct {
	Time     time.Time `json:"time"`
	Type     string    `json:"type"`
	ClientID string    `json:"client_id,omitempty"`
	IP       string    `json:"ip,omitempty"`
	Detail   string    `json:"detail,omitempty"`
}

// exportEvents bounds the security events in an export.
const exportEvents = 500

// when is t, or nil for the zero time (never).
func when(t time.Time) *time.Time {
	if t.IsZero() {
		return nil
	}
	return &t
}

// download answers "Download my data": a POST with the page's CSRF token
// (no cross-site page can make a browser fetch it), as an attachment
// nobody caches.
func (h *Handler) download(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	ctx := r.Context()
	x, err := h.export(ctx, sess, u)
	if err != nil {
		h.fail(w, r, oautherr.Wrap(err))
		return
	}
	h.Audit.Record(ctx, audit.Event{Type: audit.DataExported, UserID: u.ID})
	w.Header().Set("Content-Type", "application/json; charset=utf-8")
	w.Header().Set("Content-Disposition", `attachment; filename="account-data.json"`)
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("X-Content-Type-Options", "nosniff")
	enc := json.NewEncoder(w)
	enc.SetIndent("", "  ")
	_ = enc.Encode(x)
}

// export gathers what is kept about u.
func (h *Handler) export(ctx context.Context, sess *storage.Session, u *storage.User) (*Export, error) {
	x := &Export{ExportedAt: h.Now().UTC(), Account: exportAccount{ID: u.ID, Username: u.Username, Name: u.Name, Email: u.Email,
		EmailVerified: u.EmailVerified, Picture: u.Picture, Profile: u.Profile.Claims(), CreatedAt: u.CreatedAt, UpdatedAt: when(u.Profile.UpdatedAt)}}
	var err error
	if x.Factors, err = h.exportFactors(ctx, u); err != nil {
		return nil, err
	}
	consents, err := h.Store.ListConsents(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	x.Apps = []exportApp{}
	for _, c := range consents {
		x.Apps = append(x.Apps, exportApp{ClientID: c.ClientID, Name: c.ClientName, Scopes: c.Scopes, GrantedAt: c.GrantedAt, UpdatedAt: c.UpdatedAt,
			LastUsedAt: when(c.LastUsedAt)})
	}
	if x.Sessions, err = h.exportSessions(ctx, sess, u); err != nil {
		return nil, err
	}
	events, err := h.Store.ListAuditEvents(ctx, storage.AuditFilter{UserID: u.ID, Limit: exportEvents})
	if err != nil {
		return nil, err
	}
	x.Events = []exportEvent{}
	for _, e := range events {
		x.Events = append(x.Events, exportEvent{Time: e.Time, Type: e.Type, ClientID: e.ClientID, IP: e.IP, Detail: e.Detail})
	}
	return x, nil
}

// exportFactors lists u's sign-in methods without their secrets.
func (h *Handler) exportFactors(ctx context.Context, u *storage.User) (exportFactors, error) {
	f := exportFactors{Password: u.PasswordHash != "", Passkeys: []exportPasskey{}}
	t, err := h.Store.GetTOTP(ctx, u.ID)
	switch {
	case err == nil:
		f.TOTP = &exportTOTP{CreatedAt: t.CreatedAt, ConfirmedAt: when(t.ConfirmedAt)}
	case !errors.Is(err, storage.ErrNotFound):
		return f, err
	}
	if f.RecoveryCodesLeft, err = h.Store.CountRecoveryCodes(ctx, u.ID); err != nil {
		return f, err
	}
	keys, err := h.Store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return f, err
	}
	for _, k := range keys {
		f.Passkeys = append(f.Passkeys, exportPasskey{ID: k.ID, Name: k.Name, CreatedAt: k.CreatedAt, LastUsedAt: when(k.LastUsedAt)})
	}
	return f, nil
}

// exportSessions lists u's live sessions by their times.
func (h *Handler) exportSessions(ctx context.Context, sess *storage.Session, u *storage.User) ([]exportSession, error) {
	sessions, err := h.Store.ListUserSessions(ctx, u.ID)
	if err != nil {
		return nil, err
	}
	out, now := []exportSession{}, h.Now()
	for _, s := range sessions {
		if !now.Before(s.ExpiresAt) {
			continue
		}
		methods := s.AMR
		if len(methods) == 0 {
			methods = []string{"pwd"}
		}
		out = append(out, exportSession{CreatedAt: s.CreatedAt, SignedIn: s.AuthTime, ExpiresAt: s.ExpiresAt, Methods: methods, Current: s.IDHash == sess.IDHash})
	}
	return out, nil
}
