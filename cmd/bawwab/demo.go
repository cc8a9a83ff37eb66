package main

import (
	"fmt"
	"io"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/demo"
)

func (a *app) demoCmd() *cobra.Command {
	var o demo.Options
	cmd := &cobra.Command{
		Use:   "demo",
		Short: "Run the authorization server, the provider's API and two third-party apps, on a fresh embedded database",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			o.Log = a.log
			d, err := demo.Start(cmd.Context(), o)
			if err != nil {
				return err
			}
			printDemo(cmd.OutOrStdout(), d)
			return d.Wait()
		},
	}
	f := cmd.Flags()
	f.StringVar(&o.Host, "host", "localhost", "host name used in the demo's URLs")
	f.IntVar(&o.AuthPort, "auth-port", 8080, "port of the authorization server")
	f.IntVar(&o.APIPort, "api-port", 9090, "port of the provider's API")
	f.IntVar(&o.NotesPort, "notes-port", 3000, "port of the Notes app")
	f.IntVar(&o.GreedyPort, "greedy-port", 3001, "port of the Greedy Games app")
	f.IntVar(&o.CorpPort, "corp-port", 8090, `port of Example Corp, the identity provider behind "Continue with Example Corp"`)
	f.IntVar(&o.ConsolePort, "console-port", 9091, "port of the admin console (on 127.0.0.1)")
	return cmd
}

// printDemo tells the person at the terminal where everything is and whom
// to sign in as.
func printDemo(w io.Writer, d *demo.Demo) {
	fmt.Fprintf(w, `bawwab demo is running.

  Open the Notes app:      %s
  Greedy Games (asks for payment data; its API wants a second step): %s
  Sign in as:              %s / %s   (or "Create an account" on the sign-in page;
                           its mails, links included, appear in this log)
  Connected apps:          %s/account
  Authorization server:    %s   (discovery: %s/.well-known/openid-configuration)
  Provider API:            %s/api/profile, /api/email, /api/files, /api/payment

  Second factors: %s / %s has an authenticator app set up already.
  Add this key to your authenticator app (type it in, or open the URI on your phone):
    key: %s
    URI: %s
  Sign in as %s: after the password, the sign-in asks for the app's six-digit code.

  Admin console:           %s   (sign in as %s, with the app's code)
`, d.NotesURL, d.GreedyURL, demo.Username, demo.Password, d.AuthURL, d.AuthURL, d.AuthURL, d.APIURL,
		demo.FactorUsername, demo.FactorPassword, d.TOTPKey, d.TOTPURI, demo.FactorUsername, d.ConsoleURL, demo.FactorUsername)
	fmt.Fprintf(w, `
  Continue with %s: sign in there as %s / %s
                           (a second bawwab at %s, on the sign-in page's
                           "Continue with" button; the first sign-in makes an account here)
`, demo.CorpNameEN, demo.CorpUsername, demo.CorpPassword, d.Corp.Issuer)
	if d.PasskeysOn {
		fmt.Fprintf(w, `  Passkeys: signed in, open %s/account/security and click "Add a passkey";
  sign out, and the sign-in page offers the passkey instead of a password.
`, d.AuthURL)
	} else {
		fmt.Fprintln(w, `  Passkeys are off: WebAuthn refuses an IP address as the server's name; use --host localhost.`)
	}
	fmt.Fprintln(w, `
Press Ctrl+C to stop. Everything is forgotten when the demo stops.`)
}
