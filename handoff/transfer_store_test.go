package handoff

import (
	"fmt"
	"testing"
	"testing/synctest"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// scanAfterStore gives a *store.Store the ScanAfter that ServeScan needs,
// for these tests, by scanning from afterHash and skipping up to the
// cursor.
type scanAfterStore struct{ *store.Store }

func (s scanAfterStore) ScanAfter(lo, hi uint64, afterHash uint64, afterKey []byte, fn func(hash uint64, k, setBytes []byte) error) error {
	c := Cursor{Started: true, Hash: afterHash, Key: afterKey}
	return s.Scan(afterHash, hi, func(hash uint64, k, set []byte) error {
		if !c.before(hash, k) {
			return nil
		}
		return fn(hash, k, set)
	})
}

// Streaming between two real stores (pebble on in-memory filesystems):
// ServeScan over the source's rows in their real order, Transfers merging
// into the local store and persisting its progress there.
func TestTransfersRealStores(t *testing.T) {
	synctest.Test(t, func(t *testing.T) {
		cfg := xferConfig()
		remote := openHintStore(t, vfs.NewMem())
		local := openHintStore(t, vfs.NewMem())
		sets := map[string]version.Set{}
		for i := range 300 {
			k := store.EncodeKey([]byte("b"), fmt.Appendf(nil, "key-%04d", i))
			set := hintSet(t, "n9", fmt.Sprintf("value-%d", i))
			if _, _, err := remote.Merge(k, set); err != nil {
				t.Fatal(err)
			}
			sets[string(k)] = set
		}
		// Partition 2 already holds an older concurrent write here: the
		// transfer merges, it does not overwrite.
		var mine []byte
		for k := range sets {
			if p := partitionOf(cfg, []byte(k)); p == 2 {
				mine = []byte(k)
				break
			}
		}
		older := hintSet(t, "n1", "concurrent")
		if _, _, err := local.Merge(mine, older); err != nil {
			t.Fatal(err)
		}

		src := newXferFakeSource(cfg)
		src.add("n1", scanAfterStore{remote})
		tr, err := NewTransfers(cfg, local, src, clock.Real(), zerolog.Nop())
		if err != nil {
			t.Fatal(err)
		}
		tr.Start()
		defer tr.Close()
		tr.Set(5, gains([]string{"n1"}, 0, 2), nil)
		synctest.Wait()
		if !tr.Done(5) {
			t.Fatalf("not done: %+v", tr.Progress())
		}
		moved := 0
		for k, set := range sets {
			got, err := local.Get([]byte(k))
			if err != nil {
				t.Fatal(err)
			}
			switch p := partitionOf(cfg, []byte(k)); {
			case k == string(mine):
				if want := version.Sync(older, set); !got.Equal(want) || len(got.Siblings) != 2 {
					t.Errorf("%x = %+v, want both writes %+v", k, got, want)
				}
				moved++
			case p == 0 || p == 2:
				if !got.Equal(set) {
					t.Errorf("%x = %+v, want %+v", k, got, set)
				}
				moved++
			default:
				if !got.IsEmpty() {
					t.Errorf("%x of partition %d moved", k, p)
				}
			}
		}
		if m := tr.Metrics(); m.Merged != uint64(moved) || m.PartitionsDone != 2 {
			t.Fatalf("metrics %+v, want %d merged", m, moved)
		}
		for _, p := range []int{0, 2} {
			b, err := local.GetMeta(progressMeta(p))
			if err != nil {
				t.Fatal(err)
			}
			pr, err := decodeProgress(b)
			if err != nil || !pr.Done || pr.Plan != 5 || pr.Keys != status(t, tr, p).Keys {
				t.Fatalf("partition %d's progress %+v, %v", p, pr, err)
			}
		}
	})
}

// partitionOf returns k's partition under the store's default hash.
func partitionOf(cfg TransferConfig, k []byte) int {
	h := hashOf(k)
	for p := range cfg.Partitions {
		if lo, hi := cfg.PartitionRange(p); h >= lo && h <= hi {
			return p
		}
	}
	return -1
}
