package postgres_test

import (
	"os"
	"testing"

	"github.com/bawwab/bawwab/internal/testenv"
)

func TestMain(m *testing.M) {
	os.Exit(testenv.MainPostgres(m, "internal/storage/postgres", true))
}
