package transport

import "context"

// Request is what a handler receives.
type Request struct {
	From string // the caller's node ID, as sent in the frame
	// Peer is the node the connection's TLS certificate authenticated
	// (TCPConfig.Identify); From equals it, or the request was refused
	// before reaching the handler. "" without TLS. The in-memory transport
	// sets it to From: its network belongs to the test.
	Peer   string
	To     string // the node ID the caller meant to reach (CallNode), "" for Call
	Method string // e.g. "kv.apply"
	Body   []byte // msgpack-encoded by the layer above; owned by the handler
}

// Handler serves one request. A returned error reaches the caller as a
// *RemoteError (carrying Code and Message). Handlers run concurrently, each
// in its own goroutine. ctx is cancelled when the transport closes or the
// connection the request came on fails; Close waits for handlers to return,
// so handlers must honour ctx. The returned slice may be retained by the
// transport until the reply is written, so the handler must not modify it
// afterwards.
type Handler func(ctx context.Context, req *Request) ([]byte, error)

// Transport carries requests between nodes. Implementations are safe for
// concurrent use.
type Transport interface {
	// Call sends method+body to the node at addr and waits for the reply,
	// ctx's deadline, or the connection's failure. Calls without a deadline
	// get the configured default timeout. The returned slice belongs to the
	// caller. The caller must not modify body after passing it to Call: the
	// transport may still be reading it after Call returned on a timeout.
	Call(ctx context.Context, addr, method string, body []byte) ([]byte, error)
	// CallNode is Call to a known node: the request names node, and a
	// transport serving under another node ID refuses it without running
	// the handler (ErrWrongNode, with ErrNotSent). Nodes reach each other
	// with it, so that an address reused by a new node (or a stale one)
	// never makes one node's answers count as another's.
	CallNode(ctx context.Context, node, addr, method string, body []byte) ([]byte, error)
	// Serve starts accepting requests for h. Called once; later calls
	// return ErrServing.
	Serve(h Handler) error
	// Addr is the address other nodes dial to reach this transport.
	Addr() string
	// Close stops serving, closes every connection, fails pending calls with
	// ErrClosed, and waits for its goroutines (handlers included).
	// Idempotent.
	Close() error
}

// Metrics is a snapshot of a transport's counters, all cumulative since the
// transport was created except the InflightBytes gauge.
type Metrics struct {
	Calls    uint64 // Call invocations
	Errors   uint64 // calls that returned an error (timeouts included)
	Timeouts uint64 // calls that returned ErrTimeout
	Served   uint64 // requests handed to the local handler

	BytesIn  uint64 // bytes received (TCP: whole frames; memory: bodies)
	BytesOut uint64 // bytes sent (TCP: whole frames; memory: bodies)

	FramesIn       uint64 // TCP: frames received
	FramesOut      uint64 // TCP: frames written
	Flushes        uint64 // TCP: buffered writes pushed to sockets; FramesOut/Flushes is the batching factor
	FramesRejected uint64 // TCP: frames too large or undecodable (each closes its connection)
	LateReplies    uint64 // replies that arrived after their call gave up
	ConnsDialed    uint64 // TCP: outbound connections established
	ConnsAccepted  uint64 // TCP: inbound connections accepted
	ConnsRefused   uint64 // TCP: inbound connections closed at once, past MaxInboundConns or MaxConnsPerSource
	ReadTimeouts   uint64 // TCP: inbound connections closed idle, or stalled inside a frame
	DialFailures   uint64 // TCP: dials that failed
	Dropped        uint64 // memory: requests and replies lost to Drop/DropReplies/partition rules

	HandshakeFailures uint64 // TCP: inbound TLS handshakes that failed or named no node
	Unauthenticated   uint64 // TCP: requests refused because From was not the connection's peer
	BudgetWaits       uint64 // TCP: inbound frames that had to wait for MaxInflightBytes (counted as they start waiting)
	BudgetTimeouts    uint64 // TCP: of those, connections closed after FrameReadTimeout
	HandlerWaits      uint64 // TCP: inbound requests that had to wait for a handler (MaxHandlers; counted as they start)
	InflightBytes     int64  // TCP: inbound request bytes being read or handled now (a gauge)
}
