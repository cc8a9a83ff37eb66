package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/adminapi"
)

// userFactorCmds are the user subcommands of an operator helping or
// stopping a person: second factors, disabling, confirmation mail and the
// sign-in throttle. Each names the user by id or username.
func (a *app) userFactorCmds() []*cobra.Command {
	// onUser runs fn with the id of the user named by args[0].
	onUser := func(fn func(cmd *cobra.Command, c *adminapi.Remote, id string) error) func(*cobra.Command, []string) error {
		return func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				id, err := userID(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				return fn(cmd, c, id)
			})
		}
	}
	say := func(cmd *cobra.Command, format string, args ...any) error {
		_, err := fmt.Fprintf(cmd.OutOrStdout(), format+"\n", args...)
		return err
	}
	factorsCmd := &cobra.Command{
		Use:   "factors USER",
		Short: "List a user's second factors (never their secrets)",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			f, err := c.Factors(cmd.Context(), id)
			if err != nil {
				return err
			}
			return a.show(cmd.OutOrStdout(), f, func(w io.Writer) { printFactors(w, f) })
		}),
	}
	var passkey string
	reset := &cobra.Command{
		Use:   "reset-mfa USER [--passkey ID]",
		Short: "Remove a user's second factors (or one passkey), end its sessions and mail it a notice",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			if err := c.ResetFactors(cmd.Context(), id, passkey); err != nil {
				return err
			}
			if passkey != "" {
				return say(cmd, "passkey %s of %s removed; its sessions ended", passkey, args0(cmd))
			}
			return say(cmd, "second factors of %s removed; its sessions ended", args0(cmd))
		}),
	}
	reset.Flags().StringVar(&passkey, "passkey", "", "remove only the passkey with this id (see user factors)")
	var reason string
	disable := &cobra.Command{
		Use:   "disable USER [--reason TEXT]",
		Short: "Stop a user signing in: its sessions end and its tokens stop working",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			if _, err := c.DisableUser(cmd.Context(), id, reason); err != nil {
				return err
			}
			return say(cmd, "user %s disabled", args0(cmd))
		}),
	}
	disable.Flags().StringVar(&reason, "reason", "", "why, for the audit log")
	a.forceFlag(disable)
	enable := &cobra.Command{
		Use:   "enable USER",
		Short: "Let a disabled user sign in again (its old tokens stay revoked)",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			if _, err := c.EnableUser(cmd.Context(), id); err != nil {
				return err
			}
			return say(cmd, "user %s enabled", args0(cmd))
		}),
	}
	resend := &cobra.Command{
		Use:   "resend-verification USER",
		Short: "Mail a user's unconfirmed address a new confirmation link (needs --server)",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			if err := c.ResendVerification(cmd.Context(), id); err != nil {
				return err
			}
			return say(cmd, "confirmation link for %s queued", args0(cmd))
		}),
	}
	unlock := &cobra.Command{
		Use:   "unlock USER",
		Short: "Lift the throttle of failed sign-ins at a user's account",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			if err := c.Unlock(cmd.Context(), id); err != nil {
				return err
			}
			return say(cmd, "user %s may sign in again at once", args0(cmd))
		}),
	}
	var off bool
	role := &cobra.Command{
		Use:   "admin USER [--off [--force]]",
		Short: "Give a user the admin role (the admin console lets them in), or take it with --off",
		Args:  cobra.ExactArgs(1),
		RunE: onUser(func(cmd *cobra.Command, c *adminapi.Remote, id string) error {
			if _, err := c.SetAdmin(cmd.Context(), id, !off); err != nil {
				return err
			}
			if off {
				return say(cmd, "user %s is no admin", args0(cmd))
			}
			return say(cmd, "user %s is an admin", args0(cmd))
		}),
	}
	role.Flags().BoolVar(&off, "off", false, "take the role (and end the user's sessions)")
	a.forceFlag(role)
	return []*cobra.Command{factorsCmd, reset, disable, enable, resend, unlock, role}
}

// args0 is the user as the command line named it.
func args0(cmd *cobra.Command) string {
	if args := cmd.Flags().Args(); len(args) > 0 {
		return args[0]
	}
	return ""
}

// printFactors writes f as a table.
func printFactors(w io.Writer, f adminapi.Factors) {
	fmt.Fprintln(w, "FACTOR\tID\tNAME\tCREATED\tLAST USED")
	if f.TOTP != nil {
		state := "authenticator app"
		if f.TOTP.ConfirmedAt.IsZero() {
			state += " (setup not finished)"
		}
		fmt.Fprintf(w, "totp\t-\t%s\t%s\t-\n", state, localTime(f.TOTP.CreatedAt))
	}
	fmt.Fprintf(w, "recovery codes\t-\t%d left\t-\t-\n", f.RecoveryCodes)
	for _, p := range f.Passkeys {
		fmt.Fprintf(w, "passkey\t%s\t%s\t%s\t%s\n", p.ID, p.Name, localTime(p.CreatedAt), localTime(p.LastUsedAt))
	}
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "-"
	}
	return t.Local().Format(time.DateTime)
}
