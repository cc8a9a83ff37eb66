package e2e

import (
	"os"
	"testing"

	"github.com/bawwab/bawwab/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.MainPostgres(m, "e2e", false))
}
