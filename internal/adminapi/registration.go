package adminapi

import "net/http"

// Registration is the policy of dynamic client registration (RFC 7591)
// as the configuration file sets it: the mode (off, open, or token: an
// initial access token needed) and whether that token is set; never the
// token itself.
type Registration struct {
	Mode     string `json:"mode"`
	TokenSet bool   `json:"initial_access_token_set"`
	// PKCE is required, or nonce_instead (a registering confidential
	// client may ask to send a nonce instead).
	PKCE string `json:"pkce"`
}

func (a *API) registrationPolicy(w http.ResponseWriter, _ *http.Request) error {
	p := a.Registration
	if p.Mode == "" {
		p.Mode = "off"
	}
	if p.PKCE == "" {
		p.PKCE = "required"
	}
	return writeJSON(w, http.StatusOK, p)
}
