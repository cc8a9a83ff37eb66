// Package ids makes the random identifiers and opaque secrets bawwab hands
// out: grant and request ids, client ids, codes, tokens. Each comes from
// crypto/rand, so that guessing one is out of reach (RFC 6749 §10.10,
// RFC 9700 §4.5.3 on codes and tokens).
package ids

import "crypto/rand"

// New returns a random identifier (130 bits, base32 text) for grants,
// jtis, requests and users.
func New() string { return rand.Text() }

// NewOpaque returns a random opaque token or secret: 160 bits, URL-safe.
func NewOpaque() string { return rand.Text() + rand.Text()[:6] }
