package main

import (
	"errors"

	"github.com/spf13/cobra"
)

func (a *app) demoCmd() *cobra.Command {
	return &cobra.Command{
		Use:   "demo",
		Short: "Run the authorization server, a resource server and a sample third-party app",
		RunE: func(cmd *cobra.Command, _ []string) error {
			return errors.New("not yet")
		},
	}
}
