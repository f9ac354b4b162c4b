package store

import (
	"fmt"

	"github.com/rs/zerolog"
)

// pebbleLogger adapts zerolog to pebble's Logger. Fatalf does not exit the
// process: it panics with a *FatalError. Pebble never expects Fatalf to
// return, so panicking keeps its contract; when the call came from a Store
// method (the commit path: "pebble: fatal commit error"), the Store
// recovers the panic into an ErrFailed error. From a pebble background
// goroutine (MANIFEST write failures during a flush or compaction) nothing
// recovers it and the process dies, as it would with pebble's default
// logger.
type pebbleLogger struct {
	log zerolog.Logger
}

// Infof implements pebble.Logger. Pebble's own progress messages (WAL
// recycling, compactions) are internals: logged at debug level.
func (l pebbleLogger) Infof(format string, args ...any) {
	l.log.Debug().Msgf(format, args...)
}

// Errorf implements pebble.Logger.
func (l pebbleLogger) Errorf(format string, args ...any) {
	l.log.Error().Msgf(format, args...)
}

// Fatalf implements pebble.Logger.
func (l pebbleLogger) Fatalf(format string, args ...any) {
	msg := fmt.Sprintf(format, args...)
	l.log.Error().Str("fatal", msg).Msg("pebble reported a fatal error")
	panic(&FatalError{Msg: msg})
}
