package transport

import "sync/atomic"

// counters holds the live counters behind Metrics.
type counters struct {
	calls          atomic.Uint64
	errors         atomic.Uint64
	timeouts       atomic.Uint64
	served         atomic.Uint64
	bytesIn        atomic.Uint64
	bytesOut       atomic.Uint64
	framesIn       atomic.Uint64
	framesOut      atomic.Uint64
	flushes        atomic.Uint64
	framesRejected atomic.Uint64
	lateReplies    atomic.Uint64
	connsDialed    atomic.Uint64
	connsAccepted  atomic.Uint64
	connsRefused   atomic.Uint64
	readTimeouts   atomic.Uint64
	dialFailures   atomic.Uint64
	dropped        atomic.Uint64

	handshakeFailures atomic.Uint64
	unauthenticated   atomic.Uint64
	budgetWaits       atomic.Uint64
	budgetTimeouts    atomic.Uint64
	handlerWaits      atomic.Uint64
}

func (c *counters) snapshot() Metrics {
	return Metrics{
		Calls:          c.calls.Load(),
		Errors:         c.errors.Load(),
		Timeouts:       c.timeouts.Load(),
		Served:         c.served.Load(),
		BytesIn:        c.bytesIn.Load(),
		BytesOut:       c.bytesOut.Load(),
		FramesIn:       c.framesIn.Load(),
		FramesOut:      c.framesOut.Load(),
		Flushes:        c.flushes.Load(),
		FramesRejected: c.framesRejected.Load(),
		LateReplies:    c.lateReplies.Load(),
		ConnsDialed:    c.connsDialed.Load(),
		ConnsAccepted:  c.connsAccepted.Load(),
		ConnsRefused:   c.connsRefused.Load(),
		ReadTimeouts:   c.readTimeouts.Load(),
		DialFailures:   c.dialFailures.Load(),
		Dropped:        c.dropped.Load(),

		HandshakeFailures: c.handshakeFailures.Load(),
		Unauthenticated:   c.unauthenticated.Load(),
		BudgetWaits:       c.budgetWaits.Load(),
		BudgetTimeouts:    c.budgetTimeouts.Load(),
		HandlerWaits:      c.handlerWaits.Load(),
	}
}

// callDone records the outcome of one Call.
func (c *counters) callDone(err error) {
	if err == nil {
		return
	}
	c.errors.Add(1)
	if isTimeout(err) {
		c.timeouts.Add(1)
	}
}
