package transport

import (
	"bufio"
	"bytes"
	"encoding/binary"
	"errors"
	"io"
	"runtime"
	"strings"
	"testing"

	"github.com/vmihailenco/msgpack/v5"
	"pgregory.net/rapid"
)

// libFrame is the frame as the msgpack library sees it, for interop tests.
type libFrame struct {
	_msgpack struct{} `msgpack:",as_array"`
	ID       uint64
	Kind     uint8
	Method   string
	From     string
	Body     []byte
	ErrCode  string
	ErrMsg   string
	To       string
}

func readOne(wire []byte, max int) (frame, int, error) {
	return readFrame(bufio.NewReader(bytes.NewReader(wire)), max)
}

func framesEqual(a, b frame) bool {
	return a.ID == b.ID && a.Kind == b.Kind && a.Method == b.Method && a.From == b.From &&
		bytes.Equal(a.Body, b.Body) && a.ErrCode == b.ErrCode && a.ErrMsg == b.ErrMsg && a.To == b.To
}

func TestFrameRoundTrip(t *testing.T) {
	tests := []struct {
		name string
		f    frame
	}{
		{"minimal request", frame{ID: 0, Kind: kindRequest, Method: "m"}},
		{"request", frame{ID: 1, Kind: kindRequest, Method: "kv.apply", From: "n1", Body: []byte{1, 2, 3}}},
		{"request to a node", frame{ID: 1, Kind: kindRequest, Method: "kv.apply", From: "n1", Body: []byte{1}, To: "n2"}},
		{"response no body", frame{ID: 127, Kind: kindResponse}},
		{"id uint8", frame{ID: 128, Kind: kindResponse, Body: []byte("x")}},
		{"id uint16", frame{ID: 256, Kind: kindResponse}},
		{"id uint32", frame{ID: 1 << 16, Kind: kindResponse}},
		{"id uint64", frame{ID: 1 << 40, Kind: kindResponse}},
		{"id max", frame{ID: ^uint64(0), Kind: kindResponse}},
		{"error", frame{ID: 9, Kind: kindError, ErrCode: "not_found", ErrMsg: "no such key"}},
		{"str8 method", frame{ID: 2, Kind: kindRequest, Method: strings.Repeat("a", 32)}},
		{"str16 from", frame{ID: 2, Kind: kindRequest, Method: "m", From: strings.Repeat("b", 256)}},
		{"str32 errmsg", frame{ID: 2, Kind: kindError, ErrMsg: strings.Repeat("c", 1<<16)}},
		{"bin8 body", frame{ID: 3, Kind: kindResponse, Body: bytes.Repeat([]byte{7}, 255)}},
		{"bin16 body", frame{ID: 3, Kind: kindResponse, Body: bytes.Repeat([]byte{7}, 256)}},
		{"bin32 body", frame{ID: 3, Kind: kindResponse, Body: bytes.Repeat([]byte{7}, 1<<16)}},
		{"large body", frame{ID: 3, Kind: kindResponse, Body: bytes.Repeat([]byte{9}, 3<<20)}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			wire := appendFrame(nil, &tt.f)
			if got, want := len(wire), prefixSize+tt.f.size(); got != want {
				t.Fatalf("encoded %d bytes, size() says %d", got, want)
			}
			got, n, err := readOne(wire, 64<<20)
			if err != nil {
				t.Fatalf("readFrame: %v", err)
			}
			if n != len(wire) {
				t.Fatalf("consumed %d bytes, want %d", n, len(wire))
			}
			if !framesEqual(got, tt.f) {
				t.Fatalf("round trip:\n got %+v\nwant %+v", got, tt.f)
			}
			// The msgpack library reads the same thing.
			var lf libFrame
			if err := msgpack.Unmarshal(wire[prefixSize:], &lf); err != nil {
				t.Fatalf("msgpack.Unmarshal: %v", err)
			}
			if lf.ID != tt.f.ID || kind(lf.Kind) != tt.f.Kind || lf.Method != tt.f.Method ||
				lf.From != tt.f.From || !bytes.Equal(lf.Body, tt.f.Body) ||
				lf.ErrCode != tt.f.ErrCode || lf.ErrMsg != tt.f.ErrMsg || lf.To != tt.f.To {
				t.Fatalf("library decoded %+v, want %+v", lf, tt.f)
			}
		})
	}
}

