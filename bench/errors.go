package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"strings"
)

// Sentinel errors. Functions wrap them with context; test with errors.Is.
var (
	// ErrInvalidConfig is wrapped by Config.Validate for every bad field.
	ErrInvalidConfig = errors.New("bench: invalid config")
	// ErrNotFound is returned by a driver read of a key that holds no live
	// value (absent, or only tombstones).
	ErrNotFound = errors.New("bench: not found")
	// ErrBadRecord is returned when a stored value is not a record written by
	// EncodeRecord.
	ErrBadRecord = errors.New("bench: malformed record")
	// ErrBadResponse is returned when a node answers outside the HTTP
	// contract (unexpected status, undecodable body).
	ErrBadResponse = errors.New("bench: bad response")
	// ErrScanUnsupported is returned by the quorumkv driver for a scan whose
	// start key does not end in a record number (see Config.ScanParallelism).
	ErrScanUnsupported = errors.New("bench: scan needs keys ending in a record number")
	// ErrNoResults is returned by report writers given nothing to write.
	ErrNoResults = errors.New("bench: no results")
	// ErrBadResultFile is returned by ReadResults for a file that is not a
	// results file of a known version.
	ErrBadResultFile = errors.New("bench: not a results file")
)

// HTTPError is a non-success answer of a quorumkv node: its status and the
// code and message of its JSON error body.
type HTTPError struct {
	// Status is the HTTP status code.
	Status int
	// Code is the machine-readable "code" of the error body, such as
	// "quorum_failed"; empty when the body had none.
	Code string
	// Message is the "error" of the error body, or the start of a non-JSON
	// body.
	Message string
}

func (e *HTTPError) Error() string {
	var b strings.Builder
	fmt.Fprintf(&b, "bench: http %d", e.Status)
	if e.Code != "" {
		b.WriteString(" " + e.Code)
	}
	if e.Message != "" {
		b.WriteString(": " + e.Message)
	}
	if e.Status == 401 || e.Status == 403 {
		b.WriteString(": the node refused the token (Config.Token)")
	}
	return b.String()
}

// ErrorKind is the class an operation error is counted under.
type ErrorKind string

// The error kinds of a Result, in report order.
const (
	// KindQuorum is a 503 answer: not enough replicas answered.
	KindQuorum ErrorKind = "quorum"
	// KindTimeout is a 504 answer, a client-side timeout or a deadline.
	KindTimeout ErrorKind = "timeout"
	// KindNotFound is a read of a key that holds no live value.
	KindNotFound ErrorKind = "not_found"
	// KindClient is any other 4xx answer (bad request, too many siblings).
	KindClient ErrorKind = "4xx"
	// KindOther is everything else: connection errors, other 5xx, malformed
	// answers, errors of the etcd or Redis clients.
	KindOther ErrorKind = "other"
)

// ErrorKinds lists every ErrorKind in report order.
var ErrorKinds = []ErrorKind{KindQuorum, KindTimeout, KindNotFound, KindClient, KindOther}

// ClassifyError returns the kind err is counted under. It understands the
// errors of the quorumkv driver and the not-found and timeout errors of the
// go-ycsb etcd and Redis bindings.
func ClassifyError(err error) ErrorKind {
	var he *HTTPError
	switch {
	case errors.As(err, &he):
		switch {
		case he.Status == 503:
			return KindQuorum
		case he.Status == 504:
			return KindTimeout
		case he.Status == 404:
			return KindNotFound
		case he.Status >= 400 && he.Status < 500:
			return KindClient
		}
		return KindOther
	case errors.Is(err, ErrNotFound):
		return KindNotFound
	case errors.Is(err, context.DeadlineExceeded):
		return KindTimeout
	}
	var ne net.Error
	if errors.As(err, &ne) && ne.Timeout() {
		return KindTimeout
	}
	msg := err.Error()
	switch {
	// go-ycsb's etcd binding reports a missing key with this text, go-redis
	// with "redis: nil".
	case strings.Contains(msg, "could not find value for key"), msg == "redis: nil":
		return KindNotFound
	// gRPC (etcd) renders a deadline as a status, not a wrapped error.
	case strings.Contains(msg, "DeadlineExceeded"), strings.Contains(msg, "i/o timeout"):
		return KindTimeout
	}
	return KindOther
}
