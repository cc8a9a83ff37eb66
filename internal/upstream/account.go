package upstream

import (
	"context"
	"crypto/rand"
	"errors"
	"net/http"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/signin"
	"github.com/bawwab/bawwab/internal/storage"
)

// pendingLink is an upstream identity waiting, in a sealed cookie, for
// the person to sign in to the local account that has its address, for
// the downstream request Req (none: the account pages); then, in another
// cookie, for the person's confirmation, by the session that signed in at
// or after At.
type pendingLink struct {
	Upstream, Subject, UserID, Email, Req string
	Exp, At                               int64
}

// account finds the local user of an upstream identity: the linked one;
// else none when the address belongs to a local account (a link waits
// for the person to prove control of it, if the upstream verified the
// address; else the sign-in is refused); else one made just in time.
func (f *Flow) account(ctx context.Context, w http.ResponseWriter, a *signin.Attempt, s *Step, id Identity) (signin.Outcome, error) {
	p := s.p
	if !DomainAllowed(p.AllowedDomains, id) {
		return s.refuseAs(ctx, "", "the address "+id.Email+" is not in an allowed domain", "upstream.domain", audit.UpstreamNoAccount), nil
	}
	link, err := f.Store.GetUpstreamLink(ctx, p.ID, id.Subject)
	switch {
	case err == nil:
		if out, err := f.linked(ctx, link); !errors.Is(err, errOrphanLink) {
			return out, err
		}
		// The account was deleted while this link was made: the link is
		// gone now, and the identity is a new one.
	case !errors.Is(err, storage.ErrNotFound):
		return signin.Outcome{}, err
	}
	if id.Email != "" {
		owner, err := f.Store.GetUserByEmail(ctx, id.Email)
		switch {
		case err == nil && id.EmailVerified:
			f.setCookie(w, LinkCookie, "/", f.seal("link", "", pendingLink{Upstream: p.ID, Subject: id.Subject, UserID: owner.ID, Email: id.Email,
				Req: reqID(a), Exp: f.Now().Add(f.TTL).Unix()}), int(f.TTL.Seconds()))
			f.Audit.Record(ctx, audit.Event{Type: audit.UpstreamLinkAsked, UserID: owner.ID, Detail: "upstream=" + p.ID})
			return signin.Outcome{Result: signin.Failed, Message: "upstream.link", Args: []any{id.Email}}, nil
		case err == nil:
			return s.refuseAs(ctx, owner.ID, "an unverified address of a local account", "upstream.email_taken", audit.UpstreamNoAccount), nil
		case !errors.Is(err, storage.ErrNotFound):
			return signin.Outcome{}, err
		}
	}
	if !p.CreatesAccounts() {
		return s.refuseAs(ctx, "", "no linked account, and this upstream creates none", "upstream.no_account", audit.UpstreamNoAccount), nil
	}
	return f.create(ctx, s, id)
}

// errOrphanLink is a link whose user no longer exists: a deletion of the
// account raced the link's making (storage.DeleteUser removes links).
var errOrphanLink = errors.New("upstream: the linked account no longer exists")

// linked signs in the user of a link. A link left by an account deleted
// meanwhile is removed, and errOrphanLink returned.
func (f *Flow) linked(ctx context.Context, l *storage.UpstreamLink) (signin.Outcome, error) {
	u, err := f.Store.GetUser(ctx, l.UserID)
	if errors.Is(err, storage.ErrNotFound) {
		if err := f.Store.DeleteUpstreamLink(ctx, l.UserID, l.Upstream); err != nil && !errors.Is(err, storage.ErrNotFound) {
			return signin.Outcome{}, err
		}
		return signin.Outcome{}, errOrphanLink
	}
	if err != nil {
		return signin.Outcome{}, err
	}
	if err := f.Store.UseUpstreamLink(ctx, l.Upstream, l.Subject, f.Now()); err != nil && !errors.Is(err, storage.ErrNotFound) {
		return signin.Outcome{}, err
	}
	return signin.Outcome{Result: signin.Proved, User: u}, nil
}

// create makes the local user of a first sign-in, with its link, under
// the mapped username or, when that is taken, the name with a suffix. A
// concurrent first sign-in of the same identity that won signs in its user.
// The user gets the upstream's address only when the upstream verified it
// (LocalEmail).
func (f *Flow) create(ctx context.Context, s *Step, id Identity) (signin.Outcome, error) {
	base, now := Username(id), f.Now()
	email := LocalEmail(id)
	for i := range 5 {
		name := base
		if i > 0 {
			name = base + "-" + strings.ToLower(rand.Text()[:5])
		}
		u := storage.User{ID: newUserID(), Username: name, Name: id.Name, Email: email, EmailVerified: email != "", CreatedAt: now}
		err := f.Store.CreateUpstreamUser(ctx, u, storage.UpstreamLink{Upstream: s.p.ID, Subject: id.Subject, Email: id.Email, CreatedAt: now, LastUsedAt: now})
		if err == nil {
			f.Audit.Record(ctx, audit.Event{Type: audit.UpstreamCreated, UserID: u.ID, Detail: "upstream=" + s.p.ID + "; username=" + name})
			return signin.Outcome{Result: signin.Proved, User: &u}, nil
		}
		if !errors.Is(err, storage.ErrAlreadyExists) {
			return signin.Outcome{}, err
		}
		if l, err := f.Store.GetUpstreamLink(ctx, s.p.ID, id.Subject); err == nil {
			return f.linked(ctx, l)
		}
	}
	return s.refuseAs(ctx, "", "no free username, or the address belongs to another account", "upstream.email_taken", audit.UpstreamNoAccount), nil
}

