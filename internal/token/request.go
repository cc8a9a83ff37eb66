package token

import (
	"net/url"

	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/storage"
)

// Request is one token request (RFC 6749 §3.2) as the endpoint read it:
// everything a grant decides on. The endpoint builds it once, after it
// checked the DPoP proof, parsed the form and authenticated the client;
// a grant reads nothing from the HTTP request or from the context.
//
// It carries no clock: grants take the time from their Issuer's Now.
type Request struct {
	// GrantType is the grant_type parameter (RFC 6749 §4).
	GrantType string
	// Form is the request body, an application/x-www-form-urlencoded form.
	Form url.Values
	// Client is the authenticated client (RFC 6749 §2.3, §3.2.1).
	Client *storage.Client
	// Proof is the request's verified DPoP proof (RFC 9449 §4.3), nil
	// when it carried none. The tokens issued are bound to its key (§5).
	Proof *dpop.Proof
}

// proves reports whether the request carries a DPoP proof of the key
// with thumbprint jkt (RFC 9449 §5, §10.1).
func (r *Request) proves(jkt string) bool {
	return r.Proof != nil && r.Proof.JKT == jkt
}
