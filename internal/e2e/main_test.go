package e2e

import (
	"testing"

	"github.com/netpulse/netpulse/internal/testutil"
)

func TestMain(m *testing.M) { testutil.Main(m) }
