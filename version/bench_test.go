package version

import (
	"fmt"
	"testing"
)

func benchSets(siblings int) (Set, Set) {
	var a, b Set
	for i := 0; i < siblings; i++ {
		a.Update(Write{Node: fmt.Sprint("n", i%3), Value: make([]byte, 100)})
	}
	b = a.Clone()
	b.Update(Write{Node: "n1", Context: a.Context, Value: make([]byte, 100)})
	a.Update(Write{Node: "n2", Value: make([]byte, 100)})
	return a, b
}

func BenchmarkSync(b *testing.B) {
	for _, n := range []int{1, 3, 10} {
		x, y := benchSets(n)
		b.Run(fmt.Sprintf("siblings=%d", n), func(b *testing.B) {
			b.ReportAllocs()
			for i := 0; i < b.N; i++ {
				_ = Sync(x, y)
			}
		})
	}
}

func BenchmarkUpdate(b *testing.B) {
	x, _ := benchSets(3)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		s := x
		s.Update(Write{Node: "n1", Context: x.Context, Value: make([]byte, 100)})
	}
}

func BenchmarkContextCodec(b *testing.B) {
	x, _ := benchSets(3)
	key := []byte("bucket/key")
	enc := EncodeContext(key, x.Context)
	b.ReportAllocs()
	for i := 0; i < b.N; i++ {
		if _, err := DecodeContext(key, enc); err != nil {
			b.Fatal(err)
		}
		_ = EncodeContext(key, x.Context)
	}
}
