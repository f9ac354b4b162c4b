package transport

import (
	"crypto/tls"
	"crypto/x509"
	"fmt"
	"math"
	"time"
)

const (
	// MinMaxFrameSize is the smallest allowed TCPConfig.MaxFrameSize: a 4 MiB
	// body plus room for the rest of the frame.
	MinMaxFrameSize = 4<<20 + 64<<10
	// maxConnsPerPeer bounds TCPConfig.ConnsPerPeer.
	maxConnsPerPeer = 64
	// inboundReadBuffer and inboundSendQueue cap the read buffer and the
	// reply queue of an inbound connection (ReadBufferSize and
	// SendQueueLen size outbound ones): at MaxInboundConns idle
	// connections they hold 2,048 x (16 KiB + 128 queued frames), about
	// 66 MiB, where the outbound sizes would hold 512 MiB.
	inboundReadBuffer = 16 << 10
	inboundSendQueue  = 128
)

// TCPConfig configures a TCP transport. Start from DefaultTCPConfig.
type TCPConfig struct {
	// NodeID is this node's ID, sent as From in every request. Required.
	NodeID string
	// ListenAddr is the host:port to listen on; port 0 picks a free port,
	// and Addr reports the resolved address.
	ListenAddr string
	// AdvertiseAddr, if set, is what Addr reports instead of the listener's
	// address (for NAT or a wildcard ListenAddr).
	AdvertiseAddr string
	// TLS, if not nil, makes every connection mutual TLS with node
	// identities (MutualTLS builds it from PEM files). It needs
	// Certificates (this node's, presented on both sides), ClientCAs (to
	// verify the peers that dial in; a client certificate is always
	// required) and RootCAs (to verify the peers dialled: the chain and
	// the server usage, not the host name, since nodes are dialled by
	// address). nil means plaintext, and Request.Peer stays empty.
	TLS *tls.Config
	// Identify names the node a verified peer certificate belongs to. An
	// inbound request whose From differs from its connection's peer is
	// refused with CodeUnauthenticated, and CallNode refuses to send to a
	// server that is not the node named (ErrWrongNode). An error refuses
	// the connection. Required with TLS.
	Identify func(cert *x509.Certificate) (string, error)
	// DialTimeout bounds connecting to a peer, TLS handshake included (and
	// the server side of a handshake).
	DialTimeout time.Duration
	// DefaultTimeout is the deadline of a Call whose ctx has none.
	DefaultTimeout time.Duration
	// WriteTimeout bounds each write to a connection; a peer that stops
	// reading for longer gets its connection closed.
	WriteTimeout time.Duration
	// MaxFrameSize is the largest frame, in bytes after the length prefix,
	// sent or accepted. At least MinMaxFrameSize, at most 4 GiB - 1.
	MaxFrameSize int
	// ConnsPerPeer is how many persistent connections are kept to each peer;
	// calls are spread over them round-robin.
	ConnsPerPeer int
	// WriteBufferSize is the size of each connection's write buffer.
	WriteBufferSize int
	// ReadBufferSize is the size of each connection's read buffer.
	ReadBufferSize int
	// SendQueueLen is how many frames may wait for a connection's writer
	// before senders block.
	SendQueueLen int
	// FrameReadTimeout bounds reading one inbound frame once its first
	// byte arrived: a peer that announces a frame and stalls loses its
	// connection.
	FrameReadTimeout time.Duration
	// IdleTimeout closes an inbound connection that sends no frame for
	// this long (peers heartbeat every second, so theirs never idle).
	IdleTimeout time.Duration
	// MaxInboundConns caps the inbound connections open at once, and
	// MaxConnsPerSource those from one IP address; past either, a new
	// connection is closed at once.
	MaxInboundConns   int
	MaxConnsPerSource int
	// MaxInflightBytes bounds the inbound request frames being read or
	// handled, in bytes, across all connections: a reader reserves a
	// frame's announced length before reading its body and waits, within
	// FrameReadTimeout, while the budget is spent; the bytes return when
	// the handler's reply is queued. A frame over SmallFrameSize may use
	// all but an eighth of the budget, which stays free for small frames,
	// so peers stalled inside large frames cannot hold up the small
	// requests of the others. At least MaxFrameSize + MaxFrameSize/7, so
	// that a frame of MaxFrameSize fits.
	MaxInflightBytes int64
	// MaxHandlers caps the inbound handlers running at once, across all
	// connections. A reader with a request past it waits for a handler to
	// return (backpressure on that connection).
	MaxHandlers int
}

// SmallFrameSize is the largest frame that may use the part of
// MaxInflightBytes kept for small frames.
const SmallFrameSize = 64 << 10

