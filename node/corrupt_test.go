package node_test

import (
	"bytes"
	"fmt"
	"path/filepath"
	"testing"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/internal/testcluster"
	"github.com/quorumkv/quorumkv/node"
	"github.com/quorumkv/quorumkv/quorum"
	"github.com/quorumkv/quorumkv/store"
)

// corruptRecord overwrites the stored record of (bucket, key) in the pebble
// database under dir with bytes that do not decode: the current record
// format byte, then a msgpack code that is never used. The node owning dir
// must be stopped. Only the store's documented row layout is assumed: a
// data row starts with 'd' and ends with the encoded key.
func corruptRecord(t *testing.T, fs vfs.FS, dir, bucket, key string) {
	t.Helper()
	db, err := pebble.Open(dir, &pebble.Options{FS: fs, Logger: quietPebble{}})
	if err != nil {
		t.Fatal(err)
	}
	defer db.Close()
	ek := store.EncodeKey([]byte(bucket), []byte(key))
	it, err := db.NewIter(&pebble.IterOptions{LowerBound: []byte{'d'}, UpperBound: []byte{'e'}})
	if err != nil {
		t.Fatal(err)
	}
	var row []byte
	for valid := it.First(); valid; valid = it.Next() {
		if bytes.HasSuffix(it.Key(), ek) {
			row = bytes.Clone(it.Key())
		}
	}
	if err := it.Close(); err != nil {
		t.Fatal(err)
	}
	if row == nil {
		t.Fatalf("no data row for %s/%s under %s", bucket, key, dir)
	}
	if err := db.Set(row, []byte{1, 0xc1}, pebble.Sync); err != nil {
		t.Fatal(err)
	}
}

// quietPebble drops pebble's informational logs.
type quietPebble struct{}

func (quietPebble) Infof(string, ...any)              {}
func (quietPebble) Errorf(string, ...any)             {}
func (quietPebble) Fatalf(format string, args ...any) { panic(fmt.Sprintf(format, args...)) }

// A replica whose record went bad on disk answers reads with the code
// corrupt_record over the real transport; the coordinating node turns that
// into quorum.ErrCorruptReplica, so the read does not count the replica and
// repairs it, which heals its record (store.Merge quarantines the bytes
// and moves the replica to a new actor epoch).
func TestReadHealsRemoteCorruptRecord(t *testing.T) {
	fs := vfs.NewMem()
	c := testcluster.StartWith(t, testcluster.Options{Nodes: 3, TCP: true, Configure: func(i int, cfg *node.Config) {
		if i == 2 {
			cfg.FS = fs
		}
	}})
	if r := c.Do(0, "PUT", "/v1/kv/b/k?w=all", []byte("v"), nil); r.Status != 204 {
		t.Fatalf("PUT: %d %s", r.Status, r.Body)
	}
	c.Stop(2)
	corruptRecord(t, fs, filepath.Join("/data/n3", "store"), "b", "k")
	c.Restart(2)
	c.WaitRing()
	c.WaitReachable()
	ek := store.EncodeKey([]byte("b"), []byte("k"))
	if _, err := c.Node(2).Store().Get(ek); err == nil {
		t.Fatal("n3's record still decodes after corruptRecord")
	}

	// r=all cannot be met: n3 does not count toward R.
	if r := c.Do(0, "GET", "/v1/kv/b/k?r=all", nil, nil); r.Status == 200 {
		t.Fatalf("GET r=all answered %d %q although n3's record is corrupt", r.Status, r.Body)
	}
	c.Eventually(5e9, "n3's record to be healed by read repair", func() bool {
		r := c.Do(0, "GET", "/v1/kv/b/k?r=2", nil, nil)
		if r.Status != 200 || string(r.Body) != "v" {
			t.Fatalf("GET r=2: %d %q", r.Status, r.Body)
		}
		set, err := c.Node(2).Store().Get(ek)
		return err == nil && set.Equal(replicaSet(t, c, 0, "b", "k"))
	})
	st := c.Node(2).Store()
	if m := st.Metrics(); m.Quarantined != 1 || st.ActorEpoch() != 1 {
		t.Fatalf("n3 quarantined %d records, actor epoch %d; want 1 and 1", m.Quarantined, st.ActorEpoch())
	}
	// n3 answers reads again.
	r := c.Do(0, "GET", "/v1/kv/b/k?r=all", nil, nil)
	if r.Status != 200 || string(r.Body) != "v" {
		t.Fatalf("GET r=all after the heal: %d %q", r.Status, r.Body)
	}
	if rc := quorum.ParseReceipt(r.Header); rc.Versions != 1 {
		t.Fatalf("receipt after the heal %+v: want the replicas in agreement", rc)
	}
}
