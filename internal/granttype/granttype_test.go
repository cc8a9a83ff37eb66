package granttype

import "testing"

// TestWireNames pins the names as the RFCs spell them: they travel on
// the wire and are stored in every client's grant types.
func TestWireNames(t *testing.T) {
	for _, tt := range []struct{ got, want string }{
		{AuthorizationCode, "authorization_code"},                          // RFC 6749 §4.1.3
		{RefreshToken, "refresh_token"},                                    // RFC 6749 §6
		{ClientCredentials, "client_credentials"},                          // RFC 6749 §4.4.2
		{DeviceCode, "urn:ietf:params:oauth:grant-type:device_code"},       // RFC 8628 §3.4
		{TokenExchange, "urn:ietf:params:oauth:grant-type:token-exchange"}, // RFC 8693 §2.1
	} {
		if tt.got != tt.want {
			t.Errorf("got %q, want %q", tt.got, tt.want)
		}
	}
}
