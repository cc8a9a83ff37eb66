package security

import (
	"errors"
	"net/http"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// linkView is an upstream identity linked to the account; Last says it is
// the only way to sign in left, which the page offers no button to unlink.
type linkView struct {
	Upstream, Name, Email, Since string
	Last                         bool
}

// linkedAccounts lists the user's links to upstream identity providers.
func (h *Handler) linkedAccounts(r *http.Request, u *storage.User, d *pageData) error {
	if h.Upstreams == nil {
		return nil
	}
	links, err := h.Store.ListUpstreamLinks(r.Context(), u.ID)
	if err != nil {
		return err
	}
	providers, err := h.Upstreams.Registry.Providers(r.Context())
	if err != nil {
		return err
	}
	lang := ui.Lang(nil, r)
	for _, l := range links {
		name := l.Upstream
		for _, p := range providers {
			if p.ID == l.Upstream {
				name = p.Label(lang)
			}
		}
		d.Links = append(d.Links, linkView{Upstream: l.Upstream, Name: name, Email: l.Email, Since: date(l.CreatedAt)})
	}
	d.LinksOn = true
	return nil
}

// unlink removes a link to an upstream while another way to sign in
// remains: a password, a passkey, or another link.
func (h *Handler) unlink(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	ok, err := h.Upstreams.Unlink(r.Context(), u, r.PostForm.Get("upstream"))
	switch {
	case errors.Is(err, storage.ErrNotFound): // another user's link, or none: nothing to say
		done(w, r, "security.upstream.unlinked")
	case err != nil:
		h.fail(w, r, oautherr.Wrap(err))
	case !ok:
		h.render(w, r, http.StatusConflict, sess, u, pageData{Error: "security.upstream.last"})
	default:
		done(w, r, "security.upstream.unlinked")
	}
}

// lastWayIn marks the passkey or link that is the account's only way to
// sign in, counted as the store counts it (storage.ErrLastWayIn): a
// password, every passkey and every link, listed or not. The page then
// shows why it cannot go instead of a button the server would refuse;
// the store still refuses a removal that races another.
func (h *Handler) lastWayIn(r *http.Request, u *storage.User, d *pageData) error {
	keys, links := len(d.Passkeys), len(d.Links)
	if !d.PasskeysOn {
		ks, err := h.Store.ListPasskeys(r.Context(), u.ID)
		if err != nil {
			return err
		}
		keys = len(ks)
	}
	if !d.LinksOn {
		ls, err := h.Store.ListUpstreamLinks(r.Context(), u.ID)
		if err != nil {
			return err
		}
		links = len(ls)
	}
	if u.PasswordHash != "" || keys+links != 1 {
		return nil
	}
	for i := range d.Passkeys {
		d.Passkeys[i].Last = true
	}
	for i := range d.Links {
		d.Links[i].Last = true
	}
	return nil
}
