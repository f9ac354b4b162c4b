package transport

import (
	"context"
	"strconv"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

func echoBody(_ context.Context, req *Request) ([]byte, error) { return req.Body, nil }

// BenchmarkTCPCall measures a round trip of a 128-byte body over loopback,
// with calls from many goroutines sharing the connections.
func BenchmarkTCPCall(b *testing.B) {
	for _, size := range []int{128, 64 << 10} {
		b.Run(sizeName(size), func(b *testing.B) {
			srv, _ := newTCP(b, "srv", echoBody, nil)
			cli, _ := newTCP(b, "cli", nil, nil)
			body := make([]byte, size)
			ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
			defer cancel()
			if _, err := cli.Call(ctx, srv.Addr(), "m", body); err != nil { // dial outside the timing
				b.Fatal(err)
			}
			b.SetBytes(int64(size))
			b.ReportAllocs()
			b.SetParallelism(32) // 32 callers per core share the connections
			b.ResetTimer()
			b.RunParallel(func(pb *testing.PB) {
				for pb.Next() {
					if _, err := cli.Call(ctx, srv.Addr(), "m", body); err != nil {
						b.Error(err)
						return
					}
				}
			})
		})
	}
}

// BenchmarkTCPCallSerial measures latency: one call at a time.
func BenchmarkTCPCallSerial(b *testing.B) {
	srv, _ := newTCP(b, "srv", echoBody, nil)
	cli, _ := newTCP(b, "cli", nil, nil)
	body := make([]byte, 128)
	ctx, cancel := context.WithTimeout(context.Background(), time.Minute)
	defer cancel()
	b.ReportAllocs()
	for b.Loop() {
		if _, err := cli.Call(ctx, srv.Addr(), "m", body); err != nil {
			b.Fatal(err)
		}
	}
}

func BenchmarkMemCall(b *testing.B) {
	n := NewNetwork(clock.Real())
	a, s := n.NewTransport("a", "a"), n.NewTransport("b", "b")
	defer a.Close()
	defer s.Close()
	_ = s.Serve(echoBody)
	body := make([]byte, 128)
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if _, err := a.Call(context.Background(), "b", "m", body); err != nil {
				b.Error(err)
				return
			}
		}
	})
}

func BenchmarkReadFrame(b *testing.B) {
	wire := appendFrame(nil, &frame{ID: 12345, Kind: kindRequest, Method: "kv.apply", From: "node-1", Body: make([]byte, 128)})
	b.ReportAllocs()
	b.SetBytes(int64(len(wire)))
	for b.Loop() {
		if _, err := decodeFrame(wire[prefixSize:]); err != nil {
			b.Fatal(err)
		}
	}
}

func sizeName(n int) string {
	if n >= 1<<10 {
		return strconv.Itoa(n>>10) + "KiB"
	}
	return strconv.Itoa(n) + "B"
}

// BenchmarkInboundLimits measures what the byte budget and the handler cap
// add to each inbound request when neither is exhausted: one take and one
// return of each, from every core at once.
func BenchmarkInboundLimits(b *testing.B) {
	budget := newByteBudget(DefaultTCPConfig().MaxInflightBytes)
	slots := make(handlerSlots, DefaultTCPConfig().MaxHandlers)
	var waits atomic.Uint64
	ctx := context.Background()
	b.ReportAllocs()
	b.RunParallel(func(pb *testing.PB) {
		for pb.Next() {
			if err := budget.acquire(ctx, 200, time.Time{}, &waits); err != nil {
				b.Error(err)
				return
			}
			if err := slots.acquire(ctx, &waits); err != nil {
				b.Error(err)
				return
			}
			slots.release()
			budget.release(200)
		}
	})
	if waits.Load() != 0 {
		b.Fatalf("%d waits with room to spare", waits.Load())
	}
}
