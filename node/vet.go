package node

import (
	"context"
	"fmt"
	"sync"
	"time"

	"github.com/quorumkv/quorumkv/gossip"
)

// Vetting gossip members.
//
// With mutual TLS, gossip admits a node only once it has proved that it
// holds a certificate from the cluster's CA naming it: this node calls the
// node's RPC address with CallNode (the transport checks that the server
// certificate names the node) and a ping it answers (its side checks this
// node's certificate). A node that holds the gossip key but no valid
// certificate never enters the member table, so it takes no share of the
// ring and counts toward no quorum. Without TLS, gossip admits every node
// of the cluster, as before.

const (
	// vetTimeout bounds one vetting call, and how long gossip's push-pull
	// (which carries joins) waits for it.
	vetTimeout = 3 * time.Second
	// vetRetry is how long a failed vetting stands before the node tries
	// again, so that a stranger's gossip costs one dial per period.
	vetRetry = 10 * time.Second
)

// vetting is one node's vetting, at one RPC address.
type vetting struct {
	addr  string
	done  chan struct{} // closed when err is set
	err   error
	until time.Time // a failure stands until then
}

// vetter remembers which nodes proved who they are. Safe for concurrent
// use; its calls run on goroutines the node owns.
type vetter struct {
	mu   sync.Mutex
	byID map[string]*vetting
}

// vetMember is gossip.Config.Vet: nil once m.ID has answered at
// m.RPCAddr over mutual TLS with a certificate naming it. With wait it
// waits for a vetting in progress (up to vetTimeout); without, it refuses
// at once and the node rejoins m through gossip once the vetting
// succeeds, so that the member table learns of it without waiting for the
// next push-pull.
func (n *Node) vetMember(m gossip.Meta, wait bool) error {
	if m.RPCAddr == "" {
		return fmt.Errorf("node: %q advertises no RPC address", m.ID)
	}
	v, started := n.vets.get(m.ID, m.RPCAddr, n.clk.Now())
	if started {
		n.wg.Add(1)
		go n.runVet(m, v, !wait)
	}
	if !wait {
		select {
		case <-v.done:
			return v.err
		default:
			return gossip.ErrVetPending
		}
	}
	t := n.clk.NewTimer(vetTimeout)
	defer t.Stop()
	select {
	case <-v.done:
		return v.err
	case <-t.C():
		return gossip.ErrVetPending
	case <-n.ctx.Done():
		return n.ctx.Err()
	}
}

// get returns the vetting of id at addr, starting a new one when there is
// none, it was for another address, or its failure has stood long enough.
func (vt *vetter) get(id, addr string, now time.Time) (v *vetting, started bool) {
	vt.mu.Lock()
	defer vt.mu.Unlock()
	if v := vt.byID[id]; v != nil && v.addr == addr {
		select {
		case <-v.done:
			if v.err == nil || now.Before(v.until) {
				return v, false
			}
		default:
			return v, false // in progress
		}
	}
	if vt.byID == nil {
		vt.byID = make(map[string]*vetting)
	}
	v = &vetting{addr: addr, done: make(chan struct{})}
	vt.byID[id] = v
	return v, true
}

// runVet pings m over mutual TLS and records the result. A node vetted on
// the gossip packet path is rejoined through its gossip address, so that
// this node's table takes it in now.
func (n *Node) runVet(m gossip.Meta, v *vetting, rejoin bool) {
	defer n.wg.Done()
	ctx, cancel := context.WithTimeout(n.ctx, vetTimeout)
	_, err := n.tr.CallNode(ctx, m.ID, m.RPCAddr, rpcPing, nil)
	cancel()
	if err != nil {
		err = fmt.Errorf("node: %q at %s did not prove its certificate: %w", m.ID, m.RPCAddr, err)
		n.log.Warn().Err(err).Str("peer", m.ID).Msg("gossip: refusing a node that is not vetted")
	}
	n.vets.mu.Lock()
	v.err = err
	v.until = n.clk.Now().Add(vetRetry)
	close(v.done)
	n.vets.mu.Unlock()
	if err == nil {
		n.log.Info().Str("peer", m.ID).Str("rpc", m.RPCAddr).Msg("gossip: node vetted by its certificate")
		if rejoin && m.GossipAddr != "" {
			select {
			case n.vetJoin <- m.GossipAddr:
			default: // the next push-pull brings it
			}
		}
	}
}

// joinVetted pushes and pulls gossip state with a node vetted on the
// packet path, on a goroutine the node tracks (membershipLoop calls it).
func (n *Node) joinVetted(addr string) {
	n.wg.Add(1)
	go func() {
		defer n.wg.Done()
		if _, err := n.gossip.Join([]string{addr}); err != nil {
			n.log.Debug().Err(err).Str("gossip", addr).Msg("gossip: rejoin of a vetted node failed; the next push-pull brings it")
		}
	}()
}
