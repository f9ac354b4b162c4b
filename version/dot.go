package version

import "fmt"

// Dot names one write: the node that issued it and that node's counter for
// the key. Two writes with the same dot are the same write.
type Dot struct {
	Node    string `msgpack:"n"`
	Counter uint64 `msgpack:"c"`
}

// String formats the dot as node:counter.
func (d Dot) String() string { return fmt.Sprintf("%s:%d", d.Node, d.Counter) }

// Less orders dots by node, then counter.
func (d Dot) Less(o Dot) bool {
	if d.Node != o.Node {
		return d.Node < o.Node
	}
	return d.Counter < o.Counter
}

// IsZero reports whether d is the zero dot.
func (d Dot) IsZero() bool { return d.Node == "" && d.Counter == 0 }
