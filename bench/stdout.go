package bench

import (
	"bytes"
	"io"
	"os"
	"strings"
	"sync"

	"github.com/rs/zerolog"
)

// stdoutMu serializes captureStdout: os.Stdout is process-wide.
var stdoutMu sync.Mutex

// captureStdout runs fn with os.Stdout pointing at a pipe and logs what fn
// printed at debug level. go-ycsb's workload constructor prints its key
// chooser ("Using request distribution ...") on stdout, where it would mix
// with the benchmark's summary. fn must not start goroutines that outlive
// it and print.
func captureStdout(log zerolog.Logger, fn func() error) error {
	stdoutMu.Lock()
	defer stdoutMu.Unlock()
	r, w, err := os.Pipe()
	if err != nil {
		return fn() // no pipe: let the lines through rather than fail
	}
	var buf bytes.Buffer
	copied := make(chan struct{})
	go func() {
		_, _ = io.Copy(&buf, r)
		close(copied)
	}()
	saved := os.Stdout
	os.Stdout = w
	ferr := fn()
	os.Stdout = saved
	_ = w.Close()
	<-copied
	_ = r.Close()
	for _, line := range strings.Split(strings.TrimSpace(buf.String()), "\n") {
		if line != "" {
			log.Debug().Str("from", "go-ycsb").Msg(line)
		}
	}
	return ferr
}
