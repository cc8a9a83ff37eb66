package main

import (
	"encoding/json"
	"fmt"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/storage"
)

func (a *app) auditCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "audit", Short: "Read the audit log"}
	var f storage.AuditFilter
	var since time.Duration
	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List audit events, newest first (logins, consents, tokens, revocations, detected attacks)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if since > 0 {
				f.Since = time.Now().Add(-since)
			}
			return a.withStore(cmd.Context(), func(s storage.Storage) error {
				events, err := s.ListAuditEvents(cmd.Context(), f)
				if err != nil {
					return err
				}
				if asJSON {
					type view struct {
						Time     time.Time `json:"time"`
						Type     string    `json:"type"`
						UserID   string    `json:"user_id,omitempty"`
						ClientID string    `json:"client_id,omitempty"`
						IP       string    `json:"ip,omitempty"`
						Detail   string    `json:"detail,omitempty"`
					}
					out := []view{}
					for _, e := range events {
						out = append(out, view{e.Time, e.Type, e.UserID, e.ClientID, e.IP, e.Detail})
					}
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "TIME\tEVENT\tUSER\tCLIENT\tIP\tDETAIL")
				for _, e := range events {
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\t%s\n", e.Time.Local().Format(time.DateTime), e.Type, e.UserID, e.ClientID, e.IP, e.Detail)
				}
				return tw.Flush()
			})
		},
	}
	fl := list.Flags()
	fl.StringVar(&f.UserID, "user", "", "only events of this user id")
	fl.StringVar(&f.ClientID, "client", "", "only events of this client id")
	fl.StringVar(&f.Type, "type", "", "only events of this type (e.g. login_failed, code_replay)")
	fl.DurationVar(&since, "since", 0, "only events of the last duration (e.g. 24h)")
	fl.IntVar(&f.Limit, "limit", 100, "at most this many events")
	fl.BoolVar(&asJSON, "json", false, "print JSON")
	cmd.AddCommand(list)
	return cmd
}
