package gossip

import (
	"bytes"
	"encoding/json"
	"testing"

	"github.com/rs/zerolog"
)

func TestMemberlistLogsGoToZerolog(t *testing.T) {
	for _, tc := range []struct {
		line, level, msg string
	}{
		{"[DEBUG] memberlist: Stream connection from=x\n", "debug", "memberlist: Stream connection from=x"},
		{"[INFO] memberlist: Marking b as failed", "info", "memberlist: Marking b as failed"},
		{"[WARN] memberlist: Refuting", "warn", "memberlist: Refuting"},
		{"[ERR] memberlist: Failed push/pull merge", "error", "memberlist: Failed push/pull merge"},
		{"[ERROR] transport", "error", "transport"},
		{"[TRACE] noisy", "trace", "noisy"},
		{"no tag at all", "info", "no tag at all"},
		{`[WARN] memberlist: ignoring alive message for 'n3': gossip: node not vetted: "n3": gossip: vetting in progress`, "debug",
			`memberlist: ignoring alive message for 'n3': gossip: node not vetted: "n3": gossip: vetting in progress`},
	} {
		t.Run(tc.level+" "+tc.msg, func(t *testing.T) {
			var buf bytes.Buffer
			std := newStdLogger(zerolog.New(&buf).Level(zerolog.TraceLevel))
			std.Print(tc.line)
			var got map[string]string
			if err := json.Unmarshal(buf.Bytes(), &got); err != nil {
				t.Fatalf("%q: %v", buf.String(), err)
			}
			if got["level"] != tc.level || got["message"] != tc.msg || got["component"] != "memberlist" {
				t.Fatalf("logged %v, want level %q message %q", got, tc.level, tc.msg)
			}
		})
	}
}

func TestMemberlistLogsRespectLevel(t *testing.T) {
	var buf bytes.Buffer
	std := newStdLogger(zerolog.New(&buf).Level(zerolog.WarnLevel))
	std.Print("[DEBUG] memberlist: chatter")
	if buf.Len() != 0 {
		t.Fatalf("debug line logged at warn level: %q", buf.String())
	}
	std.Print("[WARN] memberlist: trouble")
	if buf.Len() == 0 {
		t.Fatal("warn line dropped")
	}
}
