package authorize

import (
	"context"
	"errors"
	"net/url"

	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/par"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// requestURIPrefix starts every request_uri bawwab issues (RFC 9126 §2.2).
const requestURIPrefix = par.RequestURIPrefix

// pushedRequests is the /par endpoint (package par), validating what is
// pushed with the rules of /authorize.
func (h *Handler) pushedRequests() *par.Endpoint {
	return &par.Endpoint{Store: h.Store, Auth: h.Auth, DPoP: h.DPoP, Issuer: h.Issuer, Log: h.Log, Now: h.Now,
		RequestObject: h.requestObject, Validate: h.validatePushed}
}

// validatePushed validates a pushed request. At /par every error is the
// JSON kind: none is redirected.
func (h *Handler) validatePushed(ctx context.Context, v url.Values) (*storage.AuthRequest, error) {
	req, _, err := h.validate(ctx, v, true)
	if re := (*redirectError)(nil); errors.As(err, &re) {
		err = re.err
	}
	return req, err
}

// fromPushed turns /authorize?client_id=…&request_uri=… into the pushed
// request, once; the other query parameters are ignored (RFC 9126 §4).
func (h *Handler) fromPushed(ctx context.Context, v url.Values) (*storage.AuthRequest, *storage.Client, error) {
	req, err := h.pushedRequests().Take(ctx, v.Get("client_id"), v.Get("request_uri"))
	if err != nil {
		return nil, nil, err
	}
	client, err := h.Store.GetClient(ctx, req.ClientID)
	if err != nil {
		return nil, nil, oautherr.Wrap(err)
	}
	// From here on it is an ordinary request, with the usual lifetime.
	now := h.Now()
	req.ID, req.CreatedAt, req.ExpiresAt = token.NewID(), now, now.Add(h.RequestTTL)
	return req, client, nil
}

// parResponse is the answer of /par (RFC 9126 §2.2).
type parResponse = par.Response
