package node

import (
	"encoding/json"
	"fmt"
	"net/http/httptest"
	"testing"

	"github.com/quorumkv/quorumkv/quorum"
)

// A request whose deadline passed with replicas still silent is a 504
// timeout; one where replicas answered with failures is a 503. Both carry
// the quorum's details.
func TestWriteOpErrorStatus(t *testing.T) {
	for _, tc := range []struct {
		timedOut bool
		status   int
		code     string
	}{
		{true, 504, CodeTimeout},
		{false, 503, CodeQuorum},
	} {
		w := httptest.NewRecorder()
		qe := &quorum.QuorumError{Op: "write", Needed: 2, Answered: 1, Replied: []string{"n1"},
			Failed: map[string]string{"n2": "no reply before the deadline"}, TimedOut: tc.timedOut}
		writeOpError(w, fmt.Errorf("put: %w", qe))
		var body errorBody
		if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
			t.Fatal(err)
		}
		if w.Code != tc.status || body.Code != tc.code || body.Needed != 2 || body.Answered != 1 || len(body.Failed) != 1 {
			t.Fatalf("timed out %v: %d %+v, want %d %s with the quorum's details", tc.timedOut, w.Code, body, tc.status, tc.code)
		}
	}
}

// A replica that refused a write's context as implausible (its clock is
// behind the coordinator's by years, or it was sent one directly) makes a
// 400 bad_context, as the coordinator's own check does: retrying cannot
// help, reading the key again can.
func TestWriteOpErrorImplausible(t *testing.T) {
	w := httptest.NewRecorder()
	writeOpError(w, fmt.Errorf("%w: n2: version: implausible version", quorum.ErrImplausible))
	var body errorBody
	if err := json.Unmarshal(w.Body.Bytes(), &body); err != nil {
		t.Fatal(err)
	}
	if w.Code != 400 || body.Code != CodeBadContext {
		t.Fatalf("implausible: %d %+v, want 400 %s", w.Code, body, CodeBadContext)
	}
}