// DefaultTCPConfig returns the defaults. NodeID must still be set.
func DefaultTCPConfig() TCPConfig {
	return TCPConfig{
		NodeID:          "",               // no default: must be set
		ListenAddr:      "127.0.0.1:0",    // loopback, any free port
		AdvertiseAddr:   "",               // advertise the listener's resolved address
		TLS:             nil,              // plaintext
		DialTimeout:     2 * time.Second,  // a healthy LAN peer connects in well under a second
		DefaultTimeout:  5 * time.Second,  // callers normally pass their own deadline
		WriteTimeout:    10 * time.Second, // a peer this slow to read is treated as failed
		MaxFrameSize:    64 << 20,         // 64 MiB: far above the 4 MiB value limit
		ConnsPerPeer:    2,                // two writers/readers per peer; plenty for multiplexed calls
		WriteBufferSize: 64 << 10,         // 64 KiB: batches many small frames per syscall
		ReadBufferSize:  64 << 10,         // 64 KiB
		SendQueueLen:    1024,             // frames queued per connection before senders wait

		FrameReadTimeout:  30 * time.Second, // a 64 MiB frame at 2 MiB/s and more
		IdleTimeout:       5 * time.Minute,  // far above the 1 s heartbeat
		MaxInboundConns:   2048,             // ConnsPerPeer per peer, for clusters of hundreds
		MaxConnsPerSource: 512,              // one host running many nodes (tests, simulations)
		Identify:          CommonNameID,     // a certificate's CommonName is its node's ID (internal/devcert)
		MaxInflightBytes:  256 << 20,        // 256 MiB: three 64 MiB frames and room for small ones
		MaxHandlers:       1024,             // far above what two cores run usefully; bounds goroutines and their frames
	}
}

// Validate reports the first invalid field.
func (c TCPConfig) Validate() error {
	switch {
	case c.NodeID == "":
		return fmt.Errorf("%w: NodeID is empty", ErrInvalidConfig)
	case c.ListenAddr == "":
		return fmt.Errorf("%w: ListenAddr is empty", ErrInvalidConfig)
	case c.DialTimeout <= 0:
		return fmt.Errorf("%w: DialTimeout %v must be positive", ErrInvalidConfig, c.DialTimeout)
	case c.DefaultTimeout <= 0:
		return fmt.Errorf("%w: DefaultTimeout %v must be positive", ErrInvalidConfig, c.DefaultTimeout)
	case c.WriteTimeout <= 0:
		return fmt.Errorf("%w: WriteTimeout %v must be positive", ErrInvalidConfig, c.WriteTimeout)
	case c.MaxFrameSize < MinMaxFrameSize || uint64(c.MaxFrameSize) > math.MaxUint32:
		return fmt.Errorf("%w: MaxFrameSize %d out of [%d, %d]", ErrInvalidConfig, c.MaxFrameSize, MinMaxFrameSize, uint64(math.MaxUint32))
	case c.ConnsPerPeer < 1 || c.ConnsPerPeer > maxConnsPerPeer:
		return fmt.Errorf("%w: ConnsPerPeer %d out of [1, %d]", ErrInvalidConfig, c.ConnsPerPeer, maxConnsPerPeer)
	case c.WriteBufferSize < 4096:
		return fmt.Errorf("%w: WriteBufferSize %d below 4096", ErrInvalidConfig, c.WriteBufferSize)
	case c.ReadBufferSize < 4096:
		return fmt.Errorf("%w: ReadBufferSize %d below 4096", ErrInvalidConfig, c.ReadBufferSize)
	case c.SendQueueLen < 1:
		return fmt.Errorf("%w: SendQueueLen %d must be positive", ErrInvalidConfig, c.SendQueueLen)
	case c.FrameReadTimeout <= 0 || c.IdleTimeout <= 0:
		return fmt.Errorf("%w: FrameReadTimeout %v and IdleTimeout %v must be positive", ErrInvalidConfig, c.FrameReadTimeout, c.IdleTimeout)
	case c.MaxInboundConns < 1 || c.MaxConnsPerSource < 1:
		return fmt.Errorf("%w: MaxInboundConns %d and MaxConnsPerSource %d must be positive", ErrInvalidConfig, c.MaxInboundConns, c.MaxConnsPerSource)
	case largeCeiling(c.MaxInflightBytes) < int64(c.MaxFrameSize):
		return fmt.Errorf("%w: MaxInflightBytes %d leaves less than MaxFrameSize %d for large frames", ErrInvalidConfig, c.MaxInflightBytes, c.MaxFrameSize)
	case c.MaxHandlers < 1:
		return fmt.Errorf("%w: MaxHandlers %d must be positive", ErrInvalidConfig, c.MaxHandlers)
	}
	return c.validateTLS()
}

// validateTLS checks what mutual TLS with identities needs.
func (c TCPConfig) validateTLS() error {
	switch {
	case c.TLS == nil:
		return nil
	case len(c.TLS.Certificates) == 0:
		return fmt.Errorf("%w: TLS has no certificate", ErrInvalidConfig)
	case c.TLS.ClientCAs == nil || c.TLS.RootCAs == nil:
		return fmt.Errorf("%w: TLS needs ClientCAs and RootCAs (the cluster CA)", ErrInvalidConfig)
	case c.Identify == nil:
		return fmt.Errorf("%w: TLS needs Identify", ErrInvalidConfig)
	}
	return nil
}
