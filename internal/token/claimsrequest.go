package token

import (
	"encoding/json"
	"slices"
	"strings"

	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/storage"
)

// ClaimItemPrefix marks a consent item that is one claim asked for with
// the claims parameter (OpenID Connect Core §5.5) rather than a scope:
// "claim:name". Consents remember such items beside scopes; they never
// become scopes of a token.
const ClaimItemPrefix = "claim:"

// Released are the user claims released individually, per place they are
// returned (OpenID Connect Core §5.5): what a code, and then its grant,
// carry. Claims released by a granted scope are not listed.
type Released struct {
	UserInfo []string `json:"userinfo,omitempty"`
	IDToken  []string `json:"id_token,omitempty"`
}

// Requested reads a claims request parameter (already validated) and
// returns the user claims it asks for, per target, that a scope in allowed
// can release: a client asks for no claim its scopes could not give it.
// ID token claims such as acr or auth_time are not user claims and are
// left out. It does not check consent.
func Requested(cat *scope.Catalog, allowed []string, raw string) Released {
	var req map[string]map[string]json.RawMessage
	if raw == "" || json.Unmarshal([]byte(raw), &req) != nil {
		return Released{}
	}
	known := cat.Claims(allowed)
	pick := func(m map[string]json.RawMessage) []string {
		var out []string
		for name := range m {
			if name != "sub" && slices.Contains(known, name) {
				out = append(out, name)
			}
		}
		slices.Sort(out)
		return out
	}
	return Released{UserInfo: pick(req["userinfo"]), IDToken: pick(req["id_token"])}
}

// ConsentItems are what a person is asked to consent to for a request of
// client: its scopes, then one item per requested claim that none of
// those scopes releases and one of the client's scopes could.
func ConsentItems(cat *scope.Catalog, client *storage.Client, scopes []string, claimsParam string) []string {
	items := slices.Clone(scopes)
	byScope := cat.Claims(scopes)
	r := Requested(cat, client.Scopes, claimsParam)
	for _, c := range append(r.UserInfo, r.IDToken...) {
		if !slices.Contains(byScope, c) && !slices.Contains(items, ClaimItemPrefix+c) {
			items = append(items, ClaimItemPrefix+c)
		}
	}
	return items
}

// SplitGranted separates the granted consent items into the scopes to
// issue and the claims released individually, as stored with the code.
func SplitGranted(cat *scope.Catalog, granted []string, claimsParam string) (scopes []string, released string) {
	var claims []string
	for _, g := range granted {
		if c, ok := strings.CutPrefix(g, ClaimItemPrefix); ok {
			claims = append(claims, c)
		} else {
			scopes = append(scopes, g)
		}
	}
	r := Requested(cat, cat.Names(), claimsParam) // the items were limited to the client's scopes
	keep := func(names []string) []string {
		return slices.DeleteFunc(names, func(n string) bool { return !slices.Contains(claims, n) })
	}
	r.UserInfo, r.IDToken = keep(r.UserInfo), keep(r.IDToken)
	if len(r.UserInfo) == 0 && len(r.IDToken) == 0 {
		return scopes, ""
	}
	raw, _ := json.Marshal(r)
	return scopes, string(raw)
}

// releasedOf reads what a grant carries; nil grants and empty values
// release nothing.
func releasedOf(g *storage.Grant) Released {
	var r Released
	if g != nil && g.Claims != "" {
		_ = json.Unmarshal([]byte(g.Claims), &r)
	}
	return r
}
