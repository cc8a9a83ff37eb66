package scope

import (
	"context"
	"maps"
	"slices"

	"github.com/bawwab/bawwab/internal/storage"
)

// Load fills c from the store, seeding an empty store with the default
// catalog first. Servers call it at start and every little while, so that
// an operator's edit on any node reaches all of them.
func Load(ctx context.Context, store storage.Storage, c *Catalog) error {
	defs, err := store.ListScopes(ctx)
	if err != nil {
		return err
	}
	if len(defs) == 0 {
		for i, s := range Default().All() {
			d := storage.ScopeDef{Name: s.Name, Position: i + 1, Description: s.Description, Explanation: s.Explanation, Sensitive: s.Sensitive,
				Required: s.Required, Claims: s.Claims}
			if err := store.SaveScope(ctx, d); err != nil {
				return err
			}
			defs = append(defs, d)
		}
	}
	scopes := make([]Scope, 0, len(defs))
	for _, d := range defs {
		scopes = append(scopes, Scope{Name: d.Name, Description: maps.Clone(d.Description), Explanation: maps.Clone(d.Explanation), Sensitive: d.Sensitive,
			Required: d.Required || d.Name == OpenID, Claims: slices.Clone(d.Claims)})
	}
	c.Replace(scopes...)
	return nil
}
