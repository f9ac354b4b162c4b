package wire

import (
	"bytes"
	"errors"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
)

type sample struct {
	A []struct{ X, Y int }
	M map[string]uint64
	S string
	B []byte
	F float64
	N *int
}

func TestCheckAcceptsWhatMsgpackWrites(t *testing.T) {
	v := sample{A: []struct{ X, Y int }{{1, -2}, {1 << 40, -1 << 40}}, M: map[string]uint64{"a": 1, "b": 1 << 63}, S: "hello", B: make([]byte, 300), F: 1.5}
	b, err := msgpack.Marshal(&v)
	if err != nil {
		t.Fatal(err)
	}
	if err := Check(b); err != nil {
		t.Fatal(err)
	}
}

func TestCheckRejectsHugeClaims(t *testing.T) {
	for _, b := range [][]byte{
		{0xdd, 0xff, 0xff, 0xff, 0xff},      // array32 of 4G items
		{0xdf, 0x10, 0, 0, 0},               // map32
		{0xdb, 0x7f, 0xff, 0xff, 0xff, 'x'}, // str32
		{0x91},                              // truncated fixarray
		{0xc1},                              // never-used code
		{0x01, 0x02},                        // trailing bytes
		// Headers cut short before their type byte: once a panic
		// (found by FuzzRequestDecode).
		{0xd7},                         // fixext8, nothing after the code
		{0xc7, 0x00},                   // ext8 of 0 bytes, no type byte
		{0xc8, 0x00, 0x00},             // ext16, no type byte
		{0x82, 0x30, 0xa1, 0x30, 0xd7}, // the fuzzer's input
	} {
		if err := Check(b); !errors.Is(err, ErrMalformed) {
			t.Errorf("Check(% x) = %v, want ErrMalformed", b, err)
		}
	}
	deep := make([]byte, 0, 100)
	for i := 0; i < 100; i++ {
		deep = append(deep, 0x91)
	}
	deep = append(deep, 0x00)
	if err := Check(deep); !errors.Is(err, ErrMalformed) {
		t.Errorf("deep nesting: %v", err)
	}
}

func TestCheckLimits(t *testing.T) {
	deep := append(bytes.Repeat([]byte{0x91}, 7), 0xc0) // depth 7
	if err := CheckLimits(deep, Limits{MaxDepth: 7}); err != nil {
		t.Fatalf("depth 7 at MaxDepth 7: %v", err)
	}
	if err := CheckLimits(deep, Limits{MaxDepth: 6}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("depth 7 at MaxDepth 6: %v", err)
	}
	three := []byte{0x93, 1, 2, 3}
	if err := CheckLimits(three, Limits{MaxItems: 2}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("3 items at MaxItems 2: %v", err)
	}
	if err := CheckLimits([]byte{0xca, 0, 0, 0, 0}, Limits{Strict: true}); !errors.Is(err, ErrMalformed) {
		t.Fatalf("float32 in strict mode: %v", err)
	}
	if err := Check([]byte{0xca, 0, 0, 0, 0}); err != nil {
		t.Fatalf("float32: %v", err)
	}
}

func FuzzCheck(f *testing.F) {
	b, _ := msgpack.Marshal(&sample{S: "x", A: []struct{ X, Y int }{{1, 2}}})
	f.Add(b)
	f.Add([]byte{0xdd, 0, 0, 0, 3})
	f.Add([]byte{0xd7, 0x01, 0, 0, 0, 0, 0, 0, 0, 0}) // fixext8
	f.Add([]byte{0xc7, 0x01, 0x05, 0xff})             // ext8
	f.Fuzz(func(t *testing.T, b []byte) {
		if Check(b) != nil {
			return
		}
		// Whatever passes decodes with bounded allocation; it need not
		// fit the type.
		var v sample
		_ = msgpack.Unmarshal(b, &v)
	})
}
