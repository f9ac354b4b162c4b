package store

import (
	"strconv"
	"testing"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
	"go.uber.org/goleak"
)

func TestMain(m *testing.M) {
	goleak.VerifyTestMain(m)
}

// testConfig returns a small in-memory configuration on fs.
func testConfig(fs vfs.FS) Config {
	cfg := DefaultConfig()
	cfg.Dir = "db"
	cfg.FS = fs
	cfg.CacheSize = 4 << 20
	cfg.MemTableSize = 1 << 20
	cfg.Clock = clock.NewFake()
	return cfg
}

// openTest opens a store on fs, letting mut adjust the config, and closes
// it when the test ends.
func openTest(t testing.TB, fs vfs.FS, mut func(*Config)) *Store {
	t.Helper()
	cfg := testConfig(fs)
	if mut != nil {
		mut(&cfg)
	}
	s, err := Open(cfg, zerolog.Nop())
	if err != nil {
		t.Fatalf("Open: %v", err)
	}
	t.Cleanup(func() { _ = s.Close() })
	return s
}

// tk is an encoded test key in bucket "b".
func tk(name string) []byte { return EncodeKey([]byte("b"), []byte(name)) }

// write returns an Update function that writes value as node, superseding
// everything the current set holds.
func write(node, value string) func(version.Set) (version.Set, error) {
	return func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: node, Context: cur.Context, Value: []byte(value), WriteTime: 1})
		return cur, err
	}
}

// increment is an Update function that adds one to a decimal counter held
// in the key's single sibling.
func increment(cur version.Set) (version.Set, error) {
	n := 0
	if len(cur.Siblings) > 0 {
		var err error
		if n, err = strconv.Atoi(string(cur.Siblings[0].Value)); err != nil {
			return cur, err
		}
	}
	_, err := cur.Update(version.Write{Node: "n1", Context: cur.Context, Value: []byte(strconv.Itoa(n + 1))})
	return cur, err
}

// counterValue reads a counter written by increment.
func counterValue(t testing.TB, s *Store, k []byte) int {
	t.Helper()
	set, err := s.Get(k)
	if err != nil {
		t.Fatalf("Get: %v", err)
	}
	if len(set.Siblings) == 0 {
		return 0
	}
	if len(set.Siblings) != 1 {
		t.Fatalf("counter has %d siblings", len(set.Siblings))
	}
	n, err := strconv.Atoi(string(set.Siblings[0].Value))
	if err != nil {
		t.Fatalf("counter value %q: %v", set.Siblings[0].Value, err)
	}
	return n
}

// values lists the sibling values of a set.
func values(s version.Set) []string {
	var out []string
	for _, sib := range s.Siblings {
		out = append(out, string(sib.Value))
	}
	return out
}
