package security

import (
	"context"
	"errors"
	"net/http"
	"strconv"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/factors"
	"github.com/bawwab/bawwab/internal/session"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// TOTPStep is the second factor of a code from an authenticator app
// (amr "otp", RFC 8176 §2), offered to those who turned it on.
type TOTPStep struct {
	TOTP     *factors.TOTP
	Recovery *factors.Recovery
	UI       *ui.UI
	Sessions *session.Manager
	Audit    *audit.Log
}

// RecoveryStep is the second factor of a recovery code (amr "otp"),
// offered to those who have a second factor and unused codes.
type RecoveryStep struct {
	TOTPStep
	// Store lists passkeys, a second factor the codes also stand in for.
	Store storage.Storage
}

var (
	_ signin.Step = (*TOTPStep)(nil)
	_ signin.Step = (*RecoveryStep)(nil)
)

// Name returns "totp".
func (*TOTPStep) Name() string { return "totp" }

// Kind returns SecondFactor.
func (*TOTPStep) Kind() signin.Kind { return signin.SecondFactor }

// Proves returns otp.
func (*TOTPStep) Proves() []string { return []string{signin.AMROTP} }

// Offered reports whether the person turned TOTP on.
func (s *TOTPStep) Offered(ctx context.Context, a *signin.Attempt) (bool, error) {
	if a.User == nil {
		return false, nil
	}
	return s.TOTP.Active(ctx, a.User.ID)
}

// OfferedFor reports whether e has a confirmed TOTP.
func (s *TOTPStep) OfferedFor(_ context.Context, a *signin.Attempt, e storage.Enrolment) (bool, error) {
	return a.User != nil && e.TOTP, nil
}

var _ signin.EnrolledStep = (*TOTPStep)(nil)

// factorData is what the second-factor page shows.
type factorData struct {
	Req, Error string
	// TOTP and Recovery say which forms the page offers.
	TOTP, Recovery bool
	// PasskeyOptions are the request options (JSON) of a passkey
	// ceremony, when the page offers one.
	PasskeyOptions string
}

// show renders the second-factor page: the code form, and the recovery
// code form when the person has codes.
func (s *TOTPStep) show(w http.ResponseWriter, r *http.Request, a *signin.Attempt, recovery bool) {
	s.render(w, r, a, factorData{Recovery: recovery})
}

func (s *TOTPStep) render(w http.ResponseWriter, r *http.Request, a *signin.Attempt, d factorData) {
	recovery := d.Recovery
	if a.Request != nil {
		d.Req = a.Request.ID
	}
	if a.User != nil {
		d.TOTP, _ = s.TOTP.Active(r.Context(), a.User.ID)
		if !recovery {
			n, _ := s.Recovery.Remaining(r.Context(), a.User.ID)
			d.Recovery = n > 0
		}
	}
	if a.Message != "" {
		d.Error = ui.T(a.Lang, a.Message, a.MessageArgs...)
	}
	status := a.Status
	if status == 0 {
		status = http.StatusOK
	}
	csrf := a.CSRF
	if csrf == "" {
		csrf = s.Sessions.CSRFToken(w, r)
	}
	s.UI.Render(w, r, status, "factor", "factor.title", ui.Page{CSRF: csrf, Data: d})
}

// Show renders the code form.
func (s *TOTPStep) Show(w http.ResponseWriter, r *http.Request, a *signin.Attempt) {
	s.show(w, r, a, false)
}

// Verify checks the posted code (throttled, each time step once).
func (s *TOTPStep) Verify(ctx context.Context, r *http.Request, a *signin.Attempt) (signin.Outcome, error) {
	return outcome(ctx, s.Audit, a.User.ID, "totp", s.TOTP.Verify(ctx, a.User.ID, r.PostForm.Get("code")))
}

// outcome maps a factor check to the step's outcome, recording attacks.
func outcome(ctx context.Context, log *audit.Log, userID, step string, err error) (signin.Outcome, error) {
	var te *factors.ThrottledError
	switch {
	case err == nil:
		return signin.Outcome{Result: signin.Proved}, nil
	case errors.As(err, &te):
		log.Record(ctx, audit.Event{Type: audit.FactorThrottled, UserID: userID, Detail: "step=" + step})
		return signin.Outcome{Result: signin.Throttled, Message: "security.throttled", Retry: te.Wait}, nil
	case errors.Is(err, factors.ErrReplayed):
		log.Record(ctx, audit.Event{Type: audit.FactorReplay, UserID: userID, Detail: "step=" + step})
		return signin.Outcome{Result: signin.Failed, Message: "security.code.used"}, nil
	case errors.Is(err, factors.ErrInvalidCode), errors.Is(err, factors.ErrNotEnrolled):
		log.Record(ctx, audit.Event{Type: audit.FactorFailed, UserID: userID, Detail: "step=" + step})
		return signin.Outcome{Result: signin.Failed, Message: "security.code.wrong"}, nil
	}
	return signin.Outcome{}, err
}

// Name returns "recovery".
func (*RecoveryStep) Name() string { return "recovery" }

// Fallback reports true: recovery codes are offered only beside an
// authenticator app or a passkey, so they never make a person enrolled
// by themselves (signin.Fallback).
func (*RecoveryStep) Fallback() bool { return true }

var _ signin.Fallback = (*RecoveryStep)(nil)

// Offered reports whether the person has a second factor and unused
// recovery codes.
func (s *RecoveryStep) Offered(ctx context.Context, a *signin.Attempt) (bool, error) {
	if a.User == nil {
		return false, nil
	}
	n, err := s.Recovery.Remaining(ctx, a.User.ID)
	if err != nil || n == 0 {
		return false, err
	}
	if on, err := s.TOTP.Active(ctx, a.User.ID); err != nil || on {
		return on, err
	}
	keys, err := s.Store.ListPasskeys(ctx, a.User.ID)
	return len(keys) > 0, err
}

// OfferedFor reports whether e has a second factor and the person
// unused recovery codes.
func (s *RecoveryStep) OfferedFor(ctx context.Context, a *signin.Attempt, e storage.Enrolment) (bool, error) {
	if a.User == nil || !e.TOTP && !e.Passkeys {
		return false, nil
	}
	n, err := s.Recovery.Remaining(ctx, a.User.ID)
	return n > 0, err
}

var _ signin.EnrolledStep = (*RecoveryStep)(nil)

// Show renders the recovery code form.
func (s *RecoveryStep) Show(w http.ResponseWriter, r *http.Request, a *signin.Attempt) {
	s.show(w, r, a, true)
}

// Verify spends the posted recovery code (throttled with TOTP codes).
func (s *RecoveryStep) Verify(ctx context.Context, r *http.Request, a *signin.Attempt) (signin.Outcome, error) {
	out, err := outcome(ctx, s.Audit, a.User.ID, "recovery", s.Recovery.Use(ctx, a.User.ID, r.PostForm.Get("code")))
	if err == nil && out.Result == signin.Proved {
		n, _ := s.Recovery.Remaining(ctx, a.User.ID)
		s.Audit.Record(ctx, audit.Event{Type: audit.RecoveryCodeUsed, UserID: a.User.ID, Detail: "left=" + strconv.Itoa(n)})
	}
	return out, err
}

// PasskeyStep is the second factor of a passkey (amr "hwk": possession of
// a key its authenticator guards), offered to those who added one. Its
// page carries the ceremony's options; the page's script answers them and
// posts the response with the form.
type PasskeyStep struct {
	TOTPStep
	Passkeys *factors.Passkeys
	Store    storage.Storage
	// Issuer is the server's URL (a Secure ceremony cookie under https).
	Issuer string
}

var _ signin.Step = (*PasskeyStep)(nil)

// Name returns "passkey".
func (*PasskeyStep) Name() string { return "passkey" }

// Proves returns hwk.
func (*PasskeyStep) Proves() []string { return []string{signin.AMRHardware} }

// Offered reports whether the person has a passkey.
func (s *PasskeyStep) Offered(ctx context.Context, a *signin.Attempt) (bool, error) {
	if a.User == nil || s.Passkeys == nil {
		return false, nil
	}
	keys, err := s.Store.ListPasskeys(ctx, a.User.ID)
	return len(keys) > 0, err
}

// OfferedFor reports whether e has a passkey, and passkeys are on.
func (s *PasskeyStep) OfferedFor(_ context.Context, a *signin.Attempt, e storage.Enrolment) (bool, error) {
	return a.User != nil && s.Passkeys != nil && e.Passkeys, nil
}

var _ signin.EnrolledStep = (*PasskeyStep)(nil)

// Show renders the second-factor page with a fresh passkey ceremony
// limited to the person's passkeys.
func (s *PasskeyStep) Show(w http.ResponseWriter, r *http.Request, a *signin.Attempt) {
	d := factorData{}
	if a.User != nil {
		options, state, err := s.Passkeys.BeginLogin(r.Context(), a.User)
		if err == nil {
			setCeremony(w, r, s.Issuer, state)
			d.PasskeyOptions = string(options)
		}
	}
	s.render(w, r, a, d)
}

// Verify checks the posted passkey response against the ceremony the page
// began: the person's own passkey, user verified, its counter grown.
func (s *PasskeyStep) Verify(ctx context.Context, r *http.Request, a *signin.Attempt) (signin.Outcome, error) {
	_, _, err := s.Passkeys.FinishLogin(ctx, a.User, ceremonyOf(r), r.PostForm.Get("credential"))
	switch {
	case err == nil:
		return signin.Outcome{Result: signin.Proved}, nil
	case errors.Is(err, factors.ErrCloned):
		s.Audit.Record(ctx, audit.Event{Type: audit.PasskeyCounterBack, UserID: a.User.ID, Detail: "step=passkey"})
	case errors.Is(err, factors.ErrReplayed):
		s.Audit.Record(ctx, audit.Event{Type: audit.FactorReplay, UserID: a.User.ID, Detail: "step=passkey"})
	case errors.Is(err, factors.ErrCeremony), errors.Is(err, factors.ErrNotEnrolled):
		s.Audit.Record(ctx, audit.Event{Type: audit.FactorFailed, UserID: a.User.ID, Detail: "step=passkey"})
	default:
		return signin.Outcome{}, err
	}
	return signin.Outcome{Result: signin.Failed, Message: "passkey.failed"}, nil
}

// ceremonyOf returns the ceremony state r carries (the page that posted
// it began a new ceremony, or none).
func ceremonyOf(r *http.Request) string {
	c, err := r.Cookie(ceremonyCookie)
	if err != nil || len(c.Value) > 8<<10 {
		return ""
	}
	return c.Value
}
