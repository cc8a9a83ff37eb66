// Package granttype names the grant types bawwab knows, as they travel in
// grant_type at the token endpoint (RFC 6749 §4) and in a client's
// grant_types metadata (RFC 7591 §2).
package granttype

// The grant types, by the RFC that defines each.
const (
	// AuthorizationCode is the authorization code grant (RFC 6749 §4.1.3).
	AuthorizationCode = "authorization_code"
	// RefreshToken is the refresh token grant (RFC 6749 §6).
	RefreshToken = "refresh_token"
	// ClientCredentials is the client credentials grant (RFC 6749 §4.4.2).
	ClientCredentials = "client_credentials"
	// DeviceCode is the device authorization grant (RFC 8628 §3.4).
	DeviceCode = "urn:ietf:params:oauth:grant-type:device_code"
	// TokenExchange is the token exchange grant (RFC 8693 §2.1).
	TokenExchange = "urn:ietf:params:oauth:grant-type:token-exchange"
)
