package main

import (
	"fmt"
	"io"
	"time"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/storage"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log"}
	var f storage.AuditFilter
	var since time.Duration
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first (logins, consents, tokens, revocations, detected attacks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				events, err := c.ListAudit(cmd.Context(), f)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), events, func(w io.Writer) {
					fmt.Fprintln(w, "TIME\tEVENT\tUSER\tCLIENT\tIP\tDETAIL")
					for _, e := range events {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Type, e.UserID, e.ClientID, e.IP, e.Detail)
					}
				})
			})
		},
	}
	fl := list.Flags()
	fl.StringVar(&f.UserID, "user", "", "only events of this user id")
	fl.StringVar(&f.ClientID, "client", "", "only events of this client id")
	fl.StringVar(&f.Type, "type", "", "only events of this type (e.g. login_failed, code_replay)")
	fl.StringVar(&f.Upstream, "upstream", "", "only events naming this upstream id: sign-ins through it, its refusals, its changes")
	fl.DurationVar(&since, "since", 0, "only events of the last duration (e.g. 24h)")
	fl.IntVar(&f.Limit, "limit", 100, "at most this many events")
	cmd.AddCommand(list)
	return cmd
}
