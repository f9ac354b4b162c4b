package antientropy

import (
	"testing"
)

// A record whose set bytes do not decode is never sent to a peer; the
// exchange pulls the peer's copy instead, which heals it, whichever side
// starts the exchange.
func TestExchangeHealsUnreadableRecord(t *testing.T) {
	for _, initiator := range []string{"a", "b"} {
		t.Run("from "+initiator, func(t *testing.T) {
			cfg := testConfig()
			cfg.N = 2
			c := newTestCluster(t, cfg, "a", "b")
			other := map[string]string{"a": "b", "b": "a"}[initiator]
			c.write("a", "k", "v", false, false)
			c.write("b", "k", "v", false, false)
			c.write("a", "fine", "w", false, false)
			c.exchange("a", "b")
			if !c.rootsEqual("a", "b") {
				t.Fatal("replicas differ before the corruption")
			}
			want := c.node("b").st.get(testKey("k"))
			c.node("a").st.putRaw(testKey("k"), []byte{0x01, 0xc1})

			rep := c.exchange(initiator, other)
			if !c.rootsEqual("a", "b") {
				t.Fatalf("replicas differ after the exchange: %+v", rep)
			}
			if got := c.node("a").st.get(testKey("k")); !got.Equal(want) {
				t.Fatalf("a holds %v after the exchange, want %v", got.Dots(), want.Dots())
			}
			// Started by b, a serves its records and must leave the bad one
			// out; started by a, the pull heals it before a pushes.
			if n := c.node("a").svc.Metrics().Unreadable; (n > 0) != (initiator == "b") {
				t.Fatalf("unreadable records counted on a: %d", n)
			}
			if got := c.node("b").st.get(testKey("k")); !got.Equal(want) {
				t.Fatalf("b was changed: %v", got.Dots())
			}
		})
	}
}