// LocalEmail is the address an account made just in time takes from id:
// the upstream's address when the upstream verified it, else none. An
// unverified address proves nothing, and the store keeps unique only the
// verified ones: taken as it is, it could be the unverified address of a
// local account, making two accounts claim one address.
func LocalEmail(id Identity) string {
	if !id.EmailVerified {
		return ""
	}
	return id.Email
}

// Username is a local username for an identity: its mapped username, else
// the local part of its address, else "user", kept to letters, digits,
// '.', '_' and '-', at most 32.
func Username(id Identity) string {
	name := id.Username
	if name == "" {
		name, _, _ = strings.Cut(id.Email, "@")
	}
	var b strings.Builder
	for _, r := range strings.ToLower(name) {
		if b.Len() >= 32 {
			break
		}
		if r >= 'a' && r <= 'z' || r >= '0' && r <= '9' || r == '.' || r == '_' || r == '-' {
			b.WriteRune(r)
		}
	}
	if b.Len() == 0 {
		return "user"
	}
	return b.String()
}

// Finished asks the person to confirm the link of an upstream identity
// waiting for them (its address is a local account's) once they signed in
// to that account with a local first factor, for the request the link was
// started for (signin.Pipeline.Finished): the sign-in goes on to the
// confirmation page (ConfirmPath). A finished sign-in ends the wait
// either way: a later one, for another request, finds nothing.
func (f *Flow) Finished(_ context.Context, w http.ResponseWriter, r *http.Request, rec *signin.Record) error {
	var pl pendingLink
	if !f.open(r, LinkCookie, "link", "", &pl) {
		return nil
	}
	f.setCookie(w, LinkCookie, "/", "", -1)
	if pl.UserID != rec.UserID || pl.Req != rec.Request || !localProof(rec) {
		return nil
	}
	pl.At = f.Now().Unix()
	f.setCookie(w, ConfirmCookie, ConfirmPath, f.seal("confirm", "", pl), int(pl.Exp-pl.At))
	rec.Then = ConfirmPath
	return nil
}

// PendingLink is a link waiting for the person's confirmation.
type PendingLink struct {
	Upstream, Email, UserID string
	// Req is the downstream request the sign-in was for, if any.
	Req string
	// Name is the upstream's name in the language asked.
	Name string
	// At is when the local sign-in finished: only a session signed in
	// since may confirm.
	At time.Time
	pl pendingLink
}

// Pending returns the link the browser's confirmation cookie holds, unexpired,
// with the upstream's name in lang; false when none.
func (f *Flow) Pending(ctx context.Context, r *http.Request, lang string) (*PendingLink, bool) {
	var pl pendingLink
	if !f.open(r, ConfirmCookie, "confirm", "", &pl) {
		return nil, false
	}
	p := &PendingLink{Upstream: pl.Upstream, Email: pl.Email, UserID: pl.UserID, Req: pl.Req, Name: pl.Upstream, At: time.Unix(pl.At, 0), pl: pl}
	if list, err := f.Registry.Providers(ctx); err == nil {
		for _, pr := range list {
			if pr.ID == pl.Upstream {
				p.Name = pr.Label(lang)
			}
		}
	}
	return p, true
}

// Drop forgets the browser's link waiting for confirmation.
func (f *Flow) Drop(w http.ResponseWriter) { f.setCookie(w, ConfirmCookie, ConfirmPath, "", -1) }

// Link makes the confirmed link p and forgets it; it reports false when
// the identity was linked meanwhile, to this user or another.
func (f *Flow) Link(ctx context.Context, w http.ResponseWriter, p *PendingLink) (bool, error) {
	now := f.Now()
	err := f.Store.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: p.pl.Upstream, Subject: p.pl.Subject, UserID: p.pl.UserID, Email: p.pl.Email,
		CreatedAt: now, LastUsedAt: now})
	if errors.Is(err, storage.ErrAlreadyExists) {
		f.Drop(w)
		return false, nil
	} else if err != nil {
		return false, err
	}
	f.Drop(w)
	return true, nil
}

// localProof reports whether a sign-in passed a step of bawwab's own, not
// only an upstream.
func localProof(rec *signin.Record) bool {
	for _, s := range rec.Steps {
		if !strings.HasPrefix(s, "upstream:") {
			return true
		}
	}
	return false
}

// Unlink removes the user's link to upstream when another way to sign in
// remains (a password, a passkey, or another link), checked by the store
// in the same step as the delete; it reports false when none would.
func (f *Flow) Unlink(ctx context.Context, u *storage.User, upstream string) (bool, error) {
	err := f.Store.UnlinkUpstream(ctx, u.ID, upstream)
	switch {
	case errors.Is(err, storage.ErrLastWayIn):
		return false, nil
	case err != nil:
		return false, err
	}
	f.Audit.Record(ctx, audit.Event{Type: audit.UpstreamUnlinked, UserID: u.ID, Detail: "upstream=" + upstream})
	return true, nil
}
