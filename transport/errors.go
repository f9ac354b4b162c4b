package transport

import (
	"context"
	"errors"
	"fmt"
	"strconv"
)

// Sentinel errors. Errors returned by Call wrap one of these (or a
// *RemoteError, or the caller's context error when ctx is cancelled), so
// callers test them with errors.Is.
var (
	// ErrClosed: the transport was closed before or during the call.
	ErrClosed = errors.New("transport: closed")
	// ErrUnreachable: the peer could not be reached (dial failed, connection
	// lost while the call was pending, or, in memory, the peer is down,
	// partitioned off or isolated).
	ErrUnreachable = errors.New("transport: peer unreachable")
	// ErrFrameTooLarge: a frame is larger than MaxFrameSize.
	ErrFrameTooLarge = errors.New("transport: frame too large")
	// ErrBadFrame: a frame does not decode or breaks the protocol.
	ErrBadFrame = errors.New("transport: bad frame")
	// ErrServing: Serve was called a second time.
	ErrServing = errors.New("transport: already serving")
	// ErrInvalidConfig: a config failed Validate, or Serve got a nil handler.
	ErrInvalidConfig = errors.New("transport: invalid config")
	// ErrNotSent marks a failed call whose request never left this node
	// (no connection could be had, the peer was known unreachable at
	// once): the peer did not run it. It is wrapped together with the
	// reason (ErrUnreachable, ErrClosed, ...). A call that fails without
	// it may or may not have run at the peer.
	ErrNotSent = errors.New("transport: request not sent")
	// ErrTimeout: the call's deadline passed before a reply arrived.
	// errors.Is(err, context.DeadlineExceeded) also holds for it.
	ErrTimeout error = timeoutError{}
	// ErrWrongNode: the transport that answered at the address belongs to
	// another node than the one CallNode meant to reach (the address was
	// reused by a new node, or is stale). The peer refused the request
	// without running it; it is wrapped together with ErrNotSent, since
	// for the caller it is as if the request never left.
	ErrWrongNode = errors.New("transport: wrong node at address")
	// ErrUnauthenticated: a TLS peer's certificate does not name a node,
	// or a request's sender is not the node its connection authenticated
	// (the peer refused it with CodeUnauthenticated, without running the
	// handler; the caller sees it wrapped with ErrNotSent).
	ErrUnauthenticated = errors.New("transport: unauthenticated")
)

// timeoutError is the type of ErrTimeout. It is a comparable value type so
// that errors.Is(err, ErrTimeout) works by equality, and it also reports
// itself as context.DeadlineExceeded and as a net.Error-style timeout.
type timeoutError struct{}

func (timeoutError) Error() string { return "transport: deadline exceeded" }

// Timeout reports true, as net.Error timeouts do.
func (timeoutError) Timeout() bool { return true }

// Is makes errors.Is(ErrTimeout, context.DeadlineExceeded) true.
func (timeoutError) Is(target error) bool { return target == context.DeadlineExceeded }

// Error codes carried by a RemoteError. Handlers may use any code of their
// own by returning an error with a Code() string method.
const (
	// CodeInternal is the code of a handler error that has no Code method.
	CodeInternal = "internal"
	// CodeFrameTooLarge is sent when the handler's reply does not fit in a
	// frame.
	CodeFrameTooLarge = "frame_too_large"
	// CodeWrongNode is sent, without running the handler, when a request
	// names a node (CallNode) other than the one serving it.
	CodeWrongNode = "wrong_node"
	// CodeUnauthenticated is sent, without running the handler, when a
	// request's From is not the node its TLS connection authenticated.
	CodeUnauthenticated = "unauthenticated"
)

// RemoteError is an error returned by the remote handler, carried back to
// the caller in an error frame.
type RemoteError struct {
	Code    string // the handler error's Code(), or CodeInternal
	Message string // the handler error's Error() text
}

func (e *RemoteError) Error() string {
	return "transport: remote error (" + e.Code + "): " + e.Message
}

// Is makes a RemoteError with CodeFrameTooLarge match ErrFrameTooLarge.
func (e *RemoteError) Is(target error) bool {
	return target == ErrFrameTooLarge && e.Code == CodeFrameTooLarge
}

// coder is implemented by handler errors that carry an error code.
type coder interface{ Code() string }

// toRemote converts a handler error into the RemoteError sent back to the
// caller: a *RemoteError anywhere in the chain is passed on as is, an error
// with a Code() method keeps its code, anything else gets CodeInternal.
func toRemote(err error) *RemoteError {
	var re *RemoteError
	if errors.As(err, &re) {
		return &RemoteError{Code: re.Code, Message: re.Message}
	}
	code := CodeInternal
	var c coder
	if errors.As(err, &c) {
		if s := c.Code(); s != "" {
			code = s
		}
	}
	return &RemoteError{Code: code, Message: err.Error()}
}

// isTimeout reports whether err is, or wraps, ErrTimeout.
func isTimeout(err error) bool { return errors.Is(err, ErrTimeout) }

// refuseWrongNode is the error a transport serving as self sends back to a
// request meant for node to.
func refuseWrongNode(to, self string) *RemoteError {
	return &RemoteError{Code: CodeWrongNode, Message: "request for node " + strconv.Quote(to) + " reached node " + strconv.Quote(self)}
}

// refuseUnauthenticated is the error sent back to a request whose From
// is not its connection's authenticated peer.
func refuseUnauthenticated(from, peer string) *RemoteError {
	return &RemoteError{Code: CodeUnauthenticated, Message: "request from " + strconv.Quote(from) + " on a connection authenticated as " + strconv.Quote(peer)}
}

// refused turns a peer's refusal (wrong node, unauthenticated) into its
// sentinel wrapped with ErrNotSent: the handler did not run. Other errors
// pass unchanged.
func refused(err error) error {
	var re *RemoteError
	if err == nil || !errors.As(err, &re) {
		return err
	}
	switch re.Code {
	case CodeWrongNode:
		return fmt.Errorf("%w: %w: %s", ErrNotSent, ErrWrongNode, re.Message)
	case CodeUnauthenticated:
		return fmt.Errorf("%w: %w: %s", ErrNotSent, ErrUnauthenticated, re.Message)
	}
	return err
}
