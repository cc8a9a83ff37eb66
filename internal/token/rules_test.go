package token

import (
	"net/url"
	"slices"
	"testing"
	"time"

	"github.com/bawwab/bawwab/internal/dpop"
	"github.com/bawwab/bawwab/internal/oautherr"
	"github.com/bawwab/bawwab/internal/storage"
)

// The tests of this file pin the rules the grants are made of, one table
// per rule; grants_table_test.go pins them again through POST /token.

// TestNarrowResources: a token request may narrow the resources of its
// authorization request, never add to them (RFC 8707 §2.2).
func TestNarrowResources(t *testing.T) {
	tests := []struct {
		name              string
		audience, granted []string
		want              []string
		wantCode          string
	}{
		{"none granted, none asked", nil, nil, nil, ""},
		{"none granted: the asked stand", []string{"a"}, nil, []string{"a"}, ""},
		{"granted, none asked: all granted", nil, []string{"a", "b"}, []string{"a", "b"}, ""},
		{"narrowed", []string{"b"}, []string{"a", "b"}, []string{"b"}, ""},
		{"one added", []string{"a", "c"}, []string{"a", "b"}, nil, oautherr.InvalidTarget},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := narrowResources(tt.audience, tt.granted)
			if tt.wantCode == "" && err != nil || tt.wantCode != "" && oautherr.Code(err) != tt.wantCode {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestNarrowScopes: a refresh may narrow the granted scopes, never widen
// them (RFC 6749 §6).
func TestNarrowScopes(t *testing.T) {
	granted := []string{"openid", "offline_access", "files.read"}
	tests := []struct {
		name     string
		asked    []string
		want     []string
		wantCode string
	}{
		{"none asked: all granted", nil, granted, ""},
		{"narrowed", []string{"files.read"}, []string{"files.read"}, ""},
		{"widened", []string{"files.read", "files.write"}, nil, oautherr.InvalidScope},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			got, err := narrowScopes(tt.asked, granted)
			if tt.wantCode != "" && oautherr.Code(err) != tt.wantCode || tt.wantCode == "" && err != nil {
				t.Fatalf("error %v, want code %q", err, tt.wantCode)
			}
			if !slices.Equal(got, tt.want) {
				t.Fatalf("got %q, want %q", got, tt.want)
			}
		})
	}
}

// TestCheckPoll: the answers to a device's poll (RFC 8628 §3.5), in their
// order of precedence.
func TestCheckPoll(t *testing.T) {
	now := time.Unix(1_800_000_000, 0)
	client := &storage.Client{ID: "tv"}
	approved := storage.DeviceCode{ClientID: "tv", ExpiresAt: now.Add(time.Minute), Interval: 5, Status: storage.DeviceApproved}
	with := func(f func(*storage.DeviceCode)) *storage.DeviceCode {
		d := approved
		f(&d)
		return &d
	}
	tests := []struct {
		name     string
		d        *storage.DeviceCode
		wantCode string
	}{
		{"approved", &approved, ""},
		{"another client's", with(func(d *storage.DeviceCode) { d.ClientID = "other"; d.Status = storage.DevicePending }), oautherr.InvalidGrant},
		{"expired", with(func(d *storage.DeviceCode) { d.ExpiresAt = now; d.Status = storage.DevicePending }), oautherr.ExpiredToken},
		{"too fast", with(func(d *storage.DeviceCode) { d.LastPoll = now.Add(-3 * time.Second) }), oautherr.SlowDown},
		{"just in time, with leeway", with(func(d *storage.DeviceCode) { d.LastPoll = now.Add(-4 * time.Second) }), ""},
		{"pending", with(func(d *storage.DeviceCode) { d.Status = storage.DevicePending }), oautherr.AuthorizationPending},
		{"denied", with(func(d *storage.DeviceCode) { d.Status = storage.DeviceDenied }), oautherr.AccessDenied},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkPoll(tt.d, client, now)
			if tt.wantCode == "" && err != nil || tt.wantCode != "" && oautherr.Code(err) != tt.wantCode {
				t.Fatalf("checkPoll = %v, want code %q", err, tt.wantCode)
			}
		})
	}
}

// TestCheckCodeBinding: a code bound to a DPoP key (dpop_jkt, RFC 9449
// §10) is redeemed only with a proof of that key.
func TestCheckCodeBinding(t *testing.T) {
	tests := []struct {
		name    string
		jkt     string
		proof   *dpop.Proof
		wantErr bool
	}{
		{"unbound, no proof", "", nil, false},
		{"unbound, a proof", "", &dpop.Proof{JKT: "k"}, false},
		{"bound, no proof", "k", nil, true},
		{"bound, another key", "k", &dpop.Proof{JKT: "other"}, true},
		{"bound, its key", "k", &dpop.Proof{JKT: "k"}, false},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkCodeBinding(&Request{Proof: tt.proof}, &storage.AuthCode{DPoPJKT: tt.jkt})
			if (err != nil) != tt.wantErr || err != nil && oautherr.Code(err) != oautherr.InvalidGrant {
				t.Fatalf("checkCodeBinding = %v, wantErr %v", err, tt.wantErr)
			}
		})
	}
}

// TestCheckExchangeParams: the request checks of RFC 8693 §2.1, before any
// token is read.
func TestCheckExchangeParams(t *testing.T) {
	ok := url.Values{"subject_token": {"t"}, "subject_token_type": {AccessTokenType}}
	with := func(k, v string) url.Values {
		f := url.Values{}
		for key, vals := range ok {
			f[key] = vals
		}
		f.Set(k, v)
		return f
	}
	tests := []struct {
		name     string
		public   bool
		form     url.Values
		wantCode string
	}{
		{"complete", false, ok, ""},
		{"public client", true, ok, oautherr.UnauthorizedClient},
		{"no subject_token", false, url.Values{"subject_token_type": {AccessTokenType}}, oautherr.InvalidRequest},
		{"another subject_token_type", false, with("subject_token_type", "urn:ietf:params:oauth:token-type:id_token"), oautherr.InvalidRequest},
		{"actor_token without its type", false, with("actor_token", "a"), oautherr.InvalidRequest},
		{"actor_token_type without its token", false, with("actor_token_type", AccessTokenType), oautherr.InvalidRequest},
		{"another requested_token_type", false, with("requested_token_type", "urn:ietf:params:oauth:token-type:refresh_token"), oautherr.InvalidRequest},
		{"requested access token", false, with("requested_token_type", AccessTokenType), ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := checkExchangeParams(&Request{Form: tt.form, Client: &storage.Client{ID: "c", Public: tt.public}})
			if tt.wantCode == "" && err != nil || tt.wantCode != "" && oautherr.Code(err) != tt.wantCode {
				t.Fatalf("checkExchangeParams = %v, want code %q", err, tt.wantCode)
			}
		})
	}
}
