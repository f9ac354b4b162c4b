package quorum

import (
	"errors"
	"net/http"
	"reflect"
	"testing"
	"time"

	"pgregory.net/rapid"
)

func TestResolve(t *testing.T) {
	b := Bucket{N: 3, R: 2, W: 2}
	lv := func(s string) Level {
		l, err := ParseLevel(s)
		if err != nil {
			t.Fatal(err)
		}
		return l
	}
	tests := []struct {
		name    string
		o       Options
		size    int
		n, r, w int
		errPar  string
	}{
		{"defaults", Options{}, 3, 3, 2, 2, ""},
		{"symbolic", Options{R: lv("one"), W: lv("all")}, 3, 3, 1, 3, ""},
		{"quorum of n=5", Options{N: lv("5"), R: lv("quorum")}, 5, 0, 0, 0, "n"}, // above bucket n
		{"smaller n", Options{N: lv("1")}, 3, 1, 1, 1, ""},
		{"explicit n above cluster", Options{N: lv("3")}, 2, 0, 0, 0, "n"},
		{"bucket n shrinks to the cluster", Options{}, 2, 2, 2, 2, ""},
		{"single node", Options{}, 1, 1, 1, 1, ""},
		{"r above n", Options{R: lv("4")}, 5, 0, 0, 0, "r"},
		{"w above n", Options{W: lv("4")}, 5, 0, 0, 0, "w"},
		{"quorum of 3", Options{W: lv("quorum")}, 3, 3, 2, 2, ""},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			p, err := Resolve(tt.o, b, tt.size, time.Second)
			if tt.errPar != "" {
				var pe *ParamError
				if !errors.As(err, &pe) || pe.Param != tt.errPar || !errors.Is(err, ErrBadParam) {
					t.Fatalf("err = %v, want a ParamError on %s", err, tt.errPar)
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if p.N != tt.n || p.R != tt.r || p.W != tt.w || p.Timeout != time.Second {
				t.Fatalf("got n=%d r=%d w=%d timeout=%v", p.N, p.R, p.W, p.Timeout)
			}
		})
	}
	for _, bad := range []string{"0", "-1", "two", "", "1.5"} {
		if _, err := ParseLevel(bad); !errors.Is(err, ErrBadParam) {
			t.Errorf("ParseLevel(%q) = %v", bad, err)
		}
	}
}

// The resolved quorum always satisfies 1 <= R, W <= n <= min(bucket n, size).
func TestPropertyResolveBounds(t *testing.T) {
	rapid.Check(t, func(t *rapid.T) {
		bn := rapid.IntRange(1, 7).Draw(t, "bn")
		b := Bucket{N: bn, R: rapid.IntRange(1, bn).Draw(t, "br"), W: rapid.IntRange(1, bn).Draw(t, "bw")}
		size := rapid.IntRange(1, 9).Draw(t, "size")
		level := func(name string) Level {
			switch rapid.IntRange(0, 4).Draw(t, name) {
			case 0:
				return Level{}
			case 1:
				return One
			case 2:
				return Quorum
			case 3:
				return All
			}
			return Count(rapid.IntRange(1, 9).Draw(t, name+"n"))
		}
		o := Options{N: level("n"), R: level("r"), W: level("w")}
		p, err := Resolve(o, b, size, time.Second)
		if err != nil {
			return
		}
		if p.R < 1 || p.W < 1 || p.R > p.N || p.W > p.N || p.N > bn || p.N > size {
			t.Fatalf("out of bounds: %+v for %+v bucket %+v size %d", p, o, b, size)
		}
		if !o.N.IsZero() && o.N.Resolve(bn) != p.N {
			t.Fatalf("out of bounds: %+v for %+v bucket %+v size %d", p, o, b, size)
		}
		if o.R == Quorum && p.R != p.N/2+1 {
			t.Fatalf("quorum r=%d for n=%d", p.R, p.N)
		}
	})
}

func TestReceiptHeadersRoundTrip(t *testing.T) {
	r := Receipt{Coordinator: "n1", Replicas: []string{"n1", "n4"}, Fallbacks: map[string]string{"n4": "n2"},
		Hinted: []string{"n2"}, Versions: 2, Repaired: []string{"n3"}, Needed: 2}
	h := http.Header{}
	r.WriteHeaders(h)
	if got := ParseReceipt(h); !reflect.DeepEqual(got, r) {
		t.Fatalf("round trip:\n got %+v\nwant %+v", got, r)
	}
}
