package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"strconv"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/audit"
	"github.com/bawwab/bawwab/internal/granttype"
	"github.com/bawwab/bawwab/internal/jwks"
	"github.com/bawwab/bawwab/internal/mail"
	"github.com/bawwab/bawwab/internal/outbound"
	"github.com/bawwab/bawwab/internal/scope"
	"github.com/bawwab/bawwab/internal/security"
	"github.com/bawwab/bawwab/internal/storage"
)

// withStore opens the configured store for one command.
func (a *app) withStore(ctx context.Context, fn func(storage.Storage) error) error {
	s, err := openStore(ctx, a.cfg)
	if err != nil {
		return err
	}
	defer s.Close()
	return fn(s)
}

// withAdmin runs fn against the admin API: the running server's, with
// --server, or else the configured store's, in process. Both are the same
// API, so every admin command behaves alike either way.
func (a *app) withAdmin(ctx context.Context, fn func(*adminapi.Remote) error) error {
	if a.server != "" {
		if a.cfg.AdminToken == "" {
			return errors.New("--server needs the admin token: set --admin-token or BAWWAB_ADMIN_TOKEN")
		}
		if a.noAdmin {
			return errNoAdminRemote
		}
		remote := adminapi.NewRemote(strings.TrimRight(a.server, "/"), a.cfg.AdminToken)
		remote.Operator = operatorName()
		return fn(remote)
	}
	return a.withStore(ctx, func(s storage.Storage) error {
		keys, err := jwks.New(ctx, s, a.log, time.Now, a.cfg.KeyRetention())
		if err != nil {
			return err
		}
		scopes := scope.NewCatalog() // filled from the store by Load
		if err := scope.Load(ctx, s, scopes); err != nil {
			return err
		}
		allow, err := outbound.ParseAllow(a.cfg.InsecureOutboundAllow)
		if err != nil {
			return err
		}
		fetch := outbound.New(outbound.Options{Allow: allow})
		fetch.Log = a.log
		// Notices go to the outbox, which a running server delivers; a
		// confirmation link needs the server's mail budgets (--server).
		outbox := &mail.Outbox{Store: s, Now: time.Now, TTL: a.cfg.EmailLinkTTL}
		remote := adminapi.Local(&adminapi.API{Store: s, Keys: keys, Scopes: scopes, Password: a.cfg.PasswordParams(),
			Log: a.log, Now: time.Now, Outbound: fetch, Upstreams: a.cfg.Upstreams, NoAdminOK: a.noAdmin,
			Audit:  &audit.Log{Store: s, Log: a.log, Now: time.Now, Retention: a.cfg.AuditRetention},
			Notify: &security.MailNotifier{Store: s, Outbox: outbox, Log: a.log, Product: "bawwab"}})
		remote.Operator = operatorName()
		return fn(remote)
	})
}

// errNoAdminRemote refuses --force with --server: a running server always
// keeps one enabled admin; leaving none is a recovery step on the store.
var errNoAdminRemote = errors.New("--force works only on the store directly (without --server): a running server never leaves the admin console without an enabled admin")

// forceFlag adds --force to cmd, a command that may take the last enabled
// admin away.
func (a *app) forceFlag(cmd *cobra.Command) {
	cmd.Flags().BoolVar(&a.noAdmin, "force", false, "also when the user is the last enabled admin, which leaves no one able to sign in to the admin console: "+
		"refused otherwise, so that admins cannot lock each other out; only on the store directly (without --server), to recover; "+
		"\"bawwab user admin USER\" gives the role again")
}

// operatorName names the person running the command in the audit log of
// what it changes: BAWWAB_OPERATOR, or else the login name.
func operatorName() string {
	for _, v := range []string{"BAWWAB_OPERATOR", "USER", "USERNAME"} {
		if name := os.Getenv(v); name != "" {
			return name
		}
	}
	return ""
}

// show prints v as JSON with --output json, or else as the table that
// rows writes (a header line, then tab-separated rows).
func (a *app) show(out io.Writer, v any, rows func(tw io.Writer)) error {
	if a.output == "json" {
		enc := json.NewEncoder(out)
		enc.SetIndent("", "  ")
		return enc.Encode(v)
	}
	tw := tabwriter.NewWriter(out, 0, 4, 2, ' ', 0)
	rows(tw)
	return tw.Flush()
}

