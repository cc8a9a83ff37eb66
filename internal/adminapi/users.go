package adminapi

import (
	"context"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
)

// Notifier tells a person of a security event on their account (the
// security notices of package security).
type Notifier interface {
	SecurityEvent(ctx context.Context, userID, event string)
}

// Verifier mails a user a new link to confirm their address, within the
// budget of mails to one address and account; false when the budget is
// spent (package account).
type Verifier interface {
	ResendVerification(ctx context.Context, u storage.User) (bool, error)
}

// OperatorHeader names, in a request, the operator acting, as the caller
// states it (the admin token is one for all operators); audit events of
// the operator's actions carry it beside the address of the request.
const OperatorHeader = "Bawwab-Operator"

// operatorName is the operator acting on r, as the caller states it:
// clipped, or "unnamed".
func operatorName(r *http.Request) string {
	name := r.Header.Get(OperatorHeader)
	if name == "" || !storage.ValidText(name) {
		name = "unnamed"
	}
	return oautherr.Clip(name)
}

// operator is the audit detail naming who acted on r.
func operator(r *http.Request) string {
	return "by admin API; operator=" + operatorName(r)
}

// changed audits an operator's change e, the operator's name before its
// detail.
func (a *API) changed(r *http.Request, e audit.Event) {
	d := operator(r)
	if e.Detail != "" {
		d += "; " + e.Detail
	}
	e.Detail = d
	a.Audit.Record(r.Context(), e)
}

// record audits an admin action on a user.
func (a *API) record(r *http.Request, typ, userID, detail string) {
	d := operator(r)
	if detail != "" {
		d += "; " + detail
	}
	a.Audit.Record(r.Context(), audit.Event{Type: typ, UserID: userID, Detail: d})
}

// Factors is what second factors a user has: never a secret.
type Factors struct {
	TOTP          *TOTPFactor `json:"totp,omitempty"`
	RecoveryCodes int         `json:"recovery_codes_left"`
	Passkeys      []Passkey   `json:"passkeys"`
}

// TOTPFactor is a user's authenticator app.
type TOTPFactor struct {
	CreatedAt time.Time `json:"created_at"`
	// ConfirmedAt is when a first code proved it; absent for a setup not
	// finished, which proves nothing.
	ConfirmedAt time.Time `json:"confirmed_at,omitzero"`
}

