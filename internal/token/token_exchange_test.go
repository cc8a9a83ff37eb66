package token

import (
	"context"
	"testing"

	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// TestHeldKey: a DPoP-bound subject or actor token is exchanged only by a
// request whose proof is signed by the token's key (RFC 9449 §6); an
// unbound one needs no proof.
func TestHeldKey(t *testing.T) {
	bound := &AccessClaims{Cnf: &Confirmation{JKT: "key-a"}}
	tests := []struct {
		name    string
		claims  *AccessClaims
		proof   *dpop.Proof
		wantErr bool
	}{
		{"unbound, no proof", &AccessClaims{}, nil, false},
		{"unbound, a proof", &AccessClaims{}, &dpop.Proof{JKT: "key-b"}, false},
		{"bound, no proof", bound, nil, true},
		{"bound, proof of another key", bound, &dpop.Proof{JKT: "key-b"}, true},
		{"bound, proof of an empty key", bound, &dpop.Proof{}, true},
		{"bound, proof of its key", bound, &dpop.Proof{JKT: "key-a"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := heldKey(&Request{Proof: tt.proof}, tt.claims, "subject_token")
			if (err != nil) != tt.wantErr {
				t.Fatalf("heldKey = %v, wantErr %v", err, tt.wantErr)
			}
			if err != nil && oautherr.Code(err) != oautherr.InvalidGrant {
				t.Fatalf("error code %q, want invalid_grant", oautherr.Code(err))
			}
		})
	}
}

// TestTokenExchangePublicClient: a public client is refused before any
// token is read (RFC 8693 §5).
func TestTokenExchangePublicClient(t *testing.T) {
	_, err := TokenExchange{Issuer: &Issuer{}}.Exchange(context.Background(), &Request{GrantType: TokenExchangeGrantType, Client: &storage.Client{ID: "spa", Public: true}})
	if oautherr.Code(err) != oautherr.UnauthorizedClient {
		t.Fatalf("public client: %v, want unauthorized_client", err)
	}
}
