package e2e

import (
	"encoding/json"
	"os"
	"os/exec"
	"strings"
	"testing"
)

// TestBenchIDTokenAlg: bawwab bench seeds its client with the ID token
// alg asked for, so that the cost of RS256 (the default) can be set
// against ES256; an alg clients cannot register is refused before any
// load, with the reason.
func TestBenchIDTokenAlg(t *testing.T) {
	bin := buildBawwab(t)
	run := func(alg string) (string, error) {
		cmd := exec.Command(bin, "bench", "--scenario", "refresh", "--duration", "300ms", "--workers", "1", "--output", "json",
			"--id-token-alg", alg)
		cmd.Env = append(os.Environ(), "BAWWAB_CONFIG=")
		out, err := cmd.Output()
		if ee, ok := err.(*exec.ExitError); ok {
			out = append(out, ee.Stderr...)
		}
		return string(out), err
	}
	for _, alg := range []string{"ES256", "PS256"} {
		out, err := run(alg)
		if err != nil {
			t.Fatalf("%s: %v\n%s", alg, err, out)
		}
		var rep struct {
			Results []struct {
				Count, Errors int
				FirstError    string `json:"first_error"`
			}
		}
		if err := json.Unmarshal([]byte(out), &rep); err != nil || len(rep.Results) != 1 {
			t.Fatalf("%s: %v\n%s", alg, err, out)
		}
		if r := rep.Results[0]; r.Count == 0 || r.Errors != 0 {
			t.Errorf("%s: %d refreshes, %d errors (%s)", alg, r.Count, r.Errors, r.FirstError)
		}
	}
	out, err := run("HS256")
	if err == nil || !strings.Contains(out, "id_token_signed_response_alg must be RS256, PS256 or ES256") {
		t.Errorf("HS256: %v\n%s", err, out)
	}
}
