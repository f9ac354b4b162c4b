package node

import "testing"

func TestConsistencyLabelOfQuery(t *testing.T) {
	for _, tc := range []struct{ raw, param, want string }{
		{"", "r", "default"},
		{"r=quorum", "r", "quorum"},
		{"timeout=1s&w=all&n=3", "w", "all"},
		{"w=2", "w", "2"},
		{"r=one", "w", "default"},    // another operation's parameter
		{"rr=one&r=all", "r", "all"}, // a longer name is not r
		{"w=%61ll", "w", "other"},    // escaped: not a label value as is
		{"w=12", "w", "other"},
		{"w=" + string(make([]byte, 300)), "w", "other"},
	} {
		if got := consistencyLabel(queryValue(tc.raw, tc.param)); got != tc.want {
			t.Errorf("%q %s: %q, want %q", tc.raw, tc.param, got, tc.want)
		}
	}
}