// Passkey is a user's passkey as the API shows it.
type Passkey struct {
	ID         string    `json:"id"`
	Name       string    `json:"name"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

func (a *API) userFactors(ctx context.Context, userID string) (Factors, error) {
	f := Factors{Passkeys: []Passkey{}}
	t, err := a.Store.GetTOTP(ctx, userID)
	switch {
	case err == nil:
		f.TOTP = &TOTPFactor{CreatedAt: t.CreatedAt, ConfirmedAt: t.ConfirmedAt}
	case !errors.Is(err, storage.ErrNotFound):
		return f, err
	}
	if f.RecoveryCodes, err = a.Store.CountRecoveryCodes(ctx, userID); err != nil {
		return f, err
	}
	pks, err := a.Store.ListPasskeys(ctx, userID)
	for _, p := range pks {
		f.Passkeys = append(f.Passkeys, Passkey{p.ID, p.Name, p.CreatedAt, p.LastUsedAt})
	}
	return f, err
}

func (a *API) listFactors(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	f, err := a.userFactors(r.Context(), u.ID)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, f)
}

// resetFactors removes every second factor of the user (an operator
// helping someone who lost them): the next sign-in asks the password
// alone. The user's sessions end, since some were proved with those
// factors, and the user is mailed a notice.
func (a *API) resetFactors(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.Store.GetUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	if err := a.Store.DeleteTOTP(ctx, u.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return err
	}
	if err := a.Store.DeleteRecoveryCodes(ctx, u.ID); err != nil {
		return err
	}
	pks, err := a.Store.ListPasskeys(ctx, u.ID)
	if err != nil {
		return err
	}
	for _, p := range pks {
		if err := a.Store.DeletePasskey(ctx, u.ID, p.ID); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return err
		}
	}
	return noContent(w, a.factorsReset(r, u.ID, audit.MFAReset, "every second factor"))
}

// removePasskey removes one passkey of the user, as resetFactors does
// every factor.
func (a *API) removePasskey(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.Store.GetUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	pk, err := a.Store.GetPasskey(ctx, r.PathValue("passkey_id"))
	if errors.Is(err, storage.ErrNotFound) || err == nil && pk.UserID != u.ID {
		return &apiError{http.StatusNotFound, "not_found", "the user has no passkey with this id; see GET /admin/users/{id}/factors"}
	} else if err != nil {
		return err
	}
	if err := a.Store.DeletePasskey(ctx, u.ID, pk.ID); err != nil {
		return err
	}
	return noContent(w, a.factorsReset(r, u.ID, audit.PasskeyRemoved, "passkey="+oautherr.Clip(pk.Name)))
}

// factorsReset ends the sessions of a user whose factors an operator
// removed, audits it and mails the user a notice.
func (a *API) factorsReset(r *http.Request, userID, event, what string) error {
	if err := a.signOut(r.Context(), userID); err != nil {
		return err
	}
	a.record(r, event, userID, "removed "+what)
	if a.Notify != nil {
		a.Notify.SecurityEvent(r.Context(), userID, event)
	}
	return nil
}

// signOut ends every session of the user and tells its clients.
func (a *API) signOut(ctx context.Context, userID string) error {
	if _, err := a.Store.DeleteUserSessions(ctx, userID); err != nil {
		return err
	}
	a.Logouts.LoggedOut(ctx, userID)
	return nil
}

// Reason is the optional body of POST /admin/users/{id}/disable.
type Reason struct {
	Reason string `json:"reason"`
}

// disableUser stops the user signing in: the flag is set first, then the
// sessions end and every grant is revoked, so that a sign-in or token
// request racing it either sees the flag or is ended. Consents stay:
// enabled again, the user signs in and gets new tokens without consenting
// anew, but no token of before comes back.
func (a *API) disableUser(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	var in Reason
	if r.ContentLength != 0 {
		if err := readJSON(r, &in); err != nil {
			return err
		}
	}
	if !storage.ValidText(in.Reason) {
		return badRequest("reason must be text")
	}
	id := r.PathValue("id")
	if err := a.loseAdmin(ctx, id, storage.Disable); err != nil {
		return err
	}
	if err := a.signOut(ctx, id); err != nil {
		return err
	}
	if _, err := a.Store.RevokeUserGrants(ctx, id, a.Now()); err != nil {
		return err
	}
	detail := ""
	if in.Reason != "" {
		detail = "reason=" + oautherr.Clip(in.Reason)
	}
	a.record(r, audit.UserDisabled, id, detail)
	return a.writeUser(w, r, id)
}

// enableUser lets a disabled user sign in again, and nothing more: a
// grant still live was made by a request that raced the disabling (no
// grant is made for a disabled user), so every grant is revoked again
// before the flag is cleared.
func (a *API) enableUser(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if _, err := a.Store.GetUser(r.Context(), id); err != nil {
		return err
	}
	if _, err := a.Store.RevokeUserGrants(r.Context(), id, a.Now()); err != nil {
		return err
	}
	if err := a.Store.SetUserDisabled(r.Context(), id, false); err != nil {
		return err
	}
	a.record(r, audit.UserEnabled, id, "")
	return a.writeUser(w, r, id)
}

// grantAdmin gives the user the admin role: the admin console lets them in.
func (a *API) grantAdmin(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	if err := a.Store.SetUserAdmin(r.Context(), id, true); err != nil {
		return err
	}
	a.record(r, audit.AdminGranted, id, "")
	return a.writeUser(w, r, id)
}

// revokeAdmin takes the admin role, unless the user is the last enabled
// admin (409), and signs the user out everywhere: a console session made
// while admin must not come back to life if the role is given again. The
// sessions of the console are stored as the others are, so all of them end.
func (a *API) revokeAdmin(w http.ResponseWriter, r *http.Request) error {
	id := r.PathValue("id")
	u, err := a.Store.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	if !u.Admin {
		return writeJSON(w, http.StatusOK, userView(*u)) // nothing to take, nobody to sign out
	}
	if err := a.loseAdmin(r.Context(), id, storage.Demote); err != nil {
		return err
	}
	if err := a.signOut(r.Context(), id); err != nil {
		return err
	}
	a.record(r, audit.AdminRevoked, id, "")
	return a.writeUser(w, r, id)
}

// loseAdmin makes a change that may take an enabled admin away: refused
// (storage.ErrLastAdmin) if it would leave none, unless NoAdminOK.
func (a *API) loseAdmin(ctx context.Context, id string, change storage.AdminLoss) error {
	if !a.NoAdminOK {
		return a.Store.KeepingAdmin(ctx, id, change, a.Now())
	}
	switch change {
	case storage.Demote:
		return a.Store.SetUserAdmin(ctx, id, false)
	case storage.Disable:
		return a.Store.SetUserDisabled(ctx, id, true)
	default:
		return a.Store.DeleteUser(ctx, id, a.Now())
	}
}

func (a *API) writeUser(w http.ResponseWriter, r *http.Request, id string) error {
	u, err := a.Store.GetUser(r.Context(), id)
	if err != nil {
		return err
	}
	return writeJSON(w, http.StatusOK, userView(*u))
}

// resendVerification mails an unconfirmed address a new link, within the
// budget of mails to that address and account that sign-up and password
// reset share: the operator cannot be made to flood an inbox.
func (a *API) resendVerification(w http.ResponseWriter, r *http.Request) error {
	u, err := a.Store.GetUser(r.Context(), r.PathValue("id"))
	if err != nil {
		return err
	}
	switch {
	case u.Email == "":
		return &apiError{http.StatusConflict, "conflict", "the user has no email address to confirm"}
	case u.EmailVerified:
		return &apiError{http.StatusConflict, "conflict", "the user's email address is confirmed already"}
	case a.Verify == nil:
		return &apiError{http.StatusServiceUnavailable, oautherr.TemporarilyUnavailable, "this admin API sends no mail; ask the running server (--server)"}
	}
	sent, err := a.Verify.ResendVerification(r.Context(), *u)
	if err != nil {
		return err
	}
	if !sent {
		w.Header().Set("Retry-After", strconv.Itoa(int(time.Hour/time.Second)))
		return &apiError{http.StatusTooManyRequests, "too_many_requests", "enough mail went to this address or account for now; try again later"}
	}
	a.record(r, audit.VerificationSent, u.ID, "")
	w.WriteHeader(http.StatusAccepted)
	return nil
}

// unlock lifts the throttle of failed sign-ins at the user's account:
// passwords and second-factor codes. The throttle of the networks that
// guessed stays.
func (a *API) unlock(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.Store.GetUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	for _, key := range []string{signin.UserKey(u.Username), factors.GuardKey(u.ID)} {
		if err := ratelimit.Reset(ctx, a.Store, key); err != nil {
			return err
		}
	}
	a.record(r, audit.UserUnlocked, u.ID, "")
	return noContent(w, nil)
}

// signOutUser ends every session of the user, on every device, and tells
// the clients of those sessions (back-channel logout). Grants stay: the
// clients' tokens live on, as after the user's own "sign out everywhere".
func (a *API) signOutUser(w http.ResponseWriter, r *http.Request) error {
	ctx := r.Context()
	u, err := a.Store.GetUser(ctx, r.PathValue("id"))
	if err != nil {
		return err
	}
	n, err := a.Store.DeleteUserSessions(ctx, u.ID)
	if err != nil {
		return err
	}
	a.Logouts.LoggedOut(ctx, u.ID)
	a.record(r, audit.UserSignedOut, u.ID, strconv.FormatInt(n, 10)+" sessions")
	return noContent(w, nil)
}
