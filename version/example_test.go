package version_test

import (
	"fmt"

	"github.com/quorumkv/quorumkv/version"
)

// Two clients write the same key without seeing each other: both versions
// are kept. A third write that carries the context of a read resolves them.
func Example() {
	var key version.Set
	key.Update(version.Write{Node: "n1", Value: []byte("red")})
	key.Update(version.Write{Node: "n1", Value: []byte("blue")})
	fmt.Println("siblings:", len(key.Siblings))

	read := key.Context // what a GET returns as X-Context
	key.Update(version.Write{Node: "n2", Context: read, Value: []byte("purple")})
	fmt.Println("siblings:", len(key.Siblings), string(key.Siblings[0].Value), key.Siblings[0].Dot)
	// Output:
	// siblings: 2
	// siblings: 1 purple n2:1
}
