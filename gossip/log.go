package gossip

import (
	"bytes"
	"log"

	"github.com/rs/zerolog"
)

// logWriter adapts memberlist's *log.Logger output to zerolog. memberlist
// prefixes each line with a level tag such as "[WARN] "; the tag selects the
// zerolog level and is stripped from the message.
type logWriter struct {
	log zerolog.Logger
}

func newStdLogger(l zerolog.Logger) *log.Logger {
	return log.New(logWriter{log: l.With().Str("component", "memberlist").Logger()}, "", 0)
}

func (w logWriter) Write(p []byte) (int, error) {
	level, msg := parseLevel(bytes.TrimSpace(p))
	if level > zerolog.DebugLevel && bytes.Contains(msg, vetPending) {
		// memberlist warns of every alive message it ignores; one from a
		// node still being vetted is routine in a join.
		level = zerolog.DebugLevel
	}
	w.log.WithLevel(level).Msg(string(msg))
	return len(p), nil
}

var vetPending = []byte(ErrVetPending.Error())

// parseLevel splits a leading level tag off line; untagged lines are info.
func parseLevel(line []byte) (zerolog.Level, []byte) {
	for _, t := range [...]struct {
		tag   string
		level zerolog.Level
	}{
		{"[TRACE]", zerolog.TraceLevel},
		{"[DEBUG]", zerolog.DebugLevel},
		{"[INFO]", zerolog.InfoLevel},
		{"[WARN]", zerolog.WarnLevel},
		{"[ERR]", zerolog.ErrorLevel},
		{"[ERROR]", zerolog.ErrorLevel},
	} {
		if bytes.HasPrefix(line, []byte(t.tag)) {
			return t.level, bytes.TrimSpace(line[len(t.tag):])
		}
	}
	return zerolog.InfoLevel, line
}
