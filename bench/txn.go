package bench

import (
	"context"
	"sync"
)

// txn is the scratch state of one YCSB transaction (one DoTransaction or
// DoInsert call). The runner puts a fresh one in the context of every
// transaction; drivers find it with txnFrom.
type txn struct {
	// workload, when set, is held while the transaction runs workload code
	// and released while it is inside the DB (see tracingDB).
	workload *sync.Mutex
	// calls are the names of the DB methods the transaction called, in order
	// (the first two are enough to name it).
	calls [2]string
	n     int
	// read is the last record the quorumkv driver read in this transaction,
	// with its causal context, so that the update of a read-modify-write
	// writes on top of that read instead of reading again.
	read cachedRead
}

type cachedRead struct {
	ok          bool
	bucket, key string
	context     string
	rec         map[string][]byte
}

type txnKey struct{}

func withTxn(ctx context.Context, t *txn) context.Context {
	return context.WithValue(ctx, txnKey{}, t)
}

// txnFrom returns the transaction of ctx, or nil outside the runner.
func txnFrom(ctx context.Context) *txn {
	t, _ := ctx.Value(txnKey{}).(*txn)
	return t
}

func (t *txn) call(name string) {
	if t.n < len(t.calls) {
		t.calls[t.n] = name
	}
	t.n++
}

// The operation names of a Result, as go-ycsb names its measurements.
const (
	OpRead            = "READ"
	OpUpdate          = "UPDATE"
	OpInsert          = "INSERT"
	OpScan            = "SCAN"
	OpDelete          = "DELETE"
	OpReadModifyWrite = "READ_MODIFY_WRITE"
	// OpUnknown names a transaction that made no DB call.
	OpUnknown = "UNKNOWN"
)

// op names the transaction after its DB calls. The core workload's
// read-modify-write is a read followed by an update. A read-modify-write
// whose read failed made one call and counts as a failed read.
func (t *txn) op() string {
	switch {
	case t.n == 0:
		return OpUnknown
	case t.n == 2 && t.calls[0] == OpRead && t.calls[1] == OpUpdate:
		return OpReadModifyWrite
	}
	return t.calls[0]
}