func (a *app) userCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "user", Short: "Manage local users"}
	var in adminapi.NewUser
	var fromStdin bool
	add := &cobra.Command{
		Use:   "add --username NAME [--name \"Full Name\"] [--email ADDRESS]",
		Short: "Add a user; on a terminal it asks for the password twice, without echo",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if in.Password == "" || fromStdin {
				pw, err := readPassword(cmd, fromStdin)
				if err != nil {
					return err
				}
				in.Password = pw
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				u, err := c.CreateUser(cmd.Context(), in)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), u, func(w io.Writer) {
					fmt.Fprintf(w, "user %s added with id %s\n", u.Username, u.ID)
				})
			})
		},
	}
	f := add.Flags()
	f.StringVar(&in.Username, "username", "", "login name (required)")
	f.StringVar(&in.Password, "password", "", "password (stays in shell history)")
	f.BoolVar(&fromStdin, "password-stdin", false, "read the password from standard input (scripts)")
	f.StringVar(&in.Name, "name", "", "display name")
	f.StringVar(&in.Email, "email", "", "email address")
	f.BoolVar(&in.EmailVerified, "email-verified", false, "mark the email address verified")
	f.BoolVar(&in.Admin, "admin", false, "give the user the admin role: they may sign in to the admin console (/console/ on the admin listener)")
	f.StringVar(&in.Picture, "picture", "", "URL of the user's photo")
	list := &cobra.Command{
		Use:   "list",
		Short: "List users",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				users, err := c.ListUsers(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), users, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tUSERNAME\tNAME\tEMAIL")
					for _, u := range users {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", u.ID, u.Username, u.Name, u.Email)
					}
				})
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete USER_ID",
		Short: "Delete a user, its sessions and consents; every token it granted stops working",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if err := c.DeleteUser(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "user %s deleted\n", args[0])
				return nil
			})
		},
	}
	a.forceFlag(del)
	passwd := &cobra.Command{
		Use:   "password USER_ID",
		Short: "Set a user's password (asked twice on a terminal, else read from standard input) and sign the user out everywhere",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			pw, err := readPassword(cmd, false)
			if err != nil {
				return err
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if err := c.SetPassword(cmd.Context(), args[0], pw); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "password of %s set; its sessions ended\n", args[0])
				return nil
			})
		},
	}
	var claims []string
	profile := &cobra.Command{
		Use:     "profile USER_ID --claim NAME=VALUE...",
		Short:   "Change a user's standard claims (OpenID Connect Core 5.1); an empty value removes one",
		Example: "  bawwab user profile 7f3a --claim given_name=Amal --claim phone_number=+962791234567 --claim address.locality=Amman",
		Args:    cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				u, err := c.GetUser(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				next, err := withClaims(adminapi.UserProfile{Name: u.Name, Email: u.Email, EmailVerified: u.EmailVerified, Picture: u.Picture,
					Profile: u.Profile}, claims)
				if err != nil {
					return err
				}
				updated, err := c.UpdateUser(cmd.Context(), args[0], next)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), updated, func(w io.Writer) { fmt.Fprintf(w, "profile of %s updated\n", updated.Username) })
			})
		},
	}
	profile.Flags().StringArrayVar(&claims, "claim", nil, "NAME=VALUE: a standard claim (given_name, phone_number, address.locality, ...)")
	cmd.AddCommand(add, list, del, passwd, profile)
	cmd.AddCommand(a.userFactorCmds()...)
	return cmd
}

