package gossip

import (
	"errors"
	"strings"
	"testing"
)

func TestBucketPropsValidate(t *testing.T) {
	for _, tc := range []struct {
		name string
		p    BucketProps
		want error
	}{
		{"default", DefaultBucketProps(), nil},
		{"n=1", BucketProps{N: 1, R: 1, W: 1, Conflict: ConflictLWW}, nil},
		{"n=max", BucketProps{N: MaxN, R: MaxN, W: 1, Conflict: ConflictSiblings}, nil},
		{"n=0", BucketProps{N: 0, R: 1, W: 1, Conflict: ConflictLWW}, ErrBadN},
		{"n>max", BucketProps{N: MaxN + 1, R: 1, W: 1, Conflict: ConflictLWW}, ErrBadN},
		{"r=0", BucketProps{N: 3, R: 0, W: 1, Conflict: ConflictLWW}, ErrBadR},
		{"r>n", BucketProps{N: 3, R: 4, W: 1, Conflict: ConflictLWW}, ErrBadR},
		{"w=0", BucketProps{N: 3, R: 1, W: 0, Conflict: ConflictLWW}, ErrBadW},
		{"w>n", BucketProps{N: 3, R: 1, W: 4, Conflict: ConflictLWW}, ErrBadW},
		{"conflict empty", BucketProps{N: 3, R: 2, W: 2}, ErrBadConflict},
		{"conflict unknown", BucketProps{N: 3, R: 2, W: 2, Conflict: "crdt"}, ErrBadConflict},
		{"negative stamp", BucketProps{N: 3, R: 2, W: 2, Conflict: ConflictLWW, Updated: -1}, ErrBadStamp},
		{"long updater", BucketProps{N: 3, R: 2, W: 2, Conflict: ConflictLWW, UpdatedBy: strings.Repeat("x", MaxIDLen+1)}, ErrBadStamp},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := tc.p.Validate()
			if tc.want == nil && err != nil || tc.want != nil && !errors.Is(err, tc.want) {
				t.Fatalf("Validate = %v, want %v", err, tc.want)
			}
		})
	}
}

func TestBucketPropsSupersedes(t *testing.T) {
	p := func(upd int64, by string, n int) BucketProps {
		return BucketProps{N: n, R: 1, W: 1, Conflict: ConflictLWW, Updated: upd, UpdatedBy: by}
	}
	for _, tc := range []struct {
		name string
		a, b BucketProps
		want bool
	}{
		{"later wins", p(2, "a", 1), p(1, "z", 9), true},
		{"earlier loses", p(1, "z", 9), p(2, "a", 1), false},
		{"same time, larger updater wins", p(1, "b", 1), p(1, "a", 9), true},
		{"full tie broken by content", p(1, "a", 3), p(1, "a", 2), true},
		{"identical does not supersede", p(1, "a", 3), p(1, "a", 3), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := tc.a.supersedes(tc.b); got != tc.want {
				t.Fatalf("supersedes = %v, want %v", got, tc.want)
			}
		})
	}
}
