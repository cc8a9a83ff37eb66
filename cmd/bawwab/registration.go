package main

import (
	"errors"
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/adminapi"
)

// registrationCmd manages the initial access tokens of dynamic client
// registration (RFC 7591 §3), which registration: token asks for.
func (a *app) registrationCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "registration", Short: "Manage dynamic client registration (RFC 7591): its initial access tokens"}
	tok := &cobra.Command{Use: "token", Short: "Issue, list and revoke initial access tokens (registration: token)"}
	tok.AddCommand(a.registrationCreateCmd(), a.registrationListCmd(), a.registrationRevokeCmd())
	cmd.AddCommand(tok)
	return cmd
}

func (a *app) registrationCreateCmd() *cobra.Command {
	var label string
	var expires time.Duration
	var maxUses int
	cmd := &cobra.Command{
		Use:   "create [--label L] [--expires 24h] [--max-uses N]",
		Short: "Issue an initial access token; it is shown this once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if expires < 0 || expires%time.Second != 0 {
				return errors.New("--expires must be a whole number of seconds or more, e.g. 24h")
			}
			in := adminapi.NewRegistrationToken{Label: label, ExpiresIn: int64(expires / time.Second), MaxUses: maxUses}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				t, err := c.CreateRegistrationToken(cmd.Context(), in)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), t, func(w io.Writer) {
					fmt.Fprintf(w, "id:\t%s\ntoken:\t%s\nexpires:\t%s\nmax uses:\t%s\n", t.ID, t.Token, expiry(t), limit(t.MaxUses))
					fmt.Fprintln(w, "The token is shown this once; a client sends it as Authorization: Bearer <token> to /register.")
				})
			})
		},
	}
	f := cmd.Flags()
	f.StringVar(&label, "label", "", "whom or what the token is for")
	f.DurationVar(&expires, "expires", 0, "lifetime, e.g. 24h (default: no expiry)")
	f.IntVar(&maxUses, "max-uses", 0, "how many clients it may register (default 0: no limit)")
	return cmd
}

func expiry(t adminapi.RegistrationToken) string {
	if t.ExpiresAt == nil {
		return "never"
	}
	return t.ExpiresAt.UTC().Format(time.RFC3339)
}

func limit(n int) string {
	if n == 0 {
		return "no limit"
	}
	return fmt.Sprint(n)
}

func (a *app) registrationListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the initial access tokens, newest first (never the tokens)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				list, err := c.ListRegistrationTokens(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), list, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tLABEL\tSTATE\tUSES\tMAX_USES\tEXPIRES\tCREATED\tBY")
					for _, t := range list {
						fmt.Fprintf(w, "%s\t%s\t%s\t%d\t%s\t%s\t%s\t%s\n", t.ID, t.Label, t.State, t.Uses, limit(t.MaxUses), expiry(t),
							t.CreatedAt.UTC().Format(time.RFC3339), t.CreatedBy)
					}
				})
			})
		},
	}
}

func (a *app) registrationRevokeCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "revoke ID",
		Short: "Revoke an initial access token; the clients it registered stay",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if err := c.RevokeRegistrationToken(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "initial access token %s revoked\n", args[0])
				return nil
			})
		},
	}
}
