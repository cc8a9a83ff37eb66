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
	if err != nil || !u.EmailVerified || u.Email == "" {
		return
	}
	lang := "en"
	if strings.HasPrefix(strings.ToLower(u.Profile.Locale), "ar") {
		lang = "ar"
	}
	what := ui.T(lang, "notice.event."+event)
	m := mail.Message{To: u.Email, Kind: "security notice", Subject: ui.T(lang, "notice.security.subject", n.Product),
		Body: ui.T(lang, "notice.security.body", u.Name, what, n.Product)}
	if err := n.Outbox.Send(context.WithoutCancel(ctx), m); err != nil {
		n.Log.WarnContext(ctx, "security notice not queued", "user_id", userID, "event", event, "err", err)
	}
}