// TestFrameFromLibrary checks frames encoded by the msgpack library, with
// non-compact integers and nil values, decode.
func TestFrameFromLibrary(t *testing.T) {
	var buf bytes.Buffer
	enc := msgpack.NewEncoder(&buf)
	_ = enc.EncodeArrayLen(7)
	_ = enc.EncodeUint64(42) // 0xcf, not compact
	_ = enc.EncodeInt(1)     // a signed form
	_ = enc.EncodeString("kv.get")
	_ = enc.EncodeBytes([]byte("n2")) // bin for a string field
	_ = enc.EncodeString("payload")   // str for the body
	_ = enc.EncodeNil()
	_ = enc.EncodeNil()
	f, err := decodeFrame(buf.Bytes())
	if err != nil {
		t.Fatalf("decodeFrame: %v", err)
	}
	want := frame{ID: 42, Kind: kindRequest, Method: "kv.get", From: "n2", Body: []byte("payload")}
	if !framesEqual(f, want) {
		t.Fatalf("got %+v, want %+v", f, want)
	}

	wire, err := msgpack.Marshal(&libFrame{ID: 1 << 33, Kind: 3, ErrCode: "c", ErrMsg: "m"})
	if err != nil {
		t.Fatal(err)
	}
	f, err = decodeFrame(wire)
	if err != nil {
		t.Fatalf("decodeFrame(library struct): %v", err)
	}
	if f.ID != 1<<33 || f.Kind != kindError || f.ErrCode != "c" || f.ErrMsg != "m" {
		t.Fatalf("got %+v", f)
	}
}

func TestDecodeFrameRejects(t *testing.T) {
	good := appendFrame(nil, &frame{ID: 1, Kind: kindRequest, Method: "m", Body: []byte("abc")})[prefixSize:]
	tests := []struct {
		name string
		b    []byte
	}{
		{"not an array", []byte{0xa1, 'x'}},
		{"six fields", []byte{0x96, 1, 1, 0xa1, 'm', 0xa0, 0xc4, 0}},
		{"eight fields", append([]byte{0x98}, append(good[1:], 0xc0)...)},
		{"kind zero", []byte{0x97, 1, 0, 0xa1, 'm', 0xa0, 0xc0, 0xa0, 0xa0}},
		{"kind four", []byte{0x97, 1, 4, 0xa1, 'm', 0xa0, 0xc0, 0xa0, 0xa0}},
		{"kind huge", []byte{0x97, 1, 0xcd, 1, 1, 0xa1, 'm', 0xa0, 0xc0, 0xa0, 0xa0}},
		{"negative id", []byte{0x97, 0xd0, 0xff, 1, 0xa1, 'm', 0xa0, 0xc0, 0xa0, 0xa0}},
		{"negative fixint id", []byte{0x97, 0xff, 1, 0xa1, 'm', 0xa0, 0xc0, 0xa0, 0xa0}},
		{"request without method", []byte{0x97, 1, 1, 0xa0, 0xa0, 0xc0, 0xa0, 0xa0}},
		{"method is int", []byte{0x97, 1, 1, 5, 0xa0, 0xc0, 0xa0, 0xa0}},
		{"truncated", good[:len(good)-1]},
		{"trailing byte", append(append([]byte{}, good...), 0)},
		{"bin32 claims 4 GiB", []byte{0x97, 1, 2, 0xa0, 0xa0, 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2}},
		{"str32 claims 4 GiB", []byte{0x97, 1, 2, 0xdb, 0xff, 0xff, 0xff, 0xff}},
		{"array32 claims 4G fields", []byte{0xdd, 0xff, 0xff, 0xff, 0xff}},
		{"empty", nil},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, err := decodeFrame(tt.b); !errors.Is(err, ErrBadFrame) {
				t.Fatalf("decodeFrame = %v, want ErrBadFrame", err)
			}
		})
	}
}

func TestReadFrameErrors(t *testing.T) {
	tests := []struct {
		name string
		wire []byte
		want error
	}{
		{"clean eof", nil, io.EOF},
		{"short prefix", []byte{0, 0}, io.ErrUnexpectedEOF},
		{"short body", []byte{0, 0, 0, 10, 0x97}, io.ErrUnexpectedEOF},
		{"zero length", []byte{0, 0, 0, 0}, ErrBadFrame},
		{"too large", []byte{0xff, 0xff, 0xff, 0xff}, ErrFrameTooLarge},
		{"just over limit", binary.BigEndian.AppendUint32(nil, 1025), ErrFrameTooLarge},
		{"garbage", append([]byte{0, 0, 0, 5}, "hello"...), ErrBadFrame},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if _, _, err := readOne(tt.wire, 1024); !errors.Is(err, tt.want) {
				t.Fatalf("readFrame = %v, want %v", err, tt.want)
			}
		})
	}
}

// allocBytes returns how many bytes fn allocates.
func allocBytes(fn func()) uint64 {
	var before, after runtime.MemStats
	runtime.GC()
	runtime.ReadMemStats(&before)
	fn()
	runtime.ReadMemStats(&after)
	return after.TotalAlloc - before.TotalAlloc
}

