package gossip_test

import (
	"fmt"
	"time"

	"github.com/rs/zerolog"

	"github.com/quorumkv/quorumkv/gossip"
	"github.com/quorumkv/quorumkv/internal/clock"
)

func ExampleDetector() {
	clk := clock.NewFake()
	d := gossip.NewDetector(gossip.DefaultDetectorConfig(), clk)
	d.OnChange(func(peer string, available bool) {
		fmt.Printf("%s available=%v at +%v (%.1f s after the last heartbeat)\n", peer, available, clk.Since(clock.Epoch), (clk.Since(clock.Epoch) - 9*time.Second).Seconds())
	})
	for i := 0; i < 10; i++ { // heartbeats at +0s .. +9s, then a crash
		if i > 0 {
			clk.Advance(time.Second)
		}
		d.Heartbeat("n2")
	}
	for range 30 { // poll every 100 ms for 3 s
		clk.Advance(100 * time.Millisecond)
		d.Check()
	}
	fmt.Printf("phi after 3 s of silence: %.1f\n", d.Phi("n2"))
	// Output:
	// n2 available=false at +11.1s (2.1 s after the last heartbeat)
	// phi after 3 s of silence: 44.5
}

func ExampleDetectorConfig_DetectionTime() {
	cfg := gossip.DefaultDetectorConfig()
	fmt.Println(cfg.DetectionTime(time.Second).Round(time.Millisecond))
	// Output: 2.061s
}

func ExampleBucketProps_Validate() {
	p := gossip.DefaultBucketProps()
	fmt.Println(p.N, p.R, p.W, p.Conflict, p.Validate())
	p.W = 4
	fmt.Println(p.Validate())
	// Output:
	// 3 2 2 siblings <nil>
	// gossip: bucket w out of range: w=4, want 1..3
}

func ExampleNew() {
	cfg := gossip.DefaultConfig()
	cfg.Meta.ID = "n1"
	cfg.Meta.HTTPAddr = "127.0.0.1:8080"
	cfg.BindAddr = "127.0.0.1:0"
	g, err := gossip.New(cfg, zerolog.Nop())
	if err != nil {
		fmt.Println(err)
		return
	}
	defer g.Close()
	if _, err := g.Join(nil); err != nil { // no seeds: a cluster of one
		fmt.Println(err)
		return
	}
	p, _ := g.SetBucket("users", gossip.DefaultBucketProps())
	for _, m := range g.Members() {
		fmt.Println(m.Meta.ID, m.Meta.Cluster, m.Meta.HTTPAddr, m.Status)
	}
	fmt.Println("users:", p.N, p.R, p.W, p.Conflict, p.UpdatedBy)
	// Output:
	// n1 quorumkv 127.0.0.1:8080 alive
	// users: 3 2 2 siblings n1
}
