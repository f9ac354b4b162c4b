package version

import (
	"slices"
	"sort"
)

// Context is a causal context: the set of dots some party has seen. It is a
// version vector VV, meaning every dot (n, c) with c <= VV[n], plus a sorted
// cloud of individual dots beyond the vector. The zero Context is empty and
// ready to use. A Context is a value: methods that change it have pointer
// receivers and callers copy with Clone.
type Context struct {
	VV    map[string]uint64 `msgpack:"v,omitempty"`
	Cloud []Dot             `msgpack:"d,omitempty"`
}

// Covers reports whether the context has seen dot d.
func (c Context) Covers(d Dot) bool {
	if d.Counter <= c.VV[d.Node] {
		return true
	}
	i := sort.Search(len(c.Cloud), func(i int) bool { return !c.Cloud[i].Less(d) })
	return i < len(c.Cloud) && c.Cloud[i] == d
}

// Max returns the highest counter of node that the context holds.
func (c Context) Max(node string) uint64 {
	m := c.VV[node]
	for _, d := range c.Cloud {
		if d.Node == node && d.Counter > m {
			m = d.Counter
		}
	}
	return m
}

// IsEmpty reports whether the context covers no dot.
func (c Context) IsEmpty() bool {
	for _, v := range c.VV {
		if v > 0 {
			return false
		}
	}
	return len(c.Cloud) == 0
}

// Clone returns a deep copy.
func (c Context) Clone() Context {
	out := Context{}
	if len(c.VV) > 0 {
		out.VV = make(map[string]uint64, len(c.VV))
		for k, v := range c.VV {
			if v > 0 {
				out.VV[k] = v
			}
		}
	}
	if len(c.Cloud) > 0 {
		out.Cloud = slices.Clone(c.Cloud)
	}
	return out
}

// Add records dot d as seen.
func (c *Context) Add(d Dot) {
	if d.Counter == 0 || c.Covers(d) {
		return
	}
	if d.Counter == c.VV[d.Node]+1 {
		if c.VV == nil {
			c.VV = make(map[string]uint64)
		}
		c.VV[d.Node] = d.Counter
	} else {
		i := sort.Search(len(c.Cloud), func(i int) bool { return !c.Cloud[i].Less(d) })
		c.Cloud = slices.Insert(c.Cloud, i, d)
	}
	c.compact()
}

// Merge adds every dot of o to c.
func (c *Context) Merge(o Context) {
	for n, v := range o.VV {
		if v > c.VV[n] {
			if c.VV == nil {
				c.VV = make(map[string]uint64, len(o.VV))
			}
			c.VV[n] = v
		}
	}
	if len(o.Cloud) > 0 {
		merged := make([]Dot, 0, len(c.Cloud)+len(o.Cloud))
		merged = append(merged, c.Cloud...)
		merged = append(merged, o.Cloud...)
		sort.Slice(merged, func(i, j int) bool { return merged[i].Less(merged[j]) })
		c.Cloud = slices.Compact(merged)
	}
	c.compact()
}

// compact drops cloud dots the vector covers and folds cloud dots that
// extend the vector contiguously.
func (c *Context) compact() {
	if len(c.Cloud) == 0 {
		return
	}
	out := c.Cloud[:0]
	for _, d := range c.Cloud { // sorted by node, then counter
		v := c.VV[d.Node]
		switch {
		case d.Counter <= v:
			// covered
		case d.Counter == v+1:
			if c.VV == nil {
				c.VV = make(map[string]uint64)
			}
			c.VV[d.Node] = d.Counter
		default:
			out = append(out, d)
		}
	}
	c.Cloud = out
	if len(c.Cloud) == 0 {
		c.Cloud = nil
	}
}

// Equal reports whether c and o cover exactly the same dots.
func (c Context) Equal(o Context) bool {
	return c.Descends(o) && o.Descends(c)
}

// Descends reports whether c covers every dot that o covers.
func (c Context) Descends(o Context) bool {
	for n, v := range o.VV {
		have := c.VV[n]
		if have >= v {
			continue
		}
		// Every dot (n, have+1 .. v) must sit in c's cloud, which holds
		// distinct dots, so counting them is enough.
		var in uint64
		for _, d := range c.Cloud {
			if d.Node == n && d.Counter > have && d.Counter <= v {
				in++
			}
		}
		if in != v-have {
			return false
		}
	}
	for _, d := range o.Cloud {
		if !c.Covers(d) {
			return false
		}
	}
	return true
}

// Ordering is the causal relation between two contexts.
type Ordering int

// The outcomes of Compare.
const (
	Equal Ordering = iota
	Before
	After
	Concurrent
)

// String names the ordering.
func (o Ordering) String() string {
	return [...]string{"equal", "before", "after", "concurrent"}[o]
}

// Compare returns how a relates to b: Before when b has seen everything a
// has and more, After for the reverse.
func Compare(a, b Context) Ordering {
	ab, ba := a.Descends(b), b.Descends(a)
	switch {
	case ab && ba:
		return Equal
	case ab:
		return After
	case ba:
		return Before
	default:
		return Concurrent
	}
}
