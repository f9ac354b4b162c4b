package store_test

import (
	"fmt"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
	"github.com/rs/zerolog"
)

// A replica stores a client write with Update, and a version replicated
// from another node with Merge; concurrent versions become siblings.
func Example() {
	cfg := store.DefaultConfig()
	cfg.Dir = "data"
	cfg.FS = vfs.NewMem()
	s, err := store.Open(cfg, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	defer s.Close()

	k := store.EncodeKey([]byte("users"), []byte("ada"))
	_, _, err = s.Update(k, func(cur version.Set) (version.Set, error) {
		_, err := cur.Update(version.Write{Node: "n1", Context: cur.Context, Value: []byte("v1")})
		return cur, err
	})
	if err != nil {
		panic(err)
	}

	var remote version.Set // a write n2 accepted concurrently
	if _, err := remote.Update(version.Write{Node: "n2", Value: []byte("v2")}); err != nil {
		panic(err)
	}
	merged, changed, err := s.Merge(k, remote)
	if err != nil {
		panic(err)
	}
	fmt.Println("changed:", changed)
	for _, sib := range merged.Siblings {
		fmt.Println(sib.Dot, string(sib.Value))
	}
	// Merging the same version again writes nothing.
	_, changed, _ = s.Merge(k, remote)
	fmt.Println("changed again:", changed)
	// Output:
	// changed: true
	// n1:1 v1
	// n2:1 v2
	// changed again: false
}

func ExampleEncodeKey() {
	k := store.EncodeKey([]byte("users"), []byte("ada"))
	bucket, key, _ := store.DecodeKey(k)
	fmt.Printf("%q -> %s / %s\n", k, bucket, key)
	// Output: "\x05usersada" -> users / ada
}
