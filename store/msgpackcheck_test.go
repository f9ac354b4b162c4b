package store

import (
	"bytes"
	"errors"
	"testing"
)

func TestCheckMsgpack(t *testing.T) {
	valid := [][]byte{
		{0x00}, {0x7f}, {0xe0}, {0xc0}, {0xc2}, {0xc3},
		{0x80},                  // {}
		{0x81, 0xa1, 'k', 0x01}, // {"k": 1}
		{0x92, 0xcc, 0xff, 0xd3, 0, 0, 0, 0, 0, 0, 0, 1},               // [255, int64]
		{0xc4, 0x02, 'a', 'b'},                                         // bin8
		{0xda, 0x00, 0x01, 'x'},                                        // str16
		{0xdc, 0x00, 0x01, 0xc0},                                       // array16 [nil]
		{0xdf, 0, 0, 0, 1, 0xa0, 0xc0},                                 // map32 {"": nil}
		append([]byte{0x91, 0x91, 0x91, 0x91, 0x91, 0x91, 0x91}, 0xc0), // depth 7
	}
	for _, b := range valid {
		if err := checkMsgpack(b); err != nil {
			t.Errorf("checkMsgpack(%x) = %v", b, err)
		}
	}
	invalid := [][]byte{
		nil,
		{0xc1},                               // never used
		{0xca, 0, 0, 0, 0},                   // float32
		{0xd4, 0, 0},                         // fixext1
		{0x81, 0xa1, 'k'},                    // map missing its value
		{0xa3, 'a', 'b'},                     // short string
		{0xc6, 0xff, 0xff, 0xff, 0xff},       // bin32 of 4 GiB
		{0xdd, 0x21, 0x67, 0x27, 0x00, 0xc0}, // array32 of 560 M elements
		{0xdf, 0x10, 0, 0, 0},                // map32 of 268 M pairs
		{0xc0, 0xc0},                         // trailing value
		bytes.Repeat([]byte{0x91}, 9),        // too deep
		{0xcf, 1, 2},                         // truncated uint64
	}
	for _, b := range invalid {
		if err := checkMsgpack(b); err == nil {
			t.Errorf("checkMsgpack(%x) accepted", b)
		}
	}
	// A lying length in a set or record is ErrCorrupt, not an allocation.
	if _, err := DecodeSet([]byte("\x01\x92\xdd!g'\xeb\x9b\x92")); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("DecodeSet(huge array) = %v", err)
	}
	if _, err := decodeRecord([]byte{recordFormat, 0x81, 0xa1, 's', 0xc6, 0x7f, 0xff, 0xff, 0xff}); !errors.Is(err, ErrCorrupt) {
		t.Fatalf("decodeRecord(huge bin) = %v", err)
	}
}
