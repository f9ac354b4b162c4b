package quorum

import (
	"fmt"
	"strconv"
	"time"
)

// Level is a replica count as a client writes it: a number, or one of
// "one", "quorum", "all", resolved against the request's n.
type Level struct {
	name  string // "", "one", "quorum", "all"
	count int
}

// Symbolic levels.
var (
	One    = Level{name: "one"}
	Quorum = Level{name: "quorum"}
	All    = Level{name: "all"}
)

// Count returns a numeric level.
func Count(n int) Level { return Level{count: n} }

// IsZero reports whether the level was not given.
func (l Level) IsZero() bool { return l.name == "" && l.count == 0 }

// String renders the level as a client would write it.
func (l Level) String() string {
	if l.name != "" {
		return l.name
	}
	return strconv.Itoa(l.count)
}

// Resolve turns the level into a replica count for n replicas.
func (l Level) Resolve(n int) int {
	switch l.name {
	case "one":
		return 1
	case "quorum":
		return n/2 + 1
	case "all":
		return n
	}
	return l.count
}

// ParseLevel parses an integer, "one", "quorum" or "all".
func ParseLevel(s string) (Level, error) {
	switch s {
	case "one", "quorum", "all":
		return Level{name: s}, nil
	}
	v, err := strconv.Atoi(s)
	if err != nil || v < 1 {
		return Level{}, fmt.Errorf("%w: %q is not a positive integer, one, quorum or all", ErrBadParam, s)
	}
	return Level{count: v}, nil
}

// Options are a request's consistency parameters as the client gave them;
// zero fields take the bucket's defaults.
type Options struct {
	R, W, N Level
	Timeout time.Duration
	// Sloppy lets fallback nodes count toward W, and toward R, where a
	// fallback answers with the hints it keeps (sloppy quorum). It is on
	// unless the client sent sloppy=false.
	Sloppy bool
}

// Bucket is what the coordinator needs of a bucket's properties.
type Bucket struct {
	N, R, W int
	// LWW makes the bucket last-write-wins instead of keeping siblings.
	LWW bool
}

// Params are resolved request parameters.
type Params struct {
	N, R, W int
	Timeout time.Duration
	Sloppy  bool
	LWW     bool
}

// Resolve checks a request's options against its bucket and the cluster
// size: 1 <= R, W <= n <= bucket n, and n <= cluster size.
func Resolve(o Options, b Bucket, clusterSize int, defaultTimeout time.Duration) (Params, error) {
	// Without an explicit n, a bucket's n larger than the cluster (n=3 on
	// a single node) shrinks to the cluster; an explicit n never does.
	p := Params{N: min(b.N, clusterSize), R: b.R, W: b.W, Timeout: o.Timeout, Sloppy: o.Sloppy, LWW: b.LWW}
	if !o.N.IsZero() {
		p.N = o.N.Resolve(b.N)
		if p.N > b.N {
			return Params{}, &ParamError{Param: "n", Value: o.N.String(), Reason: fmt.Sprintf("at most the bucket's n=%d", b.N)}
		}
	}
	if p.N > clusterSize {
		return Params{}, &ParamError{Param: "n", Value: strconv.Itoa(p.N), Reason: fmt.Sprintf("at most the cluster size %d", clusterSize)}
	}
	if !o.R.IsZero() {
		p.R = o.R.Resolve(p.N)
	}
	if !o.W.IsZero() {
		p.W = o.W.Resolve(p.N)
	}
	p.R, p.W = min(p.R, p.N), min(p.W, p.N) // bucket defaults above a smaller n
	if !o.R.IsZero() && o.R.Resolve(p.N) > p.N {
		return Params{}, &ParamError{Param: "r", Value: o.R.String(), Reason: fmt.Sprintf("between 1 and n=%d", p.N)}
	}
	if !o.W.IsZero() && o.W.Resolve(p.N) > p.N {
		return Params{}, &ParamError{Param: "w", Value: o.W.String(), Reason: fmt.Sprintf("between 1 and n=%d", p.N)}
	}
	if p.N < 1 || p.R < 1 || p.W < 1 {
		return Params{}, &ParamError{Param: "n", Value: strconv.Itoa(p.N), Reason: "at least 1"}
	}
	if p.Timeout <= 0 {
		p.Timeout = defaultTimeout
	}
	return p, nil
}
