package bench

import (
	"bytes"
	"errors"
	"fmt"
	"maps"
	"slices"
	"testing"

	"pgregory.net/rapid"
)

func TestRecordRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		rec  map[string][]byte
	}{
		{"empty", map[string][]byte{}},
		{"one", map[string][]byte{"field0": []byte("v")}},
		{"empty value", map[string][]byte{"f": {}}},
		{"binary", map[string][]byte{"a": {0, 0xff, 0x80}, "b": bytes.Repeat([]byte{7}, 300)}},
		{"ycsb", ycsbRecord("user1", 10, 100)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			b := EncodeRecord(nil, tt.rec)
			got, err := DecodeRecord(b)
			if err != nil {
				t.Fatalf("DecodeRecord: %v", err)
			}
			if !maps.EqualFunc(got, tt.rec, bytes.Equal) {
				t.Fatalf("round trip: got %v, want %v", got, tt.rec)
			}
		})
	}
}

// ycsbRecord builds a record shaped like the core workload's.
func ycsbRecord(key string, fields, size int) map[string][]byte {
	rec := make(map[string][]byte, fields)
	for i := range fields {
		v := bytes.Repeat([]byte(fmt.Sprintf("%s:%d;", key, i)), size)[:size]
		rec[fmt.Sprintf("field%d", i)] = v
	}
	return rec
}

func TestRecordSize(t *testing.T) {
	// 10 fields of 100 bytes: 1 magic + 1 count + 10 × (1 + 6 + 1 + 100).
	if n := len(EncodeRecord(nil, ycsbRecord("k", 10, 100))); n != 1082 {
		t.Fatalf("encoded size %d, want 1082", n)
	}
}

func TestRecordCanonical(t *testing.T) {
	// The same record built in different orders encodes identically.
	a := map[string][]byte{}
	b := map[string][]byte{}
	for i := range 50 {
		a[fmt.Sprint(i)] = []byte{byte(i)}
		b[fmt.Sprint(49-i)] = []byte{byte(49 - i)}
	}
	if !bytes.Equal(EncodeRecord(nil, a), EncodeRecord(nil, b)) {
		t.Fatal("encoding depends on map order")
	}
}

func TestDecodeRecordRejects(t *testing.T) {
	valid := EncodeRecord(nil, map[string][]byte{"a": []byte("1"), "b": []byte("2")})
	tests := []struct {
		name string
		b    []byte
	}{
		{"nil", nil},
		{"bad magic", append([]byte{0}, valid[1:]...)},
		{"trailing", append(slices.Clone(valid), 0)},
		{"truncated", valid[:len(valid)-1]},
		{"count beyond data", []byte{recordMagic, 10, 1, 'a', 0}},
		{"out of order", []byte{recordMagic, 2, 1, 'b', 0, 1, 'a', 0}},
		{"duplicate", []byte{recordMagic, 2, 1, 'a', 0, 1, 'a', 0}},
		{"non-minimal varint", []byte{recordMagic, 0x81, 0x00, 1, 'a', 0}},
		{"length overflow", []byte{recordMagic, 1, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01}},
		{"missing count", []byte{recordMagic}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := DecodeRecord(tt.b); !errors.Is(err, ErrBadRecord) {
				t.Fatalf("DecodeRecord(%x) = %v, want ErrBadRecord", tt.b, err)
			}
		})
	}
}

func FuzzDecodeRecord(f *testing.F) {
	f.Add(EncodeRecord(nil, map[string][]byte{}))
	f.Add(EncodeRecord(nil, ycsbRecord("user7", 3, 5)))
	f.Add([]byte{recordMagic, 2, 1, 'b', 0, 1, 'a', 0})
	f.Add([]byte{recordMagic, 0x81, 0x00})
	f.Fuzz(func(t *testing.T, b []byte) {
		rec, err := DecodeRecord(b)
		if err != nil {
			if !errors.Is(err, ErrBadRecord) {
				t.Fatalf("error %v does not wrap ErrBadRecord", err)
			}
			return
		}
		// Only canonical encodings decode.
		if again := EncodeRecord(nil, rec); !bytes.Equal(again, b) {
			t.Fatalf("decoded %x, re-encoded %x", b, again)
		}
	})
}

func genRecord() *rapid.Generator[map[string][]byte] {
	return rapid.MapOfN(rapid.StringN(0, 8, -1), rapid.SliceOfN(rapid.Byte(), 0, 16), 0, 8)
}

func TestRecordRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		rec := genRecord().Draw(t, "rec")
		got, err := DecodeRecord(EncodeRecord(nil, rec))
		if err != nil {
			t.Fatalf("decode: %v", err)
		}
		if !maps.EqualFunc(got, rec, bytes.Equal) {
			t.Fatalf("got %v, want %v", got, rec)
		}
	})
}

func TestMergeRecordsProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		recs := rapid.SliceOfN(genRecord(), 1, 5).Draw(t, "recs")
		merged := MergeRecords(recs...)

		// Every field of every sibling is present, at a value at least as
		// great as that sibling's, and taken from some sibling.
		for _, r := range recs {
			for k, v := range r {
				m, ok := merged[k]
				if !ok || bytes.Compare(m, v) < 0 {
					t.Fatalf("field %q: merged %q, sibling %q", k, m, v)
				}
			}
		}
		for k, m := range merged {
			if !slices.ContainsFunc(recs, func(r map[string][]byte) bool { v, ok := r[k]; return ok && bytes.Equal(v, m) }) {
				t.Fatalf("field %q=%q comes from no sibling", k, m)
			}
		}
		// Order does not matter, and merging again changes nothing.
		perm := rapid.Permutation(recs).Draw(t, "perm")
		if !maps.EqualFunc(MergeRecords(perm...), merged, bytes.Equal) {
			t.Fatal("merge depends on sibling order")
		}
		if !maps.EqualFunc(MergeRecords(merged, merged), merged, bytes.Equal) {
			t.Fatal("merge is not idempotent")
		}
	})
}
