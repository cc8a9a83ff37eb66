package main

import (
	"bufio"
	"fmt"
	"io"
	"os"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bawwab/bawwab/internal/adminapi"
	"github.com/bawwab/bawwab/internal/upstream"
)

// upstreamFlags are the settings of an upstream on the command line.
type upstreamFlags struct {
	in                         adminapi.NewUpstream
	nameEN, nameAR, secretFile string
	preset                     string
	claims                     map[string]string
	noJIT, disabled, adopt     bool
	scopes, domains            []string
}

func (u *upstreamFlags) register(f *pflag.FlagSet, add bool) {
	if add {
		f.StringVar(&u.in.ID, "id", "", "the upstream's id: lowercase letters, digits and '-' (in its callback URL, /upstream/ID/callback)")
		f.BoolVar(&u.adopt, "adopt-links", false, "take over the accounts linked to an earlier upstream of this id (one moved from the config file): only for the same provider")
	}
	f.StringVar(&u.preset, "preset", "", "google or github: fills in the type, URLs, scopes and claim mapping")
	f.StringVar(&u.in.Type, "type", "", "oidc (discovery from --oidc-issuer) or oauth2 (--auth-url, --token-url, --userinfo-url)")
	f.StringVar(&u.nameEN, "name", "", "the button's label in English")
	f.StringVar(&u.nameAR, "name-ar", "", "the button's label in Arabic")
	f.StringVar(&u.in.Issuer, "oidc-issuer", "", "an OpenID Connect upstream's issuer URL (discovery)")
	f.StringVar(&u.in.AuthURL, "auth-url", "", "an OAuth 2.0 upstream's authorization endpoint")
	f.StringVar(&u.in.TokenURL, "token-url", "", "an OAuth 2.0 upstream's token endpoint")
	f.StringVar(&u.in.UserinfoURL, "userinfo-url", "", "an OAuth 2.0 upstream's userinfo URL")
	f.StringVar(&u.in.EmailsURL, "emails-url", "", "GitHub-shaped list of the person's verified addresses")
	f.StringVar(&u.in.ClientID, "client-id", "", "bawwab's client_id at the upstream")
	f.StringVar(&u.secretFile, "client-secret-file", "", "file holding bawwab's client secret at the upstream, - for standard input (sealed at rest, never shown)")
	f.StringSliceVar(&u.scopes, "scope", nil, "scopes to ask the upstream for (default: the preset's or type's)")
	f.StringToStringVar(&u.claims, "claim", nil, "claim mapping, e.g. --claim subject=id,username=login (subject, username, email, email_verified, name)")
	f.StringSliceVar(&u.domains, "allowed-domain", nil, "only verified addresses of these domains may sign in (repeatable)")
	f.BoolVar(&u.noJIT, "no-jit", false, "never create an account at a first sign-in: only linked accounts sign in")
	f.BoolVar(&u.disabled, "disabled", false, "keep it off the login page")
	f.StringVar(&u.in.Icon, "icon", "", "the button's image: google or github (served by bawwab), an https URL, or a data: URI of an image")
}

// apply sets what the flags given on cmd say on c (add: every flag).
func (u *upstreamFlags) apply(cmd *cobra.Command, c *adminapi.NewUpstream) error {
	f := cmd.Flags()
	set := func(name string, dst *string, v string) {
		if f.Changed(name) {
			*dst = v
		}
	}
	for name, p := range map[string][2]*string{"type": {&c.Type, &u.in.Type}, "oidc-issuer": {&c.Issuer, &u.in.Issuer},
		"auth-url": {&c.AuthURL, &u.in.AuthURL}, "token-url": {&c.TokenURL, &u.in.TokenURL},
		"userinfo-url": {&c.UserinfoURL, &u.in.UserinfoURL}, "emails-url": {&c.EmailsURL, &u.in.EmailsURL},
		"client-id": {&c.ClientID, &u.in.ClientID}, "icon": {&c.Icon, &u.in.Icon}} {
		set(name, p[0], *p[1])
	}
	if u.preset != "" {
		if u.preset != upstream.TypeGoogle && u.preset != upstream.TypeGitHub {
			return fmt.Errorf("--preset %q must be google or github", u.preset)
		}
		c.Type = u.preset
	}
	u.applyName(cmd, c)
	if f.Changed("scope") {
		c.Scopes = u.scopes
	}
	if f.Changed("allowed-domain") {
		c.AllowedDomains = u.domains
	}
	if err := u.applyClaims(c); err != nil {
		return err
	}
	if f.Changed("no-jit") {
		jit := !u.noJIT
		c.JIT = &jit
	}
	if f.Changed("disabled") {
		on := !u.disabled
		c.Enabled = &on
	}
	return u.readSecret(cmd, c)
}

func (u *upstreamFlags) applyName(cmd *cobra.Command, c *adminapi.NewUpstream) {
	if c.Name == nil {
		c.Name = map[string]string{}
	}
	if cmd.Flags().Changed("name") {
		c.Name["en"] = u.nameEN
	}
	if cmd.Flags().Changed("name-ar") {
		c.Name["ar"] = u.nameAR
	}
}

func (u *upstreamFlags) applyClaims(c *adminapi.NewUpstream) error {
	for k, v := range u.claims {
		switch k {
		case "subject":
			c.Claims.Subject = v
		case "username":
			c.Claims.Username = v
		case "email":
			c.Claims.Email = v
		case "email_verified":
			c.Claims.EmailVerified = v
		case "name":
			c.Claims.Name = v
		default:
			return fmt.Errorf("--claim %s: must be subject, username, email, email_verified or name", k)
		}
	}
	return nil
}

