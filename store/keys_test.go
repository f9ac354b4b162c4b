package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestEncodeDecodeKey(t *testing.T) {
	long := bytes.Repeat([]byte("x"), 300)
	tests := []struct {
		name        string
		bucket, key []byte
		want        []byte
	}{
		{"empty", nil, nil, []byte{0}},
		{"bucket only", []byte("b"), nil, []byte{1, 'b'}},
		{"key only", nil, []byte("k"), []byte{0, 'k'}},
		{"both", []byte("users"), []byte("42"), []byte("\x05users42")},
		{"long bucket", long, []byte("k"), append(append([]byte{0xac, 0x02}, long...), 'k')},
		{"binary", []byte{0, 1}, []byte{0, 0xff}, []byte{2, 0, 1, 0, 0xff}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			k := EncodeKey(tt.bucket, tt.key)
			if !bytes.Equal(k, tt.want) {
				t.Fatalf("EncodeKey = %x, want %x", k, tt.want)
			}
			b, key, err := DecodeKey(k)
			if err != nil {
				t.Fatalf("DecodeKey: %v", err)
			}
			if !bytes.Equal(b, tt.bucket) || !bytes.Equal(key, tt.key) {
				t.Fatalf("DecodeKey = (%q, %q), want (%q, %q)", b, key, tt.bucket, tt.key)
			}
		})
	}
}

func TestDecodeKeyRejects(t *testing.T) {
	tests := []struct {
		name string
		k    []byte
	}{
		{"empty", nil},
		{"truncated varint", []byte{0x80}},
		{"bucket too long", []byte{3, 'a', 'b'}},
		{"non-minimal length", []byte{0x81, 0x00, 'a'}},
		{"overflowing varint", bytes.Repeat([]byte{0xff}, 11)},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := DecodeKey(tt.k); !errors.Is(err, ErrBadKey) {
				t.Fatalf("DecodeKey(%x) error = %v, want ErrBadKey", tt.k, err)
			}
		})
	}
}

func TestRowLayout(t *testing.T) {
	k := EncodeKey([]byte("b"), []byte("k"))
	const h = 0x0102030405060708
	if got, want := dataRow(h, k), []byte("d\x01\x02\x03\x04\x05\x06\x07\x08\x01bk"); !bytes.Equal(got, want) {
		t.Errorf("dataRow = %q, want %q", got, want)
	}
	if got, want := hintRow("n2", h, k), []byte("hn2\x00\x01\x02\x03\x04\x05\x06\x07\x08\x01bk"); !bytes.Equal(got, want) {
		t.Errorf("hintRow = %q, want %q", got, want)
	}
	if got, want := metaRow("node-id"), []byte("mnode-id"); !bytes.Equal(got, want) {
		t.Errorf("metaRow = %q, want %q", got, want)
	}
	hash, gotK, ok := parseDataRow(dataRow(h, k))
	if !ok || hash != h || !bytes.Equal(gotK, k) {
		t.Errorf("parseDataRow = %x %q %v", hash, gotK, ok)
	}
	owner, gotK, ok := parseHintRow(hintRow("n2", h, k))
	if !ok || owner != "n2" || !bytes.Equal(gotK, k) {
		t.Errorf("parseHintRow = %q %q %v", owner, gotK, ok)
	}
	after, hash, gotK, ok := parseReapRow(reapRow(77, h, k))
	if !ok || after != 77 || hash != h || !bytes.Equal(gotK, k) {
		t.Errorf("parseReapRow = %d %x %q %v", after, hash, gotK, ok)
	}
	for _, bad := range [][]byte{nil, []byte("h"), []byte("h\x00"), []byte("hx"), []byte("hn\x00short")} {
		if _, _, ok := parseHintRow(bad); ok {
			t.Errorf("parseHintRow(%q) accepted", bad)
		}
	}
	// Rows of consecutive hashes sort by hash regardless of key length.
	if bytes.Compare(dataRow(1, bytes.Repeat([]byte{0xff}, 40)), dataRow(2, nil)) >= 0 {
		t.Error("data rows do not sort by hash first")
	}
}

func TestIncrementBound(t *testing.T) {
	tests := []struct{ in, want []byte }{
		{[]byte("h"), []byte("i")},
		{[]byte{'h', 'a', 0}, []byte{'h', 'a', 1}},
		{[]byte{'r', 0xff, 0xff}, []byte{'s'}},
	}
	for _, tt := range tests {
		if got := incrementBound(tt.in); !bytes.Equal(got, tt.want) {
			t.Errorf("incrementBound(%x) = %x, want %x", tt.in, got, tt.want)
		}
	}
}

func TestValidOwner(t *testing.T) {
	for _, o := range []string{"", "a\x00b"} {
		if err := validOwner(o); !errors.Is(err, ErrBadOwner) {
			t.Errorf("validOwner(%q) = %v, want ErrBadOwner", o, err)
		}
	}
	if err := validOwner("n1"); err != nil {
		t.Errorf("validOwner(n1) = %v", err)
	}
}
