package postgres_test

import (
	"context"
	"testing"
	"time"

	"github.com/fleetform/terraform-provider-thingspace/internal/relay/pgtest"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/postgres"
	"github.com/fleetform/terraform-provider-thingspace/internal/relay/store/storetest"
)

func TestMain(m *testing.M) { pgtest.Main(m) }

func open(t testing.TB, dsn string) *postgres.Store {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 30*time.Second)
	defer cancel()
	s, err := postgres.Open(ctx, dsn)
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { s.Close() })
	return s
}

func TestConformance(t *testing.T) {
	storetest.Run(t, func(t *testing.T) store.Store {
		return open(t, pgtest.Start(t))
	})
}