func (a *app) clientCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "client", Short: "Manage OAuth clients"}
	var in adminapi.NewClient
	var scopes, jwksFile string
	// prepare fills in from the flags shared by add and update.
	prepare := func() error {
		in.Scopes = strings.Fields(strings.ReplaceAll(scopes, ",", " "))
		if jwksFile != "" {
			raw, err := os.ReadFile(jwksFile)
			if err != nil {
				return err
			}
			in.JWKS, in.AuthMethod = raw, "private_key_jwt"
		}
		if in.JWKSURI != "" {
			in.AuthMethod = "private_key_jwt"
		}
		return nil
	}
	printClient := func(cmd *cobra.Command, created adminapi.CreatedClient) error {
		return a.show(cmd.OutOrStdout(), created, func(w io.Writer) { writeCreatedClient(w, created) })
	}
	add := &cobra.Command{
		Use:   "add",
		Short: "Register a client; a confidential client's secret is printed once",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if err := prepare(); err != nil {
				return err
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				created, err := c.CreateClient(cmd.Context(), in)
				if err != nil {
					return err
				}
				return printClient(cmd, created)
			})
		},
	}
	update := &cobra.Command{
		Use:   "update CLIENT_ID",
		Short: "Replace a client's settings (the secret stays while it stays confidential)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			if err := prepare(); err != nil {
				return err
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				updated, err := c.UpdateClient(cmd.Context(), args[0], in)
				if err != nil {
					return err
				}
				return printClient(cmd, updated)
			})
		},
	}
	for _, c := range []*cobra.Command{add, update} {
		f := c.Flags()
		if c == add {
			f.StringVar(&in.ID, "id", "", "client_id (default: random)")
		}
		f.StringVar(&in.Name, "name", "", "name shown on the consent screen")
		f.BoolVar(&in.Public, "public", false, "public client (no secret; PKCE protects the code)")
		f.StringSliceVar(&in.RedirectURIs, "redirect-uri", nil, "registered redirect URI (repeatable)")
		f.StringSliceVar(&in.GrantTypes, "grant-type", []string{granttype.AuthorizationCode, granttype.RefreshToken}, "allowed grant types")
		f.StringVar(&scopes, "scope", "openid profile email", "scopes the client may ask for")
		f.BoolVar(&in.RequirePAR, "require-par", false, "accept its authorization requests only through /par (RFC 9126)")
		f.StringVar(&jwksFile, "jwks-file", "", "JWK Set file of the client's public keys: it authenticates with private_key_jwt (RFC 7523)")
		f.StringVar(&in.JWKSURI, "jwks-uri", "", "URL of the client's public keys: it authenticates with private_key_jwt (RFC 7523)")
		f.StringVar(&in.Backchannel, "backchannel-logout-uri", "", "URL that receives a logout token when a user of the client signs out")
		f.StringVar(&in.SubjectType, "subject-type", "public", "public, or pairwise: users get a subject identifier of their own for this client")
		f.StringVar(&in.SectorIdentifierURI, "sector-identifier-uri", "", "https URL of a JSON array listing the client's redirect URIs: names the sector of a pairwise client whose redirect URIs are on several hosts (OpenID Connect Core §8.1)")
		f.StringVar(&in.IDTokenAlg, "id-token-alg", "RS256", "signature algorithm of the client's ID tokens: RS256, PS256 or ES256")
		f.StringVar(&in.PKCEPolicy, "pkce-policy", "required", "required, or nonce_instead: this confidential client may send nonce with openid instead of PKCE (RFC 9700 section 2.1.1)")
		f.StringVar(&in.ClientURI, "client-uri", "", "the app's home page, shown on the consent screen (https)")
		f.StringVar(&in.LogoURI, "logo-uri", "", "the app's logo, shown on the consent screen (https)")
		f.StringVar(&in.PolicyURI, "policy-uri", "", "the app's privacy policy (https)")
		f.StringVar(&in.TOSURI, "tos-uri", "", "the app's terms of service (https)")
		f.BoolVar(&in.Verified, "verified", false, "you checked who runs this app; otherwise the consent screen calls it unverified")
		f.BoolVar(&in.DPoPBound, "require-dpop", false, "refuse its token requests without a DPoP proof, so that all its access tokens are DPoP-bound (dpop_bound_access_tokens, RFC 9449 section 5.2)")
		f.BoolVar(&in.SecondFactor, "require-second-factor", false, "every user of this app passes a second factor (an authenticator code or a passkey) at sign-in, whatever the server's second_factor setting")
	}

	list := &cobra.Command{
		Use:   "list",
		Short: "List clients",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				clients, err := c.ListClients(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), clients, func(w io.Writer) { writeClients(w, clients) })
			})
		},
	}
	del := &cobra.Command{
		Use:   "delete CLIENT_ID",
		Short: "Delete a client and revoke everything it was granted",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if err := c.DeleteClient(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "client %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(add, update, list, del)
	return cmd
}

// writeCreatedClient prints a client just added or updated: its id, the
// secret shown once, and whether it must send DPoP proofs.
func writeCreatedClient(w io.Writer, created adminapi.CreatedClient) {
	fmt.Fprintf(w, "client_id:     %s\n", created.ID)
	if created.Secret != "" {
		fmt.Fprintf(w, "client_secret: %s\n(shown once: only its hash is stored)\n", created.Secret)
	}
	if created.DPoPBound {
		fmt.Fprintln(w, "dpop:          required on every token request")
	}
}

// writeClients prints the client list as a table.
func writeClients(w io.Writer, clients []adminapi.Client) {
	fmt.Fprintln(w, "CLIENT_ID\tNAME\tTYPE\tGRANTS\tDPOP\tREDIRECT URIS")
	for _, c := range clients {
		kind, proofs := "confidential", "-"
		if c.Public {
			kind = "public"
		}
		if c.DPoPBound {
			proofs = "required"
		}
		fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\t%s\n", c.ID, c.Name, kind, strings.Join(c.GrantTypes, ","), proofs, strings.Join(c.RedirectURIs, " "))
	}
}

func (a *app) grantCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "grant", Short: "See and revoke what users granted clients"}
	var user, client string
	list := &cobra.Command{
		Use:   "list --user USER | --client CLIENT_ID",
		Short: "List what a user granted each client, or what each user granted a client",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if (user == "") == (client == "") {
				return errors.New("give exactly one of --user and --client")
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if user != "" {
					id, err := userID(cmd.Context(), c, user)
					if err != nil {
						return err
					}
					user = id
				}
				if client != "" {
					grants, err := c.ListClientGrants(cmd.Context(), client)
					if err != nil {
						return err
					}
					return a.show(cmd.OutOrStdout(), grants, func(w io.Writer) {
						fmt.Fprintln(w, "USER_ID\tSCOPES\tSINCE")
						for _, g := range grants {
							fmt.Fprintf(w, "%s\t%s\t%s\n", g.UserID, strings.Join(g.Scopes, " "), g.GrantedAt.Local().Format(time.DateTime))
						}
					})
				}
				grants, err := c.ListGrants(cmd.Context(), user)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), grants, func(w io.Writer) {
					fmt.Fprintln(w, "CLIENT_ID\tCLIENT\tSCOPES\tSINCE")
					for _, g := range grants {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\n", g.ClientID, g.ClientName, strings.Join(g.Scopes, " "), g.GrantedAt.Local().Format(time.DateTime))
					}
				})
			})
		},
	}
	list.Flags().StringVar(&user, "user", "", "user id or username")
	list.Flags().StringVar(&client, "client", "", "client id")
	revokeAll := &cobra.Command{
		Use:   "revoke-all CLIENT_ID",
		Short: "Revoke what every user granted a client; the client stays registered",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				n, err := c.RevokeClientGrants(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked the grants of %d users to %s\n", n, args[0])
				return nil
			})
		},
	}
	revoke := &cobra.Command{
		Use:   "revoke USER CLIENT_ID",
		Short: "Revoke what a user (id or username) granted a client: its tokens stop working at once",
		Args:  cobra.ExactArgs(2),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				id, err := userID(cmd.Context(), c, args[0])
				if err != nil {
					return err
				}
				if err := c.RevokeGrant(cmd.Context(), id, args[1]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "revoked what user %s granted %s\n", args[0], args[1])
				return nil
			})
		},
	}
	cmd.AddCommand(list, revoke, revokeAll)
	return cmd
}

