package bench

import (
	"bytes"
	"errors"
	"fmt"
	"strings"
	"testing"

	"github.com/rs/zerolog"
)

func TestCaptureStdoutLogsInsteadOfPrinting(t *testing.T) {
	var logged bytes.Buffer
	log := zerolog.New(&logged).Level(zerolog.DebugLevel)
	want := errors.New("boom")
	err := captureStdout(log, func() error {
		fmt.Println("Using request distribution 'zipfian' a keyrange of [0 9]")
		fmt.Println("second line")
		return want
	})
	if !errors.Is(err, want) {
		t.Fatalf("error %v, want fn's", err)
	}
	out := logged.String()
	if !strings.Contains(out, "Using request distribution 'zipfian' a keyrange of [0 9]") || !strings.Contains(out, "second line") ||
		strings.Count(out, "\n") != 2 || !strings.Contains(out, `"from":"go-ycsb"`) {
		t.Fatalf("logged:\n%s", out)
	}
}