// readSecret reads the client secret from --client-secret-file (- for
// standard input): never from a flag, which the process list shows.
func (u *upstreamFlags) readSecret(cmd *cobra.Command, c *adminapi.NewUpstream) error {
	c.ClientSecret = ""
	if u.secretFile == "" {
		return nil
	}
	var raw []byte
	var err error
	if u.secretFile == "-" {
		raw, err = io.ReadAll(bufio.NewReader(io.LimitReader(cmd.InOrStdin(), 4096)))
	} else {
		raw, err = os.ReadFile(u.secretFile)
	}
	if err != nil {
		return fmt.Errorf("--client-secret-file: %w", err)
	}
	if c.ClientSecret = strings.TrimSpace(string(raw)); c.ClientSecret == "" {
		return fmt.Errorf("--client-secret-file: no secret in %s", u.secretFile)
	}
	return nil
}

func (a *app) printUpstream(cmd *cobra.Command, v adminapi.Upstream) error {
	return a.show(cmd.OutOrStdout(), v, func(w io.Writer) {
		fmt.Fprintf(w, "id:\t%s\nname:\t%s\ntype:\t%s\nenabled:\t%t\nsource:\t%s\nclient_secret:\t%s\n", v.ID, v.Label("en"), v.Type,
			v.Enabled, v.Source, map[bool]string{true: "set (sealed)", false: "none"}[v.ClientSecretSet])
	})
}

func (a *app) upstreamCmd() *cobra.Command {
	cmd := &cobra.Command{Use: "upstream", Short: "Manage the identity providers people sign in through (Google, GitHub, OpenID Connect)"}
	var addF, updF upstreamFlags
	add := &cobra.Command{
		Use:   "add --id ID --name NAME (--preset google|github | --type oidc --oidc-issuer URL | --type oauth2 ...) --client-id ID",
		Short: "Add an upstream; it shows on every login page within seconds",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			in := adminapi.NewUpstream{ID: addF.in.ID}
			if err := addF.apply(cmd, &in); err != nil {
				return err
			}
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				v, err := c.CreateUpstream(cmd.Context(), in, addF.adopt)
				if err != nil {
					return err
				}
				return a.printUpstream(cmd, v)
			})
		},
	}
	addF.register(add.Flags(), true)
	update := &cobra.Command{
		Use:   "update ID [flags]",
		Short: "Change the settings given as flags; the others stay",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				cur, err := c.GetUpstream(cmd.Context(), args[0])
				if err != nil {
					return err
				}
				in := cur.Config
				if err := updF.apply(cmd, &in); err != nil {
					return err
				}
				v, err := c.UpdateUpstream(cmd.Context(), args[0], in)
				if err != nil {
					return err
				}
				return a.printUpstream(cmd, v)
			})
		},
	}
	updF.register(update.Flags(), false)
	cmd.AddCommand(add, update, a.upstreamListCmd(), a.upstreamUsersCmd(), a.upstreamToggleCmd(false), a.upstreamToggleCmd(true),
		a.upstreamDeleteCmd())
	return cmd
}

func (a *app) upstreamListCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "list",
		Short: "List the upstreams, those of the config file (read-only) and those added here",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				list, err := c.ListUpstreams(cmd.Context())
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), list, func(w io.Writer) {
					fmt.Fprintln(w, "ID\tNAME\tTYPE\tENABLED\tSOURCE")
					for _, u := range list {
						fmt.Fprintf(w, "%s\t%s\t%s\t%t\t%s\n", u.ID, u.Label("en"), u.Type, u.Enabled, u.Source)
					}
				})
			})
		},
	}
}

func (a *app) upstreamToggleCmd(on bool) *cobra.Command {
	use, short := "disable ID", "Take an upstream off the login page and refuse its callback; links stay"
	if on {
		use, short = "enable ID", "Put a disabled upstream back on the login page"
	}
	return &cobra.Command{
		Use:   use,
		Short: short,
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				v, err := c.SetUpstreamEnabled(cmd.Context(), args[0], on)
				if err != nil {
					return err
				}
				return a.printUpstream(cmd, v)
			})
		},
	}
}

func (a *app) upstreamDeleteCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "delete ID",
		Short: "Delete an upstream and every account's link to it",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				if err := c.DeleteUpstream(cmd.Context(), args[0]); err != nil {
					return err
				}
				fmt.Fprintf(cmd.OutOrStdout(), "upstream %s deleted\n", args[0])
				return nil
			})
		},
	}
}

func (a *app) upstreamUsersCmd() *cobra.Command {
	var after string
	var limit int
	cmd := &cobra.Command{
		Use:   "users ID",
		Short: "List the users linked to an upstream, a page at a time",
		Args:  cobra.ExactArgs(1),
		RunE: func(cmd *cobra.Command, args []string) error {
			return a.withAdmin(cmd.Context(), func(c *adminapi.Remote) error {
				page, err := c.UpstreamUsers(cmd.Context(), args[0], after, limit)
				if err != nil {
					return err
				}
				return a.show(cmd.OutOrStdout(), page, func(w io.Writer) {
					fmt.Fprintln(w, "USER_ID\tUSERNAME\tSUBJECT\tEMAIL\tLINKED")
					for _, u := range page.Users {
						fmt.Fprintf(w, "%s\t%s\t%s\t%s\t%s\n", u.UserID, u.Username, u.Subject, u.Email, u.LinkedAt.Format("2006-01-02"))
					}
					if page.Next != "" {
						fmt.Fprintf(w, "(more: --after %s)\n", page.Next)
					}
				})
			})
		},
	}
	cmd.Flags().StringVar(&after, "after", "", "the user id the previous page ended with")
	cmd.Flags().IntVar(&limit, "limit", 100, "users per page (1 to 1000)")
	return cmd
}
