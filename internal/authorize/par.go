package authorize

import (
	"context"
	"encoding/json"
	"errors"
	"net/http"
	"net/url"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
	"github.com/bawwab/bawwab/internal/token"
)

// Pushed authorization requests (RFC 9126): the client sends the
// authorization request to /par over its authenticated back channel, gets
// a short-lived, single-use request_uri, and sends the browser to
// /authorize with only client_id and that request_uri.

// requestURIPrefix starts every request_uri bawwab issues (RFC 9126 §2.2).
const requestURIPrefix = "urn:ietf:params:oauth:request_uri:"

// parTTL is how long a pushed request waits for the browser.
const parTTL = 60 * time.Second

type parResponse struct {
	RequestURI string `json:"request_uri"`
	ExpiresIn  int    `json:"expires_in"`
}

func (h *Handler) par(w http.ResponseWriter, r *http.Request) {
	h.DPoP.SetNonce(w) // RFC 9449 §8: the nonce for the next proof
	req, err := h.pushed(r)
	if err != nil {
		var re *redirectError
		if errors.As(err, &re) { // at /par every error is the JSON kind
			err = re.err
		}
		oautherr.WriteLogged(r.Context(), h.Log, w, "pushed authorization request refused", err)
		return
	}
	w.Header().Set("Cache-Control", "no-store")
	w.Header().Set("Content-Type", "application/json")
	w.WriteHeader(http.StatusCreated)
	_ = json.NewEncoder(w).Encode(parResponse{RequestURI: requestURIPrefix + req.ID, ExpiresIn: int(parTTL.Seconds())})
}

func (h *Handler) pushed(r *http.Request) (*storage.AuthRequest, error) {
	ctx := r.Context()
	client, err := token.ClientForm(h.Auth, r)
	if err != nil {
		return nil, err
	}
	v := r.PostForm
	if v.Has("request_uri") {
		return nil, oautherr.New(oautherr.InvalidRequest, "request_uri may not be pushed (RFC 9126 section 2.1)")
	}
	// The authenticated client is the one asking (§2.1).
	v.Set("client_id", client.ID)
	if v.Has("request") { // a request object pushed (RFC 9126 §3)
		if v, err = h.requestObject(ctx, v); err != nil {
			return nil, err
		}
	}
	if err := h.parProof(r, v); err != nil {
		return nil, err
	}
	req, _, err := h.validate(ctx, v, true)
	if err != nil {
		return nil, err
	}
	req.ID = "par-" + token.NewID()
	req.ExpiresAt = req.CreatedAt.Add(parTTL)
	if err := h.Store.CreateAuthRequest(ctx, *req); err != nil {
		return nil, oautherr.Wrap(err)
	}
	return req, nil
}

// fromPushed turns /authorize?client_id=…&request_uri=… into the pushed
// request, once: the stored request is deleted as it is taken, and the
// other query parameters are ignored (§4).
func (h *Handler) fromPushed(ctx context.Context, v url.Values) (*storage.AuthRequest, *storage.Client, error) {
	id, ok := strings.CutPrefix(v.Get("request_uri"), requestURIPrefix)
	if !ok || !strings.HasPrefix(id, "par-") {
		return nil, nil, oautherr.New(oautherr.InvalidRequest, "request_uri must be one this server issued at /par")
	}
	req, err := h.Store.GetAuthRequest(ctx, id)
	if errors.Is(err, storage.ErrNotFound) {
		return nil, nil, oautherr.New(oautherr.InvalidRequest, "the request_uri is unknown, used or expired; push the request again")
	} else if err != nil {
		return nil, nil, oautherr.Wrap(err)
	}
	if req.ClientID != v.Get("client_id") {
		return nil, nil, oautherr.New(oautherr.InvalidRequest, "the request_uri was pushed by another client")
	}
	if err := h.Store.DeleteAuthRequest(ctx, id); errors.Is(err, storage.ErrNotFound) {
		return nil, nil, oautherr.New(oautherr.InvalidRequest, "the request_uri was used already; push the request again")
	} else if err != nil {
		return nil, nil, oautherr.Wrap(err)
	}
	now := h.Now()
	if !now.Before(req.ExpiresAt) {
		return nil, nil, oautherr.New(oautherr.InvalidRequest, "the request_uri has expired; push the request again")
	}
	client, err := h.Store.GetClient(ctx, req.ClientID)
	if err != nil {
		return nil, nil, oautherr.Wrap(err)
	}
	// From here on it is an ordinary request, with the usual lifetime.
	req.ID, req.CreatedAt, req.ExpiresAt = token.NewID(), now, now.Add(h.RequestTTL)
	return req, client, nil
}

// parProof checks the DPoP proof a pushed request may carry (RFC 9449
// §10.1): it is verified as at the token endpoint, and binds the code as
// dpop_jkt does, so that the code is redeemed only with a proof of the
// same key; a dpop_jkt sent beside it must name that key.
func (h *Handler) parProof(r *http.Request, v url.Values) error {
	if len(r.Header.Values("DPoP")) == 0 {
		return nil
	}
	if h.DPoP == nil {
		return oautherr.New(dpop.InvalidProof, "this server takes no DPoP proofs at /par")
	}
	p, err := h.DPoP.Check(r.Context(), r, h.Issuer+"/par", "")
	if err != nil {
		return err
	}
	if jkt := v.Get("dpop_jkt"); jkt != "" && jkt != p.JKT {
		return oautherr.New(oautherr.InvalidRequest, "dpop_jkt is not the thumbprint of the DPoP proof's key (RFC 9449 section 10.1)")
	}
	v.Set("dpop_jkt", p.JKT)
	return nil
}
