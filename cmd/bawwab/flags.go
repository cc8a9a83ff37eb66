package main

import (
	"errors"
	"fmt"
	"strings"

	"github.com/spf13/cobra"
	"github.com/spf13/pflag"

	"github.com/bawwab/bawwab/internal/config"
)

// Server settings (config.Fields) are flags of the commands that run or
// check a server: serve, migrate, config check, and the few that bench and
// demo read. Admin commands get only what they need to reach the store or
// the admin API. Every field becomes a typed flag, whatever fields the
// configuration gains: its value is checked when the command line is read.

// fieldValue is a config.Field as a pflag.Value.
type fieldValue struct {
	f config.Field
	s string
}

func (v *fieldValue) String() string { return v.s }

// Set checks s the way loading the configuration will.
func (v *fieldValue) Set(s string) error {
	scratch := config.Default()
	if err := v.f.Set(&scratch, s); err != nil {
		_, msg, _ := strings.Cut(err.Error(), ": ")
		return errors.New(msg)
	}
	v.s = s
	return nil
}

// Type names the value in help: duration, int, strings or string.
func (v *fieldValue) Type() string {
	switch v.f.Kind {
	case config.KindDur:
		return "duration"
	case config.KindNum:
		return "int"
	case config.KindList:
		return "strings"
	}
	return "string"
}

// addFields adds the fields that keep says to fs, as flags.
func addFields(fs *pflag.FlagSet, keep func(config.Field) bool) {
	defaults := config.Default()
	for _, f := range config.Fields {
		if !keep(f) || fs.Lookup(f.Flag()) != nil {
			continue
		}
		fs.Var(&fieldValue{f: f, s: f.Get(&defaults)}, f.Flag(), f.Help+" (env "+f.Env()+")")
	}
}

// allFields keeps every server setting.
func allFields(config.Field) bool { return true }

// fieldsNamed keeps the fields with these keys.
func fieldsNamed(keys ...string) func(config.Field) bool {
	return func(f config.Field) bool {
		for _, k := range keys {
			if f.Key == k {
				return true
			}
		}
		return false
	}
}

// storeFields say where the store is: what an admin command working on
// the store directly needs.
var storeFields = fieldsNamed("data_dir", "database")

// adminFlags gives an admin command (and its subcommands) the flags that
// reach the store or a running server's admin API, and --output.
func (a *app) adminFlags(cmd *cobra.Command) *cobra.Command {
	pf := cmd.PersistentFlags()
	pf.StringVar(&a.server, "server", "", "admin API of a running server (e.g. http://127.0.0.1:8081); default: the store itself")
	addFields(pf, fieldsNamed("admin_token"))
	pf.Lookup("admin-token").Usage = "Bearer token of that admin API (env BAWWAB_ADMIN_TOKEN)"
	addFields(pf, storeFields)
	pf.StringVarP(&a.output, "output", "o", "table", "table or json")
	return cmd
}

// didYouMean explains a flag the command does not know: a server setting
// given to an admin command, or a near miss of one it has.
func didYouMean(cmd *cobra.Command, err error) error {
	name, ok := unknownFlag(err.Error())
	if !ok {
		return err
	}
	for _, f := range config.Fields {
		if f.Flag() == name {
			return fmt.Errorf("%w\n--%s is a server setting: give it to bawwab serve (or config check), or set %s in the config file or %s", err, name, f.Key, f.Env())
		}
	}
	best, bestD := "", 3 // at most two edits away, or a prefix
	cmd.Flags().VisitAll(func(f *pflag.Flag) {
		d := config.EditDistance(name, f.Name)
		if strings.HasPrefix(f.Name, name) {
			d = min(d, 1)
		}
		if d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best != "" {
		return fmt.Errorf("%w (did you mean --%s?)", err, best)
	}
	return err
}

// unknownFlag finds the name in pflag's "unknown flag: --name".
func unknownFlag(msg string) (string, bool) {
	rest, ok := strings.CutPrefix(msg, "unknown flag: --")
	if !ok {
		return "", false
	}
	name, _, _ := strings.Cut(rest, "=")
	return name, true
}
