package authorize

import (
	"context"
	"net/url"

	"github.com/bawwab/bawwab/internal/jar"
)

// InvalidRequestObject is the error of a bad request object (OpenID
// Connect Core §3.1.2.6); see package jar.
const InvalidRequestObject = jar.InvalidRequestObject

// requestObject verifies the request object in v (RFC 9101, package jar)
// and returns the parameters it carries.
func (h *Handler) requestObject(ctx context.Context, v url.Values) (url.Values, error) {
	return (&jar.Verifier{Store: h.Store, Auth: h.Auth, Issuer: h.Issuer, Leeway: h.Leeway, Now: h.Now}).Params(ctx, v)
}
