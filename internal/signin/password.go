package signin

import (
	"context"
	"errors"
	"fmt"
	"net/http"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/clientip"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/password"
	"github.com/bawwab/bawwab/internal/ratelimit"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// Password is the first factor of a username and password (amr "pwd",
// RFC 8176 §2), throttled per account and per client network.
type Password struct {
	Store  storage.Storage
	UI     *ui.UI
	Audit  *audit.Log
	Params password.Params
	// UserFailures and IPFailures throttle failed logins per account and
	// per client network (a /64 for IPv6, clientip.Network). A success
	// resets the account's counter only: one good password must not
	// clear an address that guesses many accounts.
	UserFailures, IPFailures *ratelimit.Backoff
}

var _ Step = (*Password)(nil)

// Name returns "password".
func (*Password) Name() string { return "password" }

// Kind returns FirstFactor.
func (*Password) Kind() Kind { return FirstFactor }

// Proves returns pwd.
func (*Password) Proves() []string { return []string{AMRPassword} }

// Offered is always true: everyone has a password.
func (*Password) Offered(context.Context, *Attempt) (bool, error) { return true, nil }

type loginData struct {
	Req, ClientName, Username, Error string
	// Elsewhere are the upstream identity providers offered as buttons.
	Elsewhere []Option
}

// Show renders the login form; after a failure the username stays filled
// in.
func (p *Password) Show(w http.ResponseWriter, r *http.Request, a *Attempt) {
	data := loginData{Username: r.PostForm.Get("username"), Elsewhere: a.Elsewhere}
	if a.Request != nil {
		data.Req = a.Request.ID
	}
	if a.Client != nil {
		data.ClientName = a.Client.Name
	}
	if a.Message != "" {
		data.Error = ui.T(a.Lang, a.Message, a.MessageArgs...)
	}
	p.UI.Render(w, r, cmpStatus(a.Status), "login", "login.title", ui.Page{CSRF: a.CSRF, Data: data})
}

// reserve counts a login attempt for the account and the client's
// network before the password is checked (package ratelimit): of guesses
// sent at once, only as many as the budgets allow are checked. The
// network is reserved first, so that a throttled account does not spend
// the budget of the address guessing it. When either must wait, it returns
// nil attempts and the wait.
func (p *Password) reserve(ctx context.Context, userKey, ipKey string) (user, ip *ratelimit.Attempt, wait Outcome, err error) {
	ip, d, err := p.IPFailures.Reserve(ctx, ipKey)
	if err != nil || d > 0 {
		return nil, nil, throttled(d), err
	}
	user, d, err = p.UserFailures.Reserve(ctx, userKey)
	if err != nil || d > 0 {
		return nil, nil, throttled(d), errors.Join(err, ip.Release(ctx))
	}
	return user, ip, Outcome{}, nil
}

// throttled is the outcome of a wait of d, or the zero Outcome for none.
func throttled(d time.Duration) Outcome {
	if d <= 0 {
		return Outcome{}
	}
	return Outcome{Result: Throttled, Message: "login.throttled", Retry: d}
}

// Verify checks the posted username and password. The attempt is reserved
// before the password is verified, so that guesses sent at once cannot
// outrun the throttle; an unknown username costs as much as a known one.
func (p *Password) Verify(ctx context.Context, r *http.Request, a *Attempt) (Outcome, error) {
	username := r.PostForm.Get("username")
	userTry, ipTry, wait, err := p.reserve(ctx, UserKey(username), "login-ip:"+clientip.Network(clientip.Of(r)))
	if err != nil || wait.Retry > 0 {
		return wait, err
	}
	// Paths that end neither attempt (a store error) uncount them.
	defer userTry.Release(ctx)
	defer ipTry.Release(ctx)
	u, err := p.check(ctx, username, r.PostForm.Get("password"))
	if errors.Is(err, errWrongPassword) {
		return p.failed(ctx, username, u, userTry, ipTry)
	} else if err != nil {
		return Outcome{}, err
	}
	// A success clears the account's failures, not the network's: one good
	// password must not clear an address that guesses many accounts.
	if err := errors.Join(userTry.Succeed(ctx), ipTry.Release(ctx)); err != nil {
		return Outcome{}, err
	}
	return Outcome{Result: Proved, User: u}, nil
}

// UserKey is the throttle key of the login attempts at an account.
func UserKey(username string) string { return "login-user:" + username }

var errWrongPassword = errors.New("signin: wrong username or password")

// check returns the user whose password was given, or errWrongPassword
// with the user (nil when unknown). A password hashed with weaker
// parameters than today's is rehashed.
func (p *Password) check(ctx context.Context, username, pw string) (*storage.User, error) {
	u, err := (*storage.User)(nil), storage.ErrNotFound
	if storage.ValidText(username) { // no user has another name; a database may refuse it
		u, err = p.Store.GetUserByUsername(ctx, username)
	}
	switch {
	case errors.Is(err, storage.ErrNotFound):
		_ = password.VerifyDummy(p.Params)
		return nil, errWrongPassword
	case err != nil:
		return nil, err
	}
	rehash, err := password.Verify(pw, u.PasswordHash, p.Params)
	if err != nil {
		return u, errWrongPassword
	}
	if rehash {
		if hash, herr := password.Hash(pw, p.Params); herr == nil {
			_ = p.Store.UpdateUserPassword(ctx, u.ID, hash)
		}
	}
	return u, nil
}

// failed counts a wrong password against the account and the network and
// records it in the audit log, with the throttle it starts.
func (p *Password) failed(ctx context.Context, username string, u *storage.User, userTry, ipTry *ratelimit.Attempt) (Outcome, error) {
	du, uerr := userTry.Fail(ctx)
	di, ierr := ipTry.Fail(ctx)
	if err := errors.Join(uerr, ierr); err != nil {
		return Outcome{}, err
	}
	ev := audit.Event{Type: audit.LoginFailed, Detail: "username=" + oautherr.Clip(username)}
	if u != nil {
		ev.UserID = u.ID
	}
	p.Audit.Record(ctx, ev)
	if du > 0 || di > 0 {
		ev.Type, ev.Detail = audit.LoginThrottled, fmt.Sprintf("%s; next try in %d s", ev.Detail, ratelimit.RetrySeconds(max(du, di)))
		p.Audit.Record(ctx, ev)
	}
	return Outcome{Result: Failed, Message: "login.failed"}, nil
}
