package main

import (
	"encoding/json"
	"errors"
	"fmt"
	"net/http"
	"strings"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/oauth2"
)

// deviceLoginCmd is an example device client (RFC 8628) built on
// golang.org/x/oauth2: it asks for a code, shows where to enter it, and
// polls until the user has decided.
func (a *app) deviceLoginCmd() *cobra.Command {
	var issuer, clientID, scopes string
	cmd := &cobra.Command{
		Use:   "device-login",
		Short: "Sign in from a device without a browser (RFC 8628): prints a code to enter elsewhere, then waits for the tokens",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			ctx := cmd.Context()
			if issuer == "" {
				issuer = a.cfg.Issuer
			}
			var meta struct {
				Issuer         string `json:"issuer"`
				DeviceEndpoint string `json:"device_authorization_endpoint"`
				TokenEndpoint  string `json:"token_endpoint"`
			}
			resp, err := http.Get(strings.TrimRight(issuer, "/") + "/.well-known/oauth-authorization-server")
			if err != nil {
				return fmt.Errorf("discovery: %w", err)
			}
			err = json.NewDecoder(resp.Body).Decode(&meta)
			resp.Body.Close()
			if err != nil || meta.DeviceEndpoint == "" {
				return fmt.Errorf("%s does not advertise a device_authorization_endpoint", issuer)
			}
			conf := &oauth2.Config{ClientID: clientID, Scopes: strings.Fields(scopes),
				Endpoint: oauth2.Endpoint{DeviceAuthURL: meta.DeviceEndpoint, TokenURL: meta.TokenEndpoint, AuthStyle: oauth2.AuthStyleInParams}}
			da, err := conf.DeviceAuth(ctx)
			if err != nil {
				return fmt.Errorf("device authorization: %w", err)
			}
			out := cmd.ErrOrStderr()
			fmt.Fprintf(out, "To sign in, open %s\nand enter the code %s\n(or open %s)\nWaiting", da.VerificationURI, da.UserCode, da.VerificationURIComplete)
			stop := make(chan struct{})
			go func() { // a dot every interval, to show it is alive
				t := time.NewTicker(time.Duration(max(da.Interval, 1)) * time.Second)
				defer t.Stop()
				for {
					select {
					case <-stop:
						return
					case <-t.C:
						fmt.Fprint(out, ".")
					}
				}
			}()
			tok, err := conf.DeviceAccessToken(ctx, da)
			close(stop)
			fmt.Fprintln(out)
			if err != nil {
				var re *oauth2.RetrieveError
				if errors.As(err, &re) {
					return fmt.Errorf("not signed in: %s (%s)", re.ErrorCode, re.ErrorDescription)
				}
				return fmt.Errorf("not signed in: %w", err)
			}
			view := map[string]any{"access_token": tok.AccessToken, "token_type": tok.TokenType, "expiry": tok.Expiry,
				"refresh_token": tok.RefreshToken, "scope": tok.Extra("scope"), "id_token": tok.Extra("id_token")}
			if a.output == "json" {
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(view)
			}
			fmt.Fprintf(cmd.OutOrStdout(), "signed in: scope %v, access token valid until %s\n", tok.Extra("scope"), tok.Expiry.Local().Format(time.DateTime))
			return nil
		},
	}
	f := cmd.Flags()
	f.StringVar(&issuer, "issuer-url", "", "authorization server (default: the configured issuer)")
	f.StringVar(&clientID, "client-id", "", "a client allowed the device_code grant (required)")
	f.StringVar(&scopes, "scope", "openid profile email offline_access", "scopes to ask for")
	_ = cmd.MarkFlagRequired("client-id")
	return cmd
}
