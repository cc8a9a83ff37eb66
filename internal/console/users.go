package console

import (
	"context"
	"crypto/rand"
	"net/http"
	"strings"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
)

// UserPage is one user with its second factors and the operator's
// actions on the account; Password is a password the console just set
// or made, shown this once.
type UserPage struct {
	User     adminapi.User
	Factors  adminapi.Factors
	Password string
	Created  bool
	Error    string
}

func (c *Console) userPage(w http.ResponseWriter, r *http.Request, u *storage.User) {
	c.showUser(w, r, u, http.StatusOK, UserPage{})
}

func (c *Console) showUser(w http.ResponseWriter, r *http.Request, u *storage.User, status int, p UserPage) {
	rm := c.remote(u)
	who, err := rm.GetUser(r.Context(), r.PathValue("id"))
	if err == nil {
		p.User = who
		p.Factors, err = rm.Factors(r.Context(), who.ID)
	}
	if err != nil {
		c.fail(w, r, err)
		return
	}
	c.render(w, r, status, "user", "console.user", u, p)
}

// newPassword is the password of the form, or, left empty, a random one
// the console shows once.
func newPassword(r *http.Request) (pw string, made bool) {
	if pw = r.PostFormValue("password"); pw != "" {
		return pw, false
	}
	return rand.Text(), true
}

// createUser adds a user from the form; a password left empty is made
// and shown this once. The API's refusal is shown beside the form.
func (c *Console) createUser(w http.ResponseWriter, r *http.Request, u *storage.User) {
	pw, made := newPassword(r)
	in := adminapi.NewUser{Username: strings.TrimSpace(r.PostFormValue("username")), Password: pw,
		Name: strings.TrimSpace(r.PostFormValue("name")), Email: strings.TrimSpace(r.PostFormValue("email"))}
	created, err := c.remote(u).CreateUser(r.Context(), in)
	var ae *adminapi.Error
	switch {
	case err == nil:
		r.SetPathValue("id", created.ID)
		p := UserPage{Created: true}
		if made {
			p.Password = pw
		}
		c.showUser(w, r, u, http.StatusCreated, p)
	case asAPIError(err, &ae) && ae.Status < 500:
		in.Password = ""
		c.usersPage(w, r, u, ae.Status, UsersPage{Error: ae.Description, Form: in})
	default:
		c.fail(w, r, err)
	}
}

// resetPassword sets the password of the form, or a random one shown
// once; the user is signed out everywhere (the admin API does it).
func (c *Console) resetPassword(w http.ResponseWriter, r *http.Request, u *storage.User) {
	pw, made := newPassword(r)
	err := c.remote(u).SetPassword(r.Context(), r.PathValue("id"), pw)
	var ae *adminapi.Error
	switch {
	case err == nil && made:
		c.showUser(w, r, u, http.StatusOK, UserPage{Password: pw})
	case err == nil:
		back(w, r, "/console/users/"+r.PathValue("id"), "console.password_set")
	case asAPIError(err, &ae) && ae.Status == http.StatusBadRequest:
		c.showUser(w, r, u, ae.Status, UserPage{Error: ae.Description})
	default:
		c.fail(w, r, err)
	}
}

// userActions are the account actions without a form of their own: the
// admin API call and the notice on success.
var userActions = map[string]struct {
	call   func(context.Context, *adminapi.Remote, string) error
	notice string
}{
	"signout": {func(ctx context.Context, rm *adminapi.Remote, id string) error { return rm.SignOut(ctx, id) }, "console.signed_out_user"},
	"factors": {func(ctx context.Context, rm *adminapi.Remote, id string) error { return rm.ResetFactors(ctx, id, "") }, "console.factors_reset"},
	"verification": {func(ctx context.Context, rm *adminapi.Remote, id string) error { return rm.ResendVerification(ctx, id) },
		"console.verification_sent"},
	"unlock": {func(ctx context.Context, rm *adminapi.Remote, id string) error { return rm.Unlock(ctx, id) }, "console.unlocked"},
}

// userAction runs the action named in the path on the user.
func (c *Console) userAction(w http.ResponseWriter, r *http.Request, u *storage.User) {
	act, ok := userActions[r.PathValue("action")]
	if !ok {
		c.message(w, r, http.StatusNotFound, "console.not_found")
		return
	}
	id := r.PathValue("id")
	if err := act.call(r.Context(), c.remote(u), id); err != nil {
		c.fail(w, r, err)
		return
	}
	back(w, r, "/console/users/"+id, act.notice)
}

// Actions are the names of userActions, in the page's order.
func (UserPage) Actions() []string { return []string{"signout", "factors", "verification", "unlock"} }
