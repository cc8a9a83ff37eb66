package main

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"

	"github.com/bawwab/bawwab/internal/admin"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/server"
	"github.com/bawwab/bawwab/internal/storage"
)

// withStore opens the configured store for one command.
func (a *app) withStore(ctx context.Context, fn func(storage.Storage) error) error {
	s, err := server.OpenStore(ctx, a.cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage local users"}
	var spec admin.UserSpec
	var fromStdin bool
	add := &cobra.Command{
		Use:   "add",
		Short: "Add a user (the password is read from standard input unless --password is given)",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if spec.Password == "" || fromStdin {
				if !fromStdin {
					fmt.Fprint(cmd.ErrOrStderr(), "Password: ")
				}
				line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
				if err != nil && line == "" {
					return errors.New("no password given: use --password or write it to standard input")
				}
				spec.Password = strings.TrimRight(line, "\r\n")
			}
			return a.withStore(cmd.Context(), func(s storage.Storage) error {
				id, err := admin.AddUser(cmd.Context(), s, spec, a.cfg.PasswordParams())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s added with id %s\n", spec.Username, id)
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&spec.Username, "username", "", "login name (required)")
	f.StringVar(&spec.Password, "password", "", "password (visible in shell history: prefer --password-stdin)")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input")
	f.StringVar(&spec.Name, "name", "", "display name")
	f.StringVar(&spec.Email, "email", "", "email address")
	f.BoolVar(&spec.EmailVerified, "email-verified", false, "mark the email address verified")
	f.StringVar(&spec.Picture, "picture", "", "URL of the user's photo")
	_ = add.MarkFlagRequired("username")
	cmd.AddCommand(add)
	return cmd
}

func (a *app) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients"}
	var spec admin.ClientSpec
	var scopes string
	add := &cobra.Command{
		Use:   "add",
		Short: "Register a client; a confidential client's secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			spec.Scopes = strings.Fields(strings.ReplaceAll(scopes, ",", " "))
			return a.withStore(cmd.Context(), func(s storage.Storage) error {
				secret, err := admin.AddClient(cmd.Context(), s, spec, scope.Default())
				if err != nil {
					return err
				}
				out := cmd.OutOrStdout()
				fmt.Fprintf(out, "client_id:     %s\n", spec.ID)
				if secret != "" {
					fmt.Fprintf(out, "client_secret: %s\n(shown once: only its hash is stored)\n", secret)
				}
				return nil
			})
		},
	}
	f := add.Flags()
	f.StringVar(&spec.ID, "id", "", "client_id (default: random)")
	f.StringVar(&spec.Name, "name", "", "name shown on the consent screen")
	f.BoolVar(&spec.Public, "public", false, "public client (no secret; PKCE protects the code)")
	f.StringSliceVar(&spec.RedirectURIs, "redirect-uri", nil, "registered redirect URI (repeatable)")
	f.StringSliceVar(&spec.GrantTypes, "grant-type", nil, "allowed grant types (default authorization_code,refresh_token)")
	f.StringVar(&scopes, "scope", "openid profile email", "scopes the client may ask for")

	var asJSON bool
	list := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s storage.Storage) error {
				clients, err := s.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				if asJSON {
					type view struct {
						ID           string   `json:"client_id"`
						Name         string   `json:"name"`
						Public       bool     `json:"public"`
						RedirectURIs []string `json:"redirect_uris"`
						GrantTypes   []string `json:"grant_types"`
						Scopes       []string `json:"scopes"`
					}
					out := []view{}
					for _, c := range clients {
						out = append(out, view{c.ID, c.Name, c.Public, c.RedirectURIs, c.GrantTypes, c.Scopes})
					}
					enc := json.NewEncoder(cmd.OutOrStdout())
					enc.SetIndent("", "  ")
					return enc.Encode(out)
				}
				tw := tabwriter.NewWriter(cmd.OutOrStdout(), 0, 4, 2, ' ', 0)
				fmt.Fprintln(tw, "CLIENT_ID\tNAME\tTYPE\tGRANTS\tREDIRECT URIS")
				for _, c := range clients {
					kind := "confidential"
					if c.Public {
						kind = "public"
					}
					fmt.Fprintf(tw, "%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, kind, strings.Join(c.GrantTypes, ","), strings.Join(c.RedirectURIs, " "))
				}
				return tw.Flush()
			})
		},
	}
	list.Flags().BoolVar(&asJSON, "json", false, "print JSON")

	del := &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client and revoke everything it was granted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withStore(cmd.Context(), func(s storage.Storage) error {
				if err := s.DeleteClient(cmd.Context(), args[0]); errors.Is(err, storage.ErrNotFound) {
					return fmt.Errorf("no client %q", args[0])
				} else if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "client %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, list, del)
	return cmd
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage signing keys"}
	cmd.AddCommand(&cobra.Command{
		Use:   "rotate",
		Short: "Sign new tokens with a fresh key; old keys stay published until their tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withStore(cmd.Context(), func(s storage.Storage) error {
				m, err := jwks.New(cmd.Context(), s, a.log, time.Now, a.cfg.KeyRetention())
				if err != nil {
					return err
				}
				kid, err := m.Rotate(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s; running servers pick it up within 30 seconds\n", kid)
				return nil
			})
		},
	})
	return cmd
}
