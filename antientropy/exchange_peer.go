package antientropy

import (
	"context"
	"fmt"
)

// Peer is the other side of an exchange.
type Peer interface {
	Hashes(ctx context.Context, req *HashesRequest) (*HashesResponse, error)
	LeafKeys(ctx context.Context, req *LeafKeysRequest) (*LeafKeysResponse, error)
	Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error)
	Push(ctx context.Context, req *PushRequest) (*PushResponse, error)
	HasTomb(ctx context.Context, req *HasTombRequest) (*HasTombResponse, error)
	MarkReap(ctx context.Context, req *MarkReapRequest) (*MarkReapResponse, error)
}

// Caller sends one request to a node and waits for its reply. The node
// at addr refuses a request meant for another node ID (an address that a
// new node reused). transport.Transport satisfies it.
type Caller interface {
	CallNode(ctx context.Context, node, addr, method string, body []byte) ([]byte, error)
}

// Meter sees every call an RPCPeer makes: Wait before sending (a rate
// limit), Done after the reply or failure, with the bytes of the request
// and the reply bodies.
type Meter interface {
	Wait(ctx context.Context) error
	Done(method string, sent, received int)
}

// RPCPeer is a Peer reached over a Caller with the ae.* methods and
// msgpack bodies.
type RPCPeer struct {
	caller Caller
	node   string
	addr   string
	meter  Meter
}

var _ Peer = (*RPCPeer)(nil)

// NewRPCPeer returns a Peer for node, reached at addr. meter may be nil.
func NewRPCPeer(c Caller, node, addr string, meter Meter) *RPCPeer {
	return &RPCPeer{caller: c, node: node, addr: addr, meter: meter}
}

func (p *RPCPeer) call(ctx context.Context, method string, req, resp any) error {
	if p.meter != nil {
		if err := p.meter.Wait(ctx); err != nil {
			return err
		}
	}
	body := encodeMsg(req)
	out, err := p.caller.CallNode(ctx, p.node, p.addr, method, body)
	if p.meter != nil {
		p.meter.Done(method, len(body), len(out))
	}
	if err != nil {
		return fmt.Errorf("antientropy: %s to %s: %w", method, p.node, err)
	}
	if err := decodeMsg(out, resp); err != nil {
		return fmt.Errorf("%w: reply to %s from %s: %v", ErrProtocol, method, p.node, err)
	}
	return nil
}

// Hashes implements Peer.
func (p *RPCPeer) Hashes(ctx context.Context, req *HashesRequest) (*HashesResponse, error) {
	var resp HashesResponse
	return &resp, p.call(ctx, MethodHashes, req, &resp)
}

// LeafKeys implements Peer.
func (p *RPCPeer) LeafKeys(ctx context.Context, req *LeafKeysRequest) (*LeafKeysResponse, error) {
	var resp LeafKeysResponse
	return &resp, p.call(ctx, MethodLeafKeys, req, &resp)
}

// Fetch implements Peer.
func (p *RPCPeer) Fetch(ctx context.Context, req *FetchRequest) (*FetchResponse, error) {
	var resp FetchResponse
	return &resp, p.call(ctx, MethodFetch, req, &resp)
}

// Push implements Peer.
func (p *RPCPeer) Push(ctx context.Context, req *PushRequest) (*PushResponse, error) {
	var resp PushResponse
	return &resp, p.call(ctx, MethodPush, req, &resp)
}

// HasTomb implements Peer.
func (p *RPCPeer) HasTomb(ctx context.Context, req *HasTombRequest) (*HasTombResponse, error) {
	var resp HasTombResponse
	return &resp, p.call(ctx, MethodHasTomb, req, &resp)
}

// MarkReap implements Peer.
func (p *RPCPeer) MarkReap(ctx context.Context, req *MarkReapRequest) (*MarkReapResponse, error) {
	var resp MarkReapResponse
	return &resp, p.call(ctx, MethodMarkReap, req, &resp)
}
