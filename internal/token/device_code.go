package token

import (
	"context"
	"errors"
	"time"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// DeviceCodeGrantType is the grant type of RFC 8628 §3.4.
const DeviceCodeGrantType = "urn:ietf:params:oauth:grant-type:device_code"

// DeviceCode is the device authorization grant (RFC 8628 §3.4–3.5): the
// device polls with its device code until the user has decided. The
// waiting answers are errors of the token endpoint (400, §3.5).
type DeviceCode struct {
	Issuer *Issuer
}

// Type implements Grant.
func (DeviceCode) Type() string { return DeviceCodeGrantType }

// pollLeeway forgives polls that arrive a little early (a client's timer
// and the network are not exact).
const pollLeeway = time.Second

func pollError(code, desc string) error {
	e := oautherr.New(code, desc)
	e.Status = 400 // RFC 8628 §3.5: error responses of RFC 6749 §5.2
	return e
}

// Exchange implements Grant: a poll of the device (RFC 8628 §3.4).
func (g DeviceCode) Exchange(ctx context.Context, req *Request) (*Response, error) {
	i, client := g.Issuer, req.Client
	raw := req.Form.Get("device_code")
	if raw == "" {
		return nil, oautherr.New(oautherr.InvalidRequest, "device_code is required")
	}
	now := i.Now()
	d, err := i.Store.PollDeviceCode(ctx, storage.Hash(raw), now)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, oautherr.New(oautherr.InvalidGrant, "the device_code is unknown or expired")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	if err := checkPoll(d, client, now); err != nil {
		return nil, err
	}
	if err := i.Store.ConsumeDeviceCode(ctx, d.Hash, now); errors.Is(err, storage.ErrAlreadyUsed) {
		return nil, oautherr.New(oautherr.InvalidGrant, "tokens were already issued for this device_code")
	} else if err != nil {
		return nil, oautherr.Wrap(err)
	}
	user, err := i.userOf(ctx, d.UserID, "device_code")
	if err != nil {
		return nil, err
	}
	return g.tokens(ctx, req, d, user, now)
}

// checkPoll answers a poll of device code d by client (RFC 8628 §3.5):
// the code must be the client's and alive; a device polling faster than
// the interval is told to slow_down; while the user has not approved,
// the answer is authorization_pending or access_denied.
func checkPoll(d *storage.DeviceCode, client *storage.Client, now time.Time) error {
	switch {
	case d.ClientID != client.ID:
		return oautherr.New(oautherr.InvalidGrant, "the device_code was issued to another client")
	case !now.Before(d.ExpiresAt):
		return pollError(oautherr.ExpiredToken, "the device_code has expired; start again")
	case !d.LastPoll.IsZero() && now.Sub(d.LastPoll) < time.Duration(d.Interval)*time.Second-pollLeeway:
		return pollError(oautherr.SlowDown, "polling too fast: wait the interval (add 5 seconds to it) between requests")
	case d.Status == storage.DevicePending:
		return pollError(oautherr.AuthorizationPending, "the user has not decided yet")
	case d.Status == storage.DeviceDenied:
		return pollError(oautherr.AccessDenied, "the user denied the request")
	}
	return nil
}

// tokens creates the grant the user approved on the verification page and
// answers with its tokens (RFC 8628 §3.5, RFC 6749 §5.1).
func (g DeviceCode) tokens(ctx context.Context, req *Request, d *storage.DeviceCode, user *storage.User, now time.Time) (*Response, error) {
	i, client := g.Issuer, req.Client
	grant := storage.Grant{ID: storage.DeviceGrantID(d.Hash), ClientID: client.ID, UserID: user.ID, Scopes: d.GrantedScopes, AuthTime: d.AuthTime,
		CreatedAt: now, ExpiresAt: now.Add(i.GrantTTL), AMR: d.AMR}
	// The code is spent, so only a deletion of the user (storage.DeleteUser)
	// can have created this grant, revoked: the tokens are dead on arrival.
	return i.startGrant(ctx, req, issue{subject: user.ID, user: user, scopes: d.GrantedScopes, grant: &grant, authTime: d.AuthTime}, g.Type())
}

var _ Grant = DeviceCode{}
