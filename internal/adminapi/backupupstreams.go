package adminapi

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"strconv"
	"time"

	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/clientauth"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/upstream"
)

// BackupUpstream is an upstream added through the API, as stored: its
// settings, and its client secret sealed under the store's
// upstream-secret-seal key (which the backup does not hold) and bound to
// its id. A backup restored into a store with another key cannot open the
// secret: the import adds the upstream disabled and without a secret
// (Imported.UpstreamSecretsSkipped); the operator sets the secret again
// (PUT /admin/upstreams/{id}) and enables it. Upstreams of the
// configuration file are not in a backup: the target's own file has them.
type BackupUpstream struct {
	ID           string          `json:"id"`
	Config       json.RawMessage `json:"config"`
	SecretSealed string          `json:"secret_sealed,omitempty"`
	Enabled      bool            `json:"enabled"`
	CreatedAt    time.Time       `json:"created_at"`
	UpdatedAt    time.Time       `json:"updated_at"`
}

// BackupLink links a backup's user to an identity at an upstream (stored
// or configured), so that the person signs in through it after a restore.
type BackupLink struct {
	Upstream   string    `json:"upstream"`
	Subject    string    `json:"subject"`
	Email      string    `json:"email,omitempty"`
	CreatedAt  time.Time `json:"created_at"`
	LastUsedAt time.Time `json:"last_used_at,omitzero"`
}

// backupUpstreams reads the stored upstreams for a backup.
func (a *API) backupUpstreams(ctx context.Context) ([]BackupUpstream, error) {
	rows, err := a.Store.ListUpstreams(ctx)
	if err != nil {
		return nil, err
	}
	out := []BackupUpstream{}
	for _, row := range rows {
		out = append(out, BackupUpstream{row.ID, json.RawMessage(row.Config), row.SecretSealed, row.Enabled, row.CreatedAt, row.UpdatedAt})
	}
	return out, nil
}

// backupLinks reads a user's upstream links for a backup.
func (a *API) backupLinks(ctx context.Context, userID string) ([]BackupLink, error) {
	links, err := a.Store.ListUpstreamLinks(ctx, userID)
	if err != nil {
		return nil, err
	}
	var out []BackupLink
	for _, l := range links {
		out = append(out, BackupLink{l.Upstream, l.Subject, l.Email, l.CreatedAt, l.LastUsedAt})
	}
	return out, nil
}

// check checks a backup's upstream as one added through the API.
func (u BackupUpstream) check(a *API) error {
	if !upstream.ValidID(u.ID) {
		return badRequest("upstream " + strconv.Quote(u.ID) + ": id must be lowercase letters, digits and '-'")
	}
	c, err := upstream.Decode(storage.Upstream{ID: u.ID, Config: string(u.Config)}, nil)
	if err != nil {
		return badRequest("upstream " + strconv.Quote(u.ID) + ": config must be an upstream's settings")
	}
	if u.SecretSealed != "" {
		c.ClientSecret = "sealed" // it has one, for the checks
	}
	return a.checkUpstream(c)
}

// checkLinks checks the links of a backup's user.
func checkLinks(username string, links []BackupLink) error {
	for _, l := range links {
		if !upstream.ValidID(l.Upstream) || l.Subject == "" {
			return badRequest("user " + username + ": an upstream link needs an upstream id and a subject")
		}
	}
	return nil
}

// importUpstreams stores the upstreams of a backup, leaving alone those
// that exist already or that the configuration file defines. A secret
// this store's key does not open is left out, its upstream disabled.
func (a *API) importUpstreams(r *http.Request, list []BackupUpstream, out *Imported) error {
	ctx := r.Context()
	sealer, err := a.secretSealer(ctx)
	if err != nil {
		return err
	}
	for _, u := range list {
		if _, ok := a.configured(u.ID); ok {
			out.UpstreamsSkipped++
			continue
		}
		row := storage.Upstream{ID: u.ID, Config: string(u.Config), SecretSealed: u.SecretSealed, Enabled: u.Enabled, CreatedAt: u.CreatedAt, UpdatedAt: u.UpdatedAt}
		sealed := opens(row, sealer)
		if !sealed {
			row.SecretSealed, row.Enabled = "", false
		}
		switch err := a.Store.CreateUpstream(ctx, row); {
		case errors.Is(err, storage.ErrAlreadyExists):
			out.UpstreamsSkipped++
			continue
		case err != nil:
			return err
		}
		out.UpstreamsAdded++
		if !sealed {
			out.UpstreamSecretsSkipped++
		}
		a.upstreamChanged(r, audit.UpstreamAdded, u.ID)
	}
	return nil
}

// opens reports whether row's sealed secret, if any, opens with sealer.
func opens(row storage.Upstream, sealer *clientauth.Sealer) bool {
	if row.SecretSealed == "" {
		return true
	}
	_, err := upstream.Decode(row, sealer)
	return err == nil
}

// importLinks stores the upstream links of an added user; a link whose
// identity is linked already (to another user) is left out.
func (a *API) importLinks(ctx context.Context, userID string, links []BackupLink, out *Imported) error {
	for _, l := range links {
		err := a.Store.CreateUpstreamLink(ctx, storage.UpstreamLink{Upstream: l.Upstream, Subject: l.Subject, UserID: userID, Email: l.Email,
			CreatedAt: l.CreatedAt, LastUsedAt: l.LastUsedAt})
		switch {
		case errors.Is(err, storage.ErrAlreadyExists):
			out.LinksSkipped++
		case err != nil:
			return err
		default:
			out.LinksAdded++
		}
	}
	return nil
}
