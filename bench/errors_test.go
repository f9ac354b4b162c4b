package bench

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/url"
	"testing"
)

type timeoutErr struct{}

func (timeoutErr) Error() string   { return "slow" }
func (timeoutErr) Timeout() bool   { return true }
func (timeoutErr) Temporary() bool { return true }

var _ net.Error = timeoutErr{}

func TestClassifyError(t *testing.T) {
	tests := []struct {
		err  error
		want ErrorKind
	}{
		{&HTTPError{Status: 503, Code: "quorum_failed"}, KindQuorum},
		{fmt.Errorf("put: %w", &HTTPError{Status: 503}), KindQuorum},
		{&HTTPError{Status: 504, Code: "timeout"}, KindTimeout},
		{&HTTPError{Status: 409, Code: "too_many_siblings"}, KindClient},
		{&HTTPError{Status: 400}, KindClient},
		{&HTTPError{Status: 404}, KindNotFound},
		{&HTTPError{Status: 500}, KindOther},
		{&HTTPError{Status: 302}, KindOther},
		{fmt.Errorf("%w: usertable/k", ErrNotFound), KindNotFound},
		{context.DeadlineExceeded, KindTimeout},
		{&url.Error{Op: "Get", URL: "http://x", Err: timeoutErr{}}, KindTimeout},
		{errors.New("could not find value for key [usertable:user1]"), KindNotFound},
		{errors.New("redis: nil"), KindNotFound},
		{errors.New("rpc error: code = DeadlineExceeded desc = context deadline exceeded"), KindTimeout},
		{errors.New("connection refused"), KindOther},
		{fmt.Errorf("sibling 0: %w", ErrBadRecord), KindOther},
	}
	for _, tt := range tests {
		if got := ClassifyError(tt.err); got != tt.want {
			t.Errorf("ClassifyError(%v) = %s, want %s", tt.err, got, tt.want)
		}
	}
}

func TestHTTPErrorText(t *testing.T) {
	e := &HTTPError{Status: 503, Code: "quorum_failed", Message: "2 of 3 replicas"}
	if got, want := e.Error(), "bench: http 503 quorum_failed: 2 of 3 replicas"; got != want {
		t.Fatalf("Error() = %q, want %q", got, want)
	}
}
