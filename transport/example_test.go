package transport_test

import (
	"context"
	"errors"
	"fmt"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
	"github.com/quorumkv/quorumkv/transport"
	"github.com/rs/zerolog"
)

func ExampleNewTCP() {
	cfg := transport.DefaultTCPConfig()
	cfg.NodeID = "n1" // ListenAddr defaults to 127.0.0.1:0
	server, err := transport.NewTCP(cfg, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	defer server.Close()
	_ = server.Serve(func(_ context.Context, req *transport.Request) ([]byte, error) {
		return []byte("hello " + req.From), nil
	})

	cfg.NodeID = "n2"
	client, err := transport.NewTCP(cfg, zerolog.Nop())
	if err != nil {
		panic(err)
	}
	defer client.Close()

	ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
	defer cancel()
	reply, err := client.Call(ctx, server.Addr(), "greet", nil)
	fmt.Println(string(reply), err)
	// Output: hello n2 <nil>
}

func ExampleNetwork() {
	clk := clock.NewFake()
	network := transport.NewNetwork(clk)
	a := network.NewTransport("a:1", "a")
	b := network.NewTransport("b:1", "b")
	defer a.Close()
	defer b.Close()
	_ = b.Serve(func(_ context.Context, req *transport.Request) ([]byte, error) {
		return append([]byte("got "), req.Body...), nil
	})

	reply, err := a.Call(context.Background(), "b:1", "kv.put", []byte("x"))
	fmt.Println(string(reply), err)

	network.Partition([]string{"a:1"}, []string{"b:1"})
	_, err = a.Call(context.Background(), "b:1", "kv.put", []byte("y"))
	fmt.Println(errors.Is(err, transport.ErrUnreachable))

	network.Heal()
	reply, err = a.Call(context.Background(), "b:1", "kv.put", []byte("z"))
	fmt.Println(string(reply), err)
	// Output:
	// got x <nil>
	// true
	// got z <nil>
}

func ExampleRemoteError() {
	network := transport.NewNetwork(clock.NewFake())
	a := network.NewTransport("a", "a")
	b := network.NewTransport("b", "b")
	defer a.Close()
	defer b.Close()
	_ = b.Serve(func(context.Context, *transport.Request) ([]byte, error) {
		return nil, errors.New("no space left")
	})
	_, err := a.Call(context.Background(), "b", "kv.put", nil)
	var re *transport.RemoteError
	if errors.As(err, &re) {
		fmt.Println(re.Code, re.Message)
	}
	// Output: internal no space left
}
