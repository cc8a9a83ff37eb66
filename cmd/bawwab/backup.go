package main

import (
	"encoding/json"
	"fmt"
	"io"
	"os"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/adminapi"
)

func (a *app) exportCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "export",
		Short: "Write every user (with second factors) and client, with their hashes, as JSON to standard output (keep it secret)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				b, err := c.Export(cmd.Context())
				if err != nil {
					return err
				}
				enc := json.NewEncoder(cmd.OutOrStdout())
				enc.SetIndent("", "  ")
				return enc.Encode(b)
			})
		},
	}
}

func (a *app) importCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "import FILE",
		Short: "Add the users, clients and upstreams of an export (- for standard input); existing ones are left alone",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			var in io.Reader = cmd.InOrStdin()
			if args[0] != "-" {
				f, err := os.Open(args[0])
				if err != nil {
					return err
				}
				defer f.Close()
				in = f
			}
			var b adminapi.Backup
			if err := json.NewDecoder(in).Decode(&b); err != nil {
				return fmt.Errorf("%s is not an export: %w", args[0], err)
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				n, err := c.Import(cmd.Context(), b)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), n, func(w io.Writer) { printImported(w, n) })
			})
		},
	}
}

// printImported says what an import added and what it left out.
func printImported(w io.Writer, n adminapi.Imported) {
	fmt.Fprintf(w, "users: %d added, %d already there\nclients: %d added, %d already there\n",
		n.UsersAdded, n.UsersSkipped, n.ClientsAdded, n.ClientsSkipped)
	if n.TOTPSkipped > 0 {
		fmt.Fprintf(w, "authenticator apps left out: %d (sealed under another factor-seal key: those users sign in with a recovery code or passkey and set the app up again)\n", n.TOTPSkipped)
	}
	if n.PasskeysSkipped > 0 {
		fmt.Fprintf(w, "passkeys left out: %d (another user has the credential id)\n", n.PasskeysSkipped)
	}
	if n.UpstreamsAdded+n.UpstreamsSkipped+n.LinksAdded+n.LinksSkipped > 0 {
		fmt.Fprintf(w, "upstreams: %d added, %d already there\nupstream links: %d added, %d already there\n",
			n.UpstreamsAdded, n.UpstreamsSkipped, n.LinksAdded, n.LinksSkipped)
	}
	if n.RegistrationTokensAdded+n.RegistrationTokensSkipped > 0 {
		fmt.Fprintf(w, "registration tokens: %d added, %d already there\n", n.RegistrationTokensAdded, n.RegistrationTokensSkipped)
	}
	if n.UpstreamSecretsSkipped > 0 {
		fmt.Fprintf(w, "upstreams added disabled, without their client secret: %d (sealed under another upstream-secret-seal key: set the secret again with upstream update --client-secret-file, then enable them)\n", n.UpstreamSecretsSkipped)
	}
}