func (a *app) scopeCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "scope", Short: "The scope catalog: what each scope means to users"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List scopes with their English and Arabic descriptions",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				scopes, err := c.ListScopes(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), scopes, func(w io.Writer) {
					fmt.Fprintln(w, "SCOPE\tSENSITIVE\tENGLISH\tARABIC")
					for _, s := range scopes {
						fmt.Fprintf(w, "%s\t%v\t%s\t%s\n", s.Name, s.Sensitive, s.Description["en"], s.Description["ar"])
					}
				})
			})
		},
	}
	var in adminapi.NewScope
	var en, ar, enExplain, arExplain string
	set := &cobra.Command{
		Use:   "set NAME",
		Short: "Create or replace a scope (running servers pick it up within 30 seconds)",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			in.Description = map[string]string{"en": en}
			if ar != "" {
				in.Description["ar"] = ar
			}
			in.Explanation = map[string]string{}
			for lang, e := range map[string]string{"en": enExplain, "ar": arExplain} {
				if e != "" {
					in.Explanation[lang] = e
				}
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				s, err := c.SaveScope(cmd.Context(), args[0], in)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), s, func(w io.Writer) { fmt.Fprintf(w, "scope %s saved\n", s.Name) })
			})
		},
	}
	f := set.Flags()
	f.StringVar(&en, "en", "", "what the scope lets an app do, in English, as users read it (required)")
	f.StringVar(&ar, "ar", "", "the same in Arabic")
	f.StringVar(&enExplain, "en-explain", "", "one line, in English, on what sharing it means (shown under it on the consent screen)")
	f.StringVar(&arExplain, "ar-explain", "", "the same in Arabic")
	f.BoolVar(&in.Sensitive, "sensitive", false, "flag it on the consent screen and leave it unchecked by default")
	f.StringSliceVar(&in.Claims, "claims", nil, "OpenID Connect claims it releases: name, preferred_username, picture, email, email_verified")
	_ = set.MarkFlagRequired("en")
	del := &cobra.Command{
		Use:   "delete NAME",
		Short: "Delete a scope that no client may ask for",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if err := c.DeleteScope(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "scope %s deleted\n", args[0])
				return nil
			})
		},
	}
	cmd.AddCommand(list, set, del)
	return cmd
}

