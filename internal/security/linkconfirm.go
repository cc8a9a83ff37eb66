package security

import (
	"net/http"
	"net/url"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
	"github.com/bawwab/bawwab/internal/upstream"
)

// linkConfirmData is the page asking the person to confirm a link.
type linkConfirmData struct{ Name, Email, Req string }

// linkPending returns the link waiting for the confirmation of the
// signed-in person: the one their session, signed in since the link's
// local proof, made wait. Without one it sends the browser on and
// returns nil.
func (h *Handler) linkPending(w http.ResponseWriter, r *http.Request, sess *storage.Session, u *storage.User) *upstream.PendingLink {
	p, ok := h.Upstreams.Pending(r.Context(), r, ui.Lang(nil, r))
	if !ok || p.UserID != u.ID || sess.AuthTime.Before(p.At) {
		h.Upstreams.Drop(w)
		http.Redirect(w, r, "/account?"+ui.LocalesParam+"="+ui.Lang(nil, r), http.StatusSeeOther)
		return nil
	}
	return p
}

// linkPage asks the person who just signed in to their account whether
// to link the upstream identity that waited for it.
func (h *Handler) linkPage(w http.ResponseWriter, r *http.Request) {
	sess, u := h.user(w, r)
	if u == nil {
		return
	}
	p := h.linkPending(w, r, sess, u)
	if p == nil {
		return
	}
	d := linkConfirmData{Name: p.Name, Email: p.Email, Req: p.Req}
	h.UI.Render(w, r, http.StatusOK, "linkconfirm", "upstream.confirm.title", ui.Page{CSRF: h.Sessions.CSRFToken(w, r), User: u.Name, Data: d})
}

// linkAnswer makes the link when the person chose "Link", forgets it
// otherwise, and goes on to the request the sign-in was for.
func (h *Handler) linkAnswer(w http.ResponseWriter, r *http.Request) {
	sess, u := h.posted(w, r)
	if u == nil {
		return
	}
	p := h.linkPending(w, r, sess, u)
	if p == nil {
		return
	}
	ctx := r.Context()
	if r.PostForm.Get("answer") != "link" {
		h.Upstreams.Drop(w)
		h.Audit.Record(ctx, audit.Event{Type: audit.UpstreamLinkDeclined, UserID: u.ID, Detail: "upstream=" + p.Upstream})
	} else {
		made, err := h.Upstreams.Link(ctx, w, p)
		if err != nil {
			h.fail(w, r, oautherr.Wrap(err))
			return
		}
		if made {
			h.event(ctx, u.ID, audit.UpstreamLinked, "upstream="+p.Upstream)
		}
	}
	to := "/account?"
	if p.Req != "" {
		to = "/consent?req=" + url.QueryEscape(p.Req) + "&"
	}
	http.Redirect(w, r, to+ui.LocalesParam+"="+ui.Lang(nil, r), http.StatusSeeOther)
}
