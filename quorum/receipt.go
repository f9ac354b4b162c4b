package quorum

import (
	"net/http"
	"sort"
	"strconv"
	"strings"
)

// Receipt tells a client how its request was served: which replicas
// answered, whether fallbacks or hints stood in for down primaries, how many
// distinct versions a read saw, and which replicas read repair fixed.
type Receipt struct {
	Coordinator string
	// Replicas are the nodes whose replies or acks counted, in arrival order.
	Replicas []string
	// Fallbacks maps a fallback node that counted to the primary it stood
	// in for.
	Fallbacks map[string]string
	// Hinted lists primaries whose copy is held as a durable hint.
	Hinted []string
	// Versions is how many distinct replica states a read saw (1 when all
	// agreed).
	Versions int
	// Repaired lists replicas that read repair brought up to date before
	// the answer.
	Repaired []string
	// Needed is the R or W the request asked for.
	Needed int
}

// Receipt header names.
const (
	HeaderCoordinator = "X-Quorum-Coordinator"
	HeaderReplicas    = "X-Quorum-Replicas"
	HeaderFallbacks   = "X-Quorum-Fallbacks"
	HeaderHinted      = "X-Quorum-Hinted"
	HeaderVersions    = "X-Quorum-Versions"
	HeaderRepaired    = "X-Quorum-Repaired"
	HeaderNeeded      = "X-Quorum-Needed"
)

// addReplica records that t counted, and which primary it stood in for if
// it is a fallback.
func (r *Receipt) addReplica(t Target) {
	r.Replicas = append(r.Replicas, t.Node)
	if t.Fallback() {
		if r.Fallbacks == nil {
			r.Fallbacks = map[string]string{}
		}
		r.Fallbacks[t.Node] = t.HintFor
	}
}

// WriteHeaders sets the receipt headers on h.
func (r Receipt) WriteHeaders(h http.Header) {
	if r.Coordinator != "" {
		h.Set(HeaderCoordinator, r.Coordinator)
	}
	h.Set(HeaderReplicas, strings.Join(r.Replicas, ","))
	if len(r.Fallbacks) > 0 {
		parts := make([]string, 0, len(r.Fallbacks))
		for f, p := range r.Fallbacks {
			parts = append(parts, f+"="+p)
		}
		sort.Strings(parts)
		h.Set(HeaderFallbacks, strings.Join(parts, ","))
	}
	if len(r.Hinted) > 0 {
		h.Set(HeaderHinted, strings.Join(r.Hinted, ","))
	}
	if r.Versions > 0 {
		h.Set(HeaderVersions, strconv.Itoa(r.Versions))
	}
	if len(r.Repaired) > 0 {
		h.Set(HeaderRepaired, strings.Join(r.Repaired, ","))
	}
	if r.Needed > 0 {
		h.Set(HeaderNeeded, strconv.Itoa(r.Needed))
	}
}

// ParseReceipt reads receipt headers back, for clients and tests.
func ParseReceipt(h http.Header) Receipt {
	split := func(s string) []string {
		if s == "" {
			return nil
		}
		return strings.Split(s, ",")
	}
	r := Receipt{
		Coordinator: h.Get(HeaderCoordinator),
		Replicas:    split(h.Get(HeaderReplicas)),
		Hinted:      split(h.Get(HeaderHinted)),
		Repaired:    split(h.Get(HeaderRepaired)),
	}
	r.Versions, _ = strconv.Atoi(h.Get(HeaderVersions))
	r.Needed, _ = strconv.Atoi(h.Get(HeaderNeeded))
	for _, kv := range split(h.Get(HeaderFallbacks)) {
		if f, p, ok := strings.Cut(kv, "="); ok {
			if r.Fallbacks == nil {
				r.Fallbacks = map[string]string{}
			}
			r.Fallbacks[f] = p
		}
	}
	return r
}
