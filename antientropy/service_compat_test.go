package antientropy

import (
	"context"

	"github.com/quorumkv/quorumkv/ring"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/transport"
)

// The real collaborators satisfy the interfaces this package defines, and
// the Service satisfies what the node expects of it.
var (
	_ Store   = (*store.Store)(nil)
	_ Meta    = (*store.Store)(nil)
	_ Scanner = (*store.Store)(nil)
	_ Ring    = (*ring.Ring)(nil)
	_ Caller  = (transport.Transport)(nil)

	_ interface {
		HandleRPC(ctx context.Context, req *transport.Request) ([]byte, error)
		OnWrite(ev store.WriteEvent)
		Prioritize(partition int)
		Close() error
	} = (*Service)(nil)
)