func (a *app) keysCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "keys", Short: "Manage signing keys"}
	list := &cobra.Command{
		Use:   "list",
		Short: "List signing keys, newest first",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				keys, err := c.ListKeys(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), keys, func(w io.Writer) {
					fmt.Fprintln(w, "KID\tALG\tACTIVE\tCREATED")
					for _, k := range keys {
						fmt.Fprintf(w, "%s\t%s\t%v\t%s\n", k.KID, k.Algorithm, k.Active, k.CreatedAt.Local().Format(time.DateTime))
					}
				})
			})
		},
	}
	rotate := &cobra.Command{
		Use:   "rotate",
		Short: "Sign new tokens with a fresh key; old keys stay published until their tokens expire",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				kid, err := c.RotateKeys(cmd.Context())
				if err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "new signing key %s; running servers pick it up within 30 seconds\n", kid)
				return nil
			})
		},
	}
	cmd.AddCommand(list, rotate)
	return cmd
}

// userID returns the id of the user named by id or username.
func userID(ctx context.Context, c *adminapi.Remote, user string) (string, error) {
	users, err := c.ListUsers(ctx)
	if err != nil {
		return "", err
	}
	for _, u := range users {
		if u.ID == user || u.Username == user {
			return u.ID, nil
		}
	}
	return "", fmt.Errorf("no user has the id or username %q (see bawwab user list)", user)
}

// readPassword reads a password: asked twice without echo when standard
// input is a terminal (and fromStdin is not set), else one line of it.
func readPassword(cmd *cobra.Command, fromStdin bool) (string, error) {
	if f, ok := cmd.InOrStdin().(*os.File); ok && !fromStdin && term.IsTerminal(int(f.Fd())) {
		errOut := cmd.ErrOrStderr()
		ask := func(prompt string) (string, error) {
			fmt.Fprint(errOut, prompt)
			b, err := term.ReadPassword(int(f.Fd()))
			fmt.Fprintln(errOut)
			return string(b), err
		}
		pw, err := ask("Password: ")
		if err != nil {
			return "", err
		}
		again, err := ask("Repeat it: ")
		if err != nil {
			return "", err
		}
		if pw != again {
			return "", errors.New("the two passwords differ; nothing was changed")
		}
		return pw, nil
	}
	line, err := bufio.NewReader(cmd.InOrStdin()).ReadString('\n')
	if err != nil && line == "" {
		return "", errors.New("no password given: write it to standard input (or run the command on a terminal to be asked)")
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// withClaims sets NAME=VALUE claims on p through its JSON form, so that
// the names are those of OpenID Connect Core §5.1; address.NAME sets a
// member of the address, and the two *_verified claims take true or false.
func withClaims(p adminapi.UserProfile, claims []string) (adminapi.UserProfile, error) {
	raw, err := json.Marshal(p)
	if err != nil {
		return p, err
	}
	m := map[string]any{}
	if err := json.Unmarshal(raw, &m); err != nil {
		return p, err
	}
	for _, c := range claims {
		name, value, ok := strings.Cut(c, "=")
		if !ok {
			return p, fmt.Errorf("--claim %q: want NAME=VALUE", c)
		}
		var v any = value
		if strings.HasSuffix(name, "_verified") {
			b, err := strconv.ParseBool(value)
			if err != nil {
				return p, fmt.Errorf("--claim %s: want true or false", name)
			}
			v = b
		}
		if member, ok := strings.CutPrefix(name, "address."); ok {
			addr, _ := m["address"].(map[string]any)
			if addr == nil {
				addr = map[string]any{}
			}
			addr[member] = v
			m["address"] = addr
			continue
		}
		m[name] = v
	}
	raw, err = json.Marshal(m)
	if err != nil {
		return p, err
	}
	var out adminapi.UserProfile
	dec := json.NewDecoder(bytes.NewReader(raw))
	dec.DisallowUnknownFields()
	if err := dec.Decode(&out); err != nil {
		return p, fmt.Errorf("--claim: %w", err)
	}
	return out, nil
}
