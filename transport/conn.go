package transport

import (
	"bufio"
	"context"
	"crypto/tls"
	"errors"
	"fmt"
	"io"
	"net"
	"runtime"
	"sync"
	"time"
)

// The writer flushes after maxBatch frames or maxBatchBytes bytes even if
// more are queued, so that the write deadline is renewed regularly.
const (
	maxBatch      = 256
	maxBatchBytes = 4 << 20
)

// result is what a pending call receives: a reply body or an error.
type result struct {
	body []byte
	err  error
}

// conn is one TCP connection. An outbound conn (we dialled it) carries our
// requests and their replies; an inbound conn carries the peer's requests
// and our replies. Each has a reader and a writer goroutine.
type conn struct {
	t      *TCP
	nc     net.Conn
	remote string // peer address, for logs and errors
	source string // inbound: the peer's IP, counted by MaxConnsPerSource
	// peer is the node the TLS peer authenticated as ("" without TLS).
	// Outbound: set before the conn is shared. Inbound: set by the reader
	// after the handshake, and read by the reader only.
	peer     string
	frameEnd time.Time // inbound, reader only: when the frame being read must be whole
	outbound bool
	handler  Handler // inbound: the transport's handler (nil before Serve)
	br       *bufio.Reader
	bw       *bufio.Writer      // made by writeLoop at the first write; only it uses it
	sendq    chan frame         // frames for the writer
	done     chan struct{}      // closed by fail
	ctx      context.Context    // cancelled by fail; handlers' ctx
	cancel   context.CancelFunc // cancels ctx

	mu      sync.Mutex // guards the fields below
	closed  bool
	err     error                  // set by fail: what calls on this conn get
	pending map[uint64]chan result // outbound: calls awaiting a reply, by ID
}

func newConn(t *TCP, nc net.Conn, outbound bool, remote string) *conn {
	ctx, cancel := context.WithCancel(t.ctx)
	// An inbound connection costs what anyone who reaches the port can
	// make it cost, thousands of times over: it starts with small buffers
	// (replies are few next to the requests a peer's outbound side
	// queues), and its write buffer is made at its first reply.
	rbuf, qlen := t.cfg.ReadBufferSize, t.cfg.SendQueueLen
	if !outbound {
		rbuf, qlen = min(rbuf, inboundReadBuffer), min(qlen, inboundSendQueue)
	}
	return &conn{
		t:        t,
		nc:       nc,
		remote:   remote,
		outbound: outbound,
		br:       bufio.NewReaderSize(nc, rbuf),
		sendq:    make(chan frame, qlen),
		done:     make(chan struct{}),
		ctx:      ctx,
		cancel:   cancel,
		pending:  make(map[uint64]chan result),
	}
}

func (c *conn) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

// register adds a pending call with the given ID.
func (c *conn) register(id uint64) (chan result, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, c.err
	}
	ch := make(chan result, 1)
	c.pending[id] = ch
	return ch, nil
}

// unregister removes a pending call. It reports false if the call was
// already completed (its result is on, or about to be on, its channel).
func (c *conn) unregister(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	if _, ok := c.pending[id]; !ok {
		return false
	}
	delete(c.pending, id)
	return true
}

func (c *conn) isPending(id uint64) bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	_, ok := c.pending[id]
	return ok
}

// send queues f for the writer.
func (c *conn) send(ctx context.Context, f frame) error {
	select {
	case c.sendq <- f:
		return nil
	case <-c.done:
		c.mu.Lock()
		defer c.mu.Unlock()
		return c.err
	case <-ctx.Done():
		return ctx.Err()
	}
}

// fail closes the connection once, failing its pending calls with ErrClosed
// if the transport is closing and with a wrapped ErrUnreachable otherwise.
func (c *conn) fail(cause error) {
	err := ErrClosed
	if !errors.Is(cause, ErrClosed) && !c.t.isClosing() {
		err = fmt.Errorf("%w: connection to %s: %w", ErrUnreachable, c.remote, cause)
	}
	c.mu.Lock()
	if c.closed {
		c.mu.Unlock()
		return
	}
	c.closed = true
	c.err = err
	pending := c.pending
	c.pending = nil
	c.mu.Unlock()

	// Close the socket before cancelling handlers, so a handler that returns
	// on cancellation cannot get a reply out.
	close(c.done)
	_ = c.nc.Close()
	c.cancel()
	for _, ch := range pending {
		ch <- result{err: err}
	}
	c.t.removeConn(c)
}

