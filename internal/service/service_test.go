package service_test

import (
	"path/filepath"
	"testing"

	"go.uber.org/goleak"

	"github.com/kiln-serve/kiln/internal/service/servicetest"
	"github.com/kiln-serve/kiln/internal/store"
)

func TestMain(m *testing.M) { goleak.VerifyTestMain(m) }

// TestOnBolt runs the shared suite on the embedded store, in a temporary
// directory.
func TestOnBolt(t *testing.T) {
	servicetest.Run(t, func(t *testing.T) store.Store {
		st, err := store.Open(filepath.Join(t.TempDir(), "kiln.db"), nil)
		if err != nil {
			t.Fatal(err)
		}
		return st
	})
}
