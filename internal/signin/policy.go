package signin

import (
	"encoding/json"
	"slices"
	"strings"
	"time"

	"github.com/bawwab/bawwab/internal/storage"
)

// Policy decides which kinds of step a sign-in needs. The zero Policy asks
// for a first factor only, as bawwab always has.
type Policy struct {
	// SecondFactor asks everyone signing in to an app for a second factor
	// (the operator's policy). A sign-in to the account pages alone is
	// spared, so that someone without a second factor can reach the
	// Security page and set one up.
	SecondFactor bool
	// SecondFactorClients are the clients whose users always pass a
	// second factor (besides those whose Client.SecondFactor is set).
	SecondFactorClients []string
	// SensitiveScopes are the scopes that need a second factor when a
	// request asks for one of them.
	SensitiveScopes []string
	// AskEnrolled asks a second factor of everyone who enrolled one (an
	// authenticator app, a passkey), whatever the request: a factor the
	// person set up protects every sign-in, not only those a client asks
	// to protect. A sign-in to the account pages, where factors are
	// managed, asks an enrolled factor whatever AskEnrolled says: a
	// password alone must not mint the second factor an app asks for.
	AskEnrolled bool
	// EnrolledClients are the clients whose users pass a second factor
	// whenever they enrolled one, whatever AskEnrolled says (the admin
	// console): as AskEnrolled, for these clients only.
	EnrolledClients []string
}

// asksEnrolled reports whether d asks a second factor of whoever enrolled
// one.
func (p Policy) asksEnrolled(d Demand) bool {
	return p.AskEnrolled || d.Account || d.ClientID != "" && slices.Contains(p.EnrolledClients, d.ClientID)
}

// Demand is what one authorization request asks of sign-in.
type Demand struct {
	ClientID string
	// Client says the client wants a second factor of all its users
	// (storage.Client.SecondFactor).
	Client bool
	Scopes []string
	// ACRValues are the request's acr_values, most preferred first
	// (OpenID Connect Core §3.1.2.1): voluntary, so a second factor is
	// needed only when [ACRMFA] comes before [ACRPassword]; values bawwab
	// does not know are passed over.
	ACRValues []string
	// EssentialACR are the values of an essential acr claim (Core
	// §5.5.1.1): one of them must be met.
	EssentialACR []string
	// MaxAge is the request's max_age in seconds, -1 when absent
	// (Core §3.1.2.1): proofs older than that count for nothing, but
	// for those made since Created.
	MaxAge int
	// Created is when the request was made: a proof made since then is
	// the re-authentication max_age asks for, however long the person
	// then takes on the consent page (max_age=0 would otherwise never
	// be met by a sign-in that takes time).
	Created time.Time
	// Since is set for prompt=login: proofs from before it count for
	// nothing (Core §3.1.2.1).
	Since time.Time
	// Enrolled says the person identified so far enrolled a second
	// factor (the pipeline sets it under Policy.AskEnrolled, for
	// Policy.EnrolledClients, and for Account).
	Enrolled bool
	// Account is a sign-in to the account pages (no request).
	Account bool
}

// DemandOf reads the demand of a pending request; nil (a sign-in to the
// account pages) demands a first factor only.
func DemandOf(req *storage.AuthRequest) Demand {
	if req == nil {
		return Demand{MaxAge: -1, Account: true}
	}
	d := Demand{ClientID: req.ClientID, Scopes: req.Scopes, MaxAge: req.MaxAge, EssentialACR: essentialACR(req.Claims),
		ACRValues: strings.Fields(req.ACRValues), Created: req.CreatedAt}
	if slices.Contains(strings.Fields(req.Prompt), "login") {
		d.Since = req.CreatedAt
	}
	return d
}

// DemandFor is DemandOf with what client asks of every sign-in.
func DemandFor(req *storage.AuthRequest, client *storage.Client) Demand {
	d := DemandOf(req)
	d.Client = req != nil && client != nil && client.SecondFactor
	return d
}

// essentialACR returns the values of an essential acr claim in a claims
// parameter (OpenID Connect Core §5.5.1.1), for the ID token or userinfo.
func essentialACR(raw string) []string {
	var req map[string]map[string]*struct {
		Essential bool     `json:"essential"`
		Value     string   `json:"value"`
		Values    []string `json:"values"`
	}
	if raw == "" || json.Unmarshal([]byte(raw), &req) != nil {
		return nil
	}
	var out []string
	for _, claims := range req {
		if acr := claims["acr"]; acr != nil && acr.Essential {
			for _, v := range append(slices.Clone(acr.Values), acr.Value) {
				if v != "" && !slices.Contains(out, v) {
					out = append(out, v)
				}
			}
		}
	}
	return out
}

// Needed returns the kinds of step that d still needs, first factor
// first, given what was proved and when.
func (p Policy) Needed(d Demand, proved []Proof, now time.Time) []Kind {
	var out []Kind
	if !d.holds(FirstFactor, proved, now) {
		out = append(out, FirstFactor)
	}
	if p.wantsSecond(d) && !d.holds(SecondFactor, proved, now) {
		out = append(out, SecondFactor)
	}
	return out
}

// wantsSecond reports whether d needs a second factor under p.
func (p Policy) wantsSecond(d Demand) bool {
	switch {
	case p.SecondFactor && d.ClientID != "", d.Client, d.Enrolled && p.asksEnrolled(d):
		return true
	case d.ClientID != "" && slices.Contains(p.SecondFactorClients, d.ClientID):
		return true
	case slices.ContainsFunc(d.Scopes, func(s string) bool { return slices.Contains(p.SensitiveScopes, s) }):
		return true
	case preferred(d.ACRValues) == ACRMFA:
		return true
	}
	return len(d.EssentialACR) > 0 && slices.Contains(d.EssentialACR, ACRMFA) && !slices.Contains(d.EssentialACR, ACRPassword)
}

// preferred returns the first of acrValues that bawwab reaches, or "".
func preferred(acrValues []string) string {
	for _, v := range acrValues {
		if v == ACRMFA || v == ACRPassword {
			return v
		}
	}
	return ""
}

// holds reports whether a proof of kind k is fresh enough for d.
func (d Demand) holds(k Kind, proved []Proof, now time.Time) bool {
	return slices.ContainsFunc(proved, func(pr Proof) bool { return pr.Kind == k && d.fresh(pr, now) })
}

// fresh reports whether pr is recent enough for d's max_age and
// prompt=login. Stored times keep whole seconds: a proof of the second
// the request was made counts as made for it.
func (d Demand) fresh(pr Proof, now time.Time) bool {
	switch {
	case pr.At.Before(d.Since):
		return false
	case d.MaxAge < 0, !d.Created.IsZero() && !pr.At.Before(d.Created.Truncate(time.Second)):
		return true
	}
	return now.Sub(pr.At) <= time.Duration(d.MaxAge)*time.Second
}
