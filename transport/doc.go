// Package transport is quorumkv's internode RPC: a caller sends a method
// name and an opaque body to a node's address and waits for the reply, an
// error from the remote handler, its deadline, or the connection's failure.
//
// Two implementations sit behind the Transport interface:
//
//   - TCP (NewTCP): frames over a few persistent TCP connections per peer
//     (ConnsPerPeer), optionally mutual TLS with node identities
//     (TCPConfig.TLS; see below). Connections are dialled lazily and
//     re-dialled after they fail. Calls on a
//     connection are multiplexed by request ID: each connection has a writer
//     goroutine that batches queued frames into one buffered write, flushed
//     when the queue drains, and a reader goroutine that hands replies to
//     the waiting calls by ID. The server runs each request's handler in its
//     own goroutine and queues the reply. A call whose ctx ends returns at
//     once; its late reply is discarded (and counted). A connection that
//     fails fails all its pending calls with ErrUnreachable.
//   - Mem (NewNetwork, Network.NewTransport): an in-memory network for tests
//     with partition, isolation, drop, reply-drop, delay and crash rules.
//     Delays and deadlines run on an injected clock.Clock. See Network for
//     what each rule does to a call.
//
// # Frame layout
//
// Every message on a TCP connection is one frame:
//
//	+----------------+-----------------------------------------------------+
//	| length: uint32 | msgpack array of 8 elements (length bytes)          |
//	| big-endian     | [ID, Kind, Method, From, Body, ErrCode, ErrMsg, To] |
//	+----------------+-----------------------------------------------------+
//
//	ID       uint    request ID chosen by the caller, unique per
//	                 transport; the reply carries the same ID
//	Kind     uint    1 = request, 2 = response, 3 = error
//	Method   str     request: method name, e.g. "kv.apply" (required)
//	From     str     request: caller's node ID
//	Body     bin     request and response: payload (msgpack from the
//	                 layer above; opaque here)
//	ErrCode  str     error: RemoteError.Code
//	ErrMsg   str     error: RemoteError.Message
//	To       str     request: the node ID the caller means to reach
//	                 (CallNode); empty for Call. A transport serving
//	                 another node refuses the request with CodeWrongNode
//	                 without running its handler. A 7-element frame (an
//	                 earlier version's, without To) is accepted.
//
// Unused fields are empty. Integers use the most compact msgpack form when
// sent; any unsigned (or non-negative signed) form is accepted, as is str,
// bin or nil for the strings and the body. The length counts the msgpack
// bytes only, not itself. A connection carries requests one way: the
// dialling side sends requests and reads replies, the accepting side the
// reverse.
//
// A frame whose length exceeds MaxFrameSize, that does not decode as above
// (wrong element count, unknown kind, truncated value, trailing bytes, a
// request without a method) or that flows the wrong way closes its
// connection with an error in the log; the claimed length is never
// allocated. A request or reply too large to send fails with
// ErrFrameTooLarge (a reply becomes a RemoteError with CodeFrameTooLarge).
//
// # Mutual TLS and node identities
//
// With TCPConfig.TLS (MutualTLS builds it from PEM files) every connection
// is mutual TLS 1.3 against the cluster CA, and each side learns which node
// the other is: TCPConfig.Identify reads it from the verified leaf
// certificate (CommonNameID: the Subject CommonName). The accepting side
// requires a client certificate, and a request whose From is not the
// connection's node is refused with CodeUnauthenticated without running
// the handler; the handler sees the node as Request.Peer. The dialling side
// verifies the server's chain and server usage itself (nodes are dialled by
// address, so host names are not checked), and CallNode(node, ...) on a
// connection whose server is another node fails with ErrWrongNode and
// ErrNotSent before anything is sent.
//
// # Inbound limits
//
// Besides the idle and per-frame read deadlines and the connection caps,
// inbound requests share two budgets across connections. MaxInflightBytes
// bounds the frames being read or handled: a reader takes a frame's
// announced length before reading its body (frames over SmallFrameSize may
// use all but an eighth, which stays free for small ones) and waits, no
// longer than FrameReadTimeout, while it is spent. Thirty peers announcing
// 64 MiB and stalling grow the heap by about 30 MiB with an 80 MiB budget
// (TestTCPInflightBudget), not 30 x 64 MiB. MaxHandlers bounds the handlers
// running at once; a reader past it waits, which slows only its
// connection. Metrics counts the waits and reports the bytes in flight.
//
// # Errors
//
// Call errors match, with errors.Is: ErrTimeout (also
// context.DeadlineExceeded) when the deadline passed, ErrUnreachable when the
// peer could not be reached or the connection broke, ErrClosed when this
// transport is closed, ErrFrameTooLarge, or the caller's context.Canceled.
// A handler's error arrives as a *RemoteError (use errors.As); its Code is
// the handler error's Code() string, or CodeInternal.
package transport