func (c *conn) readLoop() {
	defer c.t.wg.Done()
	if tc, ok := c.nc.(*tls.Conn); ok && !c.outbound {
		ctx, cancel := context.WithTimeout(c.ctx, c.t.cfg.DialTimeout)
		err := tc.HandshakeContext(ctx)
		cancel()
		if err == nil {
			c.peer, err = peerID(tc, c.t.cfg.Identify)
		}
		if err != nil {
			c.t.m.handshakeFailures.Add(1)
			c.t.log.Warn().Err(err).Str("peer", c.remote).Msg("transport: tls handshake failed")
			c.fail(err)
			return
		}
	}
	max := c.t.cfg.MaxFrameSize
	for {
		var (
			f    frame
			n    int
			held int64 // inbound: bytes of the budget the frame holds
			err  error
		)
		if c.outbound {
			f, n, err = readFrame(c.br, max)
		} else {
			f, n, held, err = c.readRequest(max)
		}
		c.t.m.bytesIn.Add(uint64(n))
		if err != nil {
			c.readFailed(err)
			return
		}
		c.t.m.framesIn.Add(1)
		switch {
		case f.Kind == kindRequest && !c.outbound:
			c.serve(f, held)
		case f.Kind != kindRequest && c.outbound:
			c.deliver(f)
		default:
			c.t.budget.release(held)
			c.readFailed(fmt.Errorf("%w: unexpected kind %d on %s connection", ErrBadFrame, f.Kind, c.direction()))
			return
		}
	}
}

// readRequest reads one inbound frame. The peer must begin a frame within
// IdleTimeout and finish it within FrameReadTimeout; its announced length
// is taken from the transport's byte budget before the body is read,
// waiting for room no longer than that, and is returned as held (released
// by serve). It returns the frame and the bytes consumed.
func (c *conn) readRequest(max int) (f frame, n int, held int64, err error) {
	if err := c.awaitFrame(); err != nil {
		return frame{}, 0, 0, err
	}
	size, n, err := readPrefix(c.br, max)
	if err == nil {
		held = int64(size)
		if err = c.t.budget.acquire(c.ctx, held, c.frameEnd, &c.t.m.budgetWaits); err != nil {
			if errors.Is(err, context.DeadlineExceeded) {
				c.t.m.budgetTimeouts.Add(1)
				c.t.m.readTimeouts.Add(1)
			}
			return frame{}, n, 0, fmt.Errorf("transport: no room for a %d-byte frame within %v (MaxInflightBytes %d): %w", size, c.t.cfg.FrameReadTimeout, c.t.cfg.MaxInflightBytes, err)
		}
		var m int
		f, m, err = readPayload(c.br, size)
		n += m
	}
	if err != nil {
		c.t.budget.release(held)
		if isNetTimeout(err) {
			c.t.m.readTimeouts.Add(1)
			err = fmt.Errorf("transport: frame not read within %v: %w", c.t.cfg.FrameReadTimeout, err)
		}
		return frame{}, n, 0, err
	}
	return f, n, held, nil
}

// awaitFrame waits, up to IdleTimeout, for the first byte of the next
// inbound frame, then gives the frame FrameReadTimeout to arrive whole.
func (c *conn) awaitFrame() error {
	if err := c.nc.SetReadDeadline(time.Now().Add(c.t.cfg.IdleTimeout)); err != nil {
		return err
	}
	if _, err := c.br.Peek(1); err != nil {
		if isNetTimeout(err) {
			c.t.m.readTimeouts.Add(1)
			return fmt.Errorf("transport: no frame for %v: %w", c.t.cfg.IdleTimeout, err)
		}
		return err
	}
	c.frameEnd = time.Now().Add(c.t.cfg.FrameReadTimeout)
	return c.nc.SetReadDeadline(c.frameEnd)
}

// isNetTimeout reports whether err is a deadline passing on a connection.
func isNetTimeout(err error) bool {
	var ne net.Error
	return errors.As(err, &ne) && ne.Timeout()
}

func (c *conn) direction() string {
	if c.outbound {
		return "outbound"
	}
	return "inbound"
}

// readFailed logs why the reader stopped and closes the connection.
func (c *conn) readFailed(err error) {
	switch {
	case errors.Is(err, ErrFrameTooLarge) || errors.Is(err, ErrBadFrame):
		c.t.m.framesRejected.Add(1)
		c.t.log.Error().Err(err).Str("peer", c.remote).Str("dir", c.direction()).
			Msg("transport: rejected frame, closing connection")
	case c.isClosed() || c.t.isClosing() || errors.Is(err, io.EOF):
		c.t.log.Debug().Err(err).Str("peer", c.remote).Str("dir", c.direction()).Msg("transport: connection closed")
	default:
		c.t.log.Warn().Err(err).Str("peer", c.remote).Str("dir", c.direction()).Msg("transport: connection failed")
	}
	c.fail(err)
}

// deliver hands a reply to its waiting call, or counts it as late.
func (c *conn) deliver(f frame) {
	c.mu.Lock()
	ch, ok := c.pending[f.ID]
	delete(c.pending, f.ID)
	c.mu.Unlock()
	if !ok {
		c.t.m.lateReplies.Add(1)
		return
	}
	if f.Kind == kindError {
		ch <- result{err: &RemoteError{Code: f.ErrCode, Message: f.ErrMsg}}
		return
	}
	ch <- result{body: f.Body}
}

