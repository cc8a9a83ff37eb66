package server_test

import (
	"os/exec"
	"slices"
	"strings"
	"testing"

	"github.com/bawwab/bawwab/internal/testenv"
)

// TestLayering: the packages that register and validate clients depend on
// the leaf packages of shared rules (redirecturi, granttype, ids), not on
// the endpoints, and the server takes any storage.Storage: only the
// command (and the demo) pick and open a backend. go list -deps shows
// what each package pulls in, its tests aside.
func TestLayering(t *testing.T) {
	goCmd, err := exec.LookPath("go")
	if err != nil {
		testenv.Missing(t, "the go command", "put the Go toolchain on PATH")
	}
	const mod = "github.com/bawwab/bawwab/"
	for _, tt := range []struct {
		pkg       string
		forbidden []string
	}{
		{"internal/admin", []string{"internal/authorize", "internal/token"}},
		{"internal/registration", []string{"internal/authorize", "internal/token"}},
		{"internal/adminapi", []string{"internal/authorize", "internal/token"}},
		{"internal/redirecturi", []string{"internal/"}},
		{"internal/granttype", []string{"internal/"}},
		{"internal/ids", []string{"internal/"}},
		{"internal/server", []string{"internal/storage/sqlite", "internal/storage/postgres", "internal/storage/sqlstore"}},
	} {
		t.Run(tt.pkg, func(t *testing.T) {
			out, err := exec.Command(goCmd, "list", "-deps", "-f", "{{.ImportPath}}", mod+tt.pkg).Output()
			if err != nil {
				t.Fatalf("go list -deps %s: %v", tt.pkg, err)
			}
			deps := strings.Fields(string(out))
			if !slices.Contains(deps, mod+tt.pkg) {
				t.Fatalf("go list -deps %s did not list the package itself: %q", tt.pkg, deps)
			}
			for _, d := range deps {
				dep, ok := strings.CutPrefix(d, mod)
				if !ok || dep == tt.pkg {
					continue
				}
				for _, f := range tt.forbidden {
					if dep == f || strings.HasPrefix(dep, strings.TrimSuffix(f, "/")+"/") {
						t.Errorf("%s imports %s (directly or through another package)", tt.pkg, dep)
					}
				}
			}
		})
	}
}
