// Package transport is quorumkv's internode RPC: a caller sends a method
// name and an opaque body to a node's address and waits for the reply, an
// error from the remote handler, its deadline, or the connection's failure.
//
// Two implementations sit behind the Transport interface:
//
//   - TCP (NewTCP): frames over a few persistent TCP connections per peer
//     (ConnsPerPeer), optionally TLS (TCPConfig.TLS, used on both the
//     listening and the dialling side, ready for mutual TLS). Connections
//     are dialled lazily and re-dialled after they fail. Calls on a
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
// # Errors
//
// Call errors match, with errors.Is: ErrTimeout (also
// context.DeadlineExceeded) when the deadline passed, ErrUnreachable when the
// peer could not be reached or the connection broke, ErrClosed when this
// transport is closed, ErrFrameTooLarge, or the caller's context.Canceled.
// A handler's error arrives as a *RemoteError (use errors.As); its Code is
// the handler error's Code() string, or CodeInternal.
package transport