// TestReadFrameDoesNotTrustLengths checks that lengths claimed by a peer
// are not allocated before the bytes arrive.
func TestReadFrameDoesNotTrustLengths(t *testing.T) {
	tests := []struct {
		name     string
		wire     []byte
		max      int
		maxAlloc uint64
	}{
		// Prefix above the limit: nothing beyond the reader is allocated.
		{"prefix 4 GiB", []byte{0xff, 0xff, 0xff, 0xff}, 64 << 20, 16 << 10},
		// Allowed 60 MiB prefix, 3 bytes of data: at most one read chunk.
		{"prefix 60 MiB, little data", append(binary.BigEndian.AppendUint32(nil, 60<<20), 0x97, 1, 2), 64 << 20, readChunk + 64<<10},
		// A bin32 inside a small frame claiming 4 GiB.
		{"bin32 4 GiB", append([]byte{0, 0, 0, 12}, 0x97, 1, 2, 0xa0, 0xa0, 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2), 64 << 20, 16 << 10},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			r := bufio.NewReaderSize(bytes.NewReader(tt.wire), 4096)
			var err error
			n := allocBytes(func() { _, _, err = readFrame(r, tt.max) })
			if err == nil {
				t.Fatal("readFrame succeeded on a bad frame")
			}
			if n > tt.maxAlloc {
				t.Fatalf("allocated %d bytes, want <= %d (err %v)", n, tt.maxAlloc, err)
			}
		})
	}
}

func TestFrameRoundTripProperty(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		f := frame{
			ID:      rapid.Uint64().Draw(t, "id"),
			Kind:    kind(rapid.IntRange(1, 3).Draw(t, "kind")),
			Method:  rapid.StringN(1, 300, -1).Draw(t, "method"),
			From:    rapid.String().Draw(t, "from"),
			Body:    rapid.SliceOfN(rapid.Byte(), 0, 70000).Draw(t, "body"),
			ErrCode: rapid.String().Draw(t, "code"),
			ErrMsg:  rapid.String().Draw(t, "msg"),
		}
		if len(f.Body) == 0 {
			f.Body = nil
		}
		wire := appendFrame(nil, &f)
		if len(wire) != prefixSize+f.size() {
			t.Fatalf("encoded %d bytes, size() %d", len(wire), f.size())
		}
		got, n, err := readOne(wire, 1<<20)
		if err != nil || n != len(wire) || !framesEqual(got, f) {
			t.Fatalf("round trip: got %+v n=%d err=%v, want %+v", got, n, err, f)
		}
		// Library encoding of the same struct decodes to the same frame.
		lib, err := msgpack.Marshal(&libFrame{ID: f.ID, Kind: uint8(f.Kind), Method: f.Method,
			From: f.From, Body: f.Body, ErrCode: f.ErrCode, ErrMsg: f.ErrMsg})
		if err != nil {
			t.Fatal(err)
		}
		got, err = decodeFrame(lib)
		if err != nil || !framesEqual(got, f) {
			t.Fatalf("library frame: got %+v err=%v, want %+v", got, err, f)
		}
	})
}

func FuzzReadFrame(f *testing.F) {
	seeds := []frame{
		{ID: 1, Kind: kindRequest, Method: "kv.apply", From: "n1", Body: []byte("body")},
		{ID: 300, Kind: kindResponse, Body: bytes.Repeat([]byte{1}, 300)},
		{ID: 1 << 40, Kind: kindError, ErrCode: "internal", ErrMsg: "boom"},
	}
	for _, s := range seeds {
		f.Add(appendFrame(nil, &s))
	}
	f.Add([]byte{})
	f.Add([]byte{0xff, 0xff, 0xff, 0xff})
	f.Add([]byte{0, 0, 0, 0})
	f.Add(append([]byte{0, 0, 0, 5}, "hello"...))
	f.Add([]byte{0, 0, 0, 12, 0x97, 1, 2, 0xa0, 0xa0, 0xc6, 0xff, 0xff, 0xff, 0xff, 1, 2})
	f.Add([]byte{0, 0, 0, 5, 0xdd, 0xff, 0xff, 0xff, 0xff})
	const max = 1 << 16
	f.Fuzz(func(t *testing.T, wire []byte) {
		fr, n, err := readOne(wire, max)
		if n > len(wire) {
			t.Fatalf("consumed %d of %d bytes", n, len(wire))
		}
		if err != nil {
			if len(wire) >= prefixSize && binary.BigEndian.Uint32(wire) > max && !errors.Is(err, ErrFrameTooLarge) {
				t.Fatalf("oversized prefix gave %v", err)
			}
			return
		}
		if !fr.Kind.valid() || (fr.Kind == kindRequest && fr.Method == "") {
			t.Fatalf("accepted invalid frame %+v", fr)
		}
		// What decodes re-encodes (canonically) and decodes to the same.
		again := appendFrame(nil, &fr)
		fr2, _, err := readOne(again, max+64)
		if err != nil || !framesEqual(fr, fr2) {
			t.Fatalf("re-encode: got %+v err=%v, want %+v", fr2, err, fr)
		}
	})
}

func bufioReader(r io.Reader) *bufio.Reader { return bufio.NewReader(r) }
