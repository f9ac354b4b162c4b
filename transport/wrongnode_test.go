package transport

import (
	"context"
	"errors"
	"sync/atomic"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// wrongNodeCase checks one transport pair: a call naming the serving node
// runs, one naming another node is refused without running the handler,
// and plain Call (naming no node) still runs.
func wrongNodeCase(t *testing.T, cli Transport, srvAddr, srvID string, ran *atomic.Int32) {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	if out, err := cli.CallNode(ctx, srvID, srvAddr, "m", []byte("x")); err != nil || len(out) == 0 {
		t.Fatalf("CallNode to the right node = %q, %v", out, err)
	}
	if ran.Load() != 1 {
		t.Fatalf("handler ran %d times, want 1", ran.Load())
	}
	_, err := cli.CallNode(ctx, "someone-else", srvAddr, "m", []byte("x"))
	if !errors.Is(err, ErrWrongNode) || !errors.Is(err, ErrNotSent) {
		t.Fatalf("CallNode to a reused address = %v, want ErrWrongNode and ErrNotSent", err)
	}
	if ran.Load() != 1 {
		t.Fatalf("handler ran for a request meant for another node (%d runs)", ran.Load())
	}
	if _, err := cli.Call(ctx, srvAddr, "m", nil); err != nil {
		t.Fatalf("Call naming no node = %v", err)
	}
	if ran.Load() != 2 {
		t.Fatalf("handler ran %d times, want 2", ran.Load())
	}
}

func countingEcho(ran *atomic.Int32) Handler {
	return func(ctx context.Context, req *Request) ([]byte, error) {
		ran.Add(1)
		return echo(ctx, req)
	}
}

func TestTCPRefusesRequestsForAnotherNode(t *testing.T) {
	var ran atomic.Int32
	srv, _ := newTCP(t, "new-node", countingEcho(&ran), nil)
	cli, _ := newTCP(t, "cli", nil, nil)
	wrongNodeCase(t, cli, srv.Addr(), "new-node", &ran)
}

func TestMemRefusesRequestsForAnotherNode(t *testing.T) {
	n := NewNetwork(clock.Real())
	a, b := n.NewTransport("a", "a"), n.NewTransport("b", "new-node")
	defer a.Close()
	defer b.Close()
	var ran atomic.Int32
	if err := b.Serve(countingEcho(&ran)); err != nil {
		t.Fatal(err)
	}
	wrongNodeCase(t, a, "b", "new-node", &ran)
}

func TestFrameCarriesTo(t *testing.T) {
	f := frame{ID: 7, Kind: kindRequest, Method: "m", From: "a", Body: []byte("b"), To: "n2"}
	b := appendFrame(nil, &f)
	got, err := decodeFrame(b[prefixSize:])
	if err != nil || got.To != "n2" || got.Method != "m" || string(got.Body) != "b" {
		t.Fatalf("decode = %+v, %v", got, err)
	}
	if len(b) != prefixSize+f.size() {
		t.Fatalf("size %d, encoded %d after the prefix", f.size(), len(b)-prefixSize)
	}
	// An earlier version's 7-field frame (no To) still decodes.
	old := f
	old.To = ""
	b = appendFrame(nil, &old)
	b = b[:len(b)-1]         // drop the empty To string
	b[prefixSize] = 0x90 | 7 // fixarray of 7
	if got, err := decodeFrame(b[prefixSize:]); err != nil || got.To != "" || got.Method != "m" {
		t.Fatalf("7-field frame = %+v, %v", got, err)
	}
}