// serve runs the handler for request f, which holds held bytes of the
// budget, on a pooled goroutine once a handler slot is free; a request
// meant for another node, or whose sender is not the connection's peer,
// is refused at once. The reader holds a count on t.wg, so adding to it
// here is safe during Close, and the pool is closed only after t.wg
// drains.
func (c *conn) serve(f frame, held int64) {
	if e := c.refusal(f.To, f.From, f.Method); e != nil {
		c.t.budget.release(held)
		_ = c.send(context.Background(), errorFrame(f.ID, e)) // fails only if the connection is gone
		return
	}
	if err := c.t.slots.acquire(c.ctx, &c.t.m.handlerWaits); err != nil { // the connection or the transport is closing
		c.t.budget.release(held)
		return
	}
	c.t.m.served.Add(1)
	c.t.wg.Add(1)
	err := c.t.handlers.Go(func() {
		defer c.t.wg.Done()
		defer c.t.slots.release()
		defer c.t.budget.release(held) // after the reply is queued
		out, err := c.handler(c.ctx, &Request{From: f.From, Peer: c.peer, To: f.To, Method: f.Method, Body: f.Body})
		reply := frame{ID: f.ID, Kind: kindResponse, Body: out}
		if err != nil {
			reply = errorFrame(f.ID, toRemote(err))
		} else if n := reply.size(); n > c.t.cfg.MaxFrameSize {
			reply = errorFrame(f.ID, &RemoteError{
				Code:    CodeFrameTooLarge,
				Message: fmt.Sprintf("%s reply of %d bytes exceeds limit %d", f.Method, n, c.t.cfg.MaxFrameSize),
			})
		}
		_ = c.send(context.Background(), reply) // fails only if the connection is gone
	})
	if err != nil { // unreachable while the reader runs; see above
		c.t.wg.Done()
		c.t.slots.release()
		c.t.budget.release(held)
	}
}

// refusal is why a request for node to from node from may not run here,
// or nil. (It takes fields, not the frame: a pointer to the frame would
// move it to the heap, since serve's closure captures it.)
func (c *conn) refusal(to, from, method string) *RemoteError {
	switch {
	case to != "" && to != c.t.cfg.NodeID:
		return refuseWrongNode(to, c.t.cfg.NodeID)
	case c.peer != "" && from != c.peer:
		c.t.m.unauthenticated.Add(1)
		c.t.log.Warn().Str("peer", c.peer).Str("from", from).Str("addr", c.remote).Str("method", method).
			Msg("transport: refused a request whose sender is not the authenticated peer")
		return refuseUnauthenticated(from, c.peer)
	}
	return nil
}

func errorFrame(id uint64, e *RemoteError) frame {
	msg := e.Message
	if len(msg) > maxErrMsg {
		msg = msg[:maxErrMsg]
	}
	return frame{ID: id, Kind: kindError, ErrCode: e.Code, ErrMsg: msg}
}

// writeLoop writes queued frames, batching whatever is queued into one
// buffered write and flushing when the queue drains.
func (c *conn) writeLoop() {
	defer c.t.wg.Done()
	var scratch []byte
	for {
		var f frame
		select {
		case f = <-c.sendq:
		case <-c.done:
			return
		}
		if c.bw == nil {
			c.bw = bufio.NewWriterSize(c.nc, c.t.cfg.WriteBufferSize)
		}
		if err := c.nc.SetWriteDeadline(time.Now().Add(c.t.cfg.WriteTimeout)); err != nil {
			c.fail(err)
			return
		}
		var (
			err   error
			bytes int
		)
		scratch, bytes, err = c.write(scratch, &f)
		yielded := false
	batch:
		for n := 1; err == nil && n < maxBatch && bytes < maxBatchBytes; n++ {
			select {
			case f = <-c.sendq:
				var m int
				scratch, m, err = c.write(scratch, &f)
				bytes += m
			default:
				if yielded {
					break batch
				}
				// Give the goroutines that are ready to run one turn
				// before the system call: under load some of them are
				// about to queue frames for this peer, and they share
				// the write. When nothing else is runnable this returns
				// at once.
				yielded = true
				n--
				runtime.Gosched()
			}
		}
		if err == nil {
			err = c.bw.Flush()
			c.t.m.flushes.Add(1)
		}
		if err != nil {
			if !c.isClosed() {
				c.t.log.Warn().Err(err).Str("peer", c.remote).Msg("transport: write failed")
			}
			c.fail(err)
			return
		}
	}
}

// write encodes f into the write buffer and returns how many bytes that
// took. Requests whose call has already given up are skipped.
func (c *conn) write(scratch []byte, f *frame) ([]byte, int, error) {
	if f.Kind == kindRequest && !c.isPending(f.ID) {
		return scratch, 0, nil
	}
	size := f.size()
	scratch = appendHead(scratch[:0], f, size)
	if _, err := c.bw.Write(scratch); err != nil {
		return scratch, 0, err
	}
	if _, err := c.bw.Write(f.Body); err != nil {
		return scratch, 0, err
	}
	scratch = appendTail(scratch[:0], f)
	if _, err := c.bw.Write(scratch); err != nil {
		return scratch, 0, err
	}
	c.t.m.bytesOut.Add(uint64(prefixSize + size))
	c.t.m.framesOut.Add(1)
	return scratch, prefixSize + size, nil
}
