package security

import (
	"context"
	"log/slog"
	"strings"

	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/ui"
)

// MailNotifier tells a person of a security event by mail, through the
// durable outbox: to the account's verified address only (an unverified
// one may be anyone's), in the language of the person's profile. It never
// blocks on delivery, and a failure to queue is logged, not shown.
type MailNotifier struct {
	Store   storage.Storage
	Outbox  *mail.Outbox
	Log     *slog.Logger
	Product string
}

var _ Notifier = (*MailNotifier)(nil)

// SecurityEvent queues the notice of event (an audit event type).
func (n *MailNotifier) SecurityEvent(ctx context.Context, userID, event string) {
	u, err := n.Store.GetUser(ctx, userID)
	if err != nil {
		return
	}
	n.send(ctx, u, event, func(lang string) string {
		return ui.T(lang, "notice.security.body", u.Name, ui.T(lang, "notice.event."+event), n.Product)
	})
}

// AccountDeleted queues the notice that u, as it was before its deletion,
// was deleted.
func (n *MailNotifier) AccountDeleted(ctx context.Context, u *storage.User) {
	n.send(ctx, u, "account_deleted", func(lang string) string { return ui.T(lang, "notice.deleted.body", u.Name, n.Product) })
}

// send queues a notice to u's verified address, in u's language.
func (n *MailNotifier) send(ctx context.Context, u *storage.User, event string, body func(lang string) string) {
	if !u.EmailVerified || u.Email == "" {
		return
	}
	lang := "en"
	if strings.HasPrefix(strings.ToLower(u.Profile.Locale), "ar") {
		lang = "ar"
	}
	m := mail.Message{To: u.Email, Kind: "security notice", Subject: ui.T(lang, "notice.security.subject", n.Product), Body: body(lang)}
	if err := n.Outbox.Send(context.WithoutCancel(ctx), m); err != nil {
		n.Log.WarnContext(ctx, "security notice not queued", "user_id", u.ID, "event", event, "err", err)
	}
}
