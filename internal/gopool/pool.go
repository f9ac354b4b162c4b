package gopool

import (
	"errors"
	"sync"
	"sync/atomic"
	"time"

	"github.com/quorumkv/quorumkv/internal/clock"
)

// ErrClosed is returned by Go after Close.
var ErrClosed = errors.New("gopool: closed")

// Config configures a Pool.
type Config struct {
	// IdleTimeout is how long a worker waits for its next task before it
	// exits. Default 10s: long enough to span the gaps of a steady load,
	// short enough that the workers of a burst do not linger.
	IdleTimeout time.Duration
	// Clock times the idle timeout. Default clock.Real().
	Clock clock.Clock
}

// DefaultConfig returns the defaults described on Config.
func DefaultConfig() Config {
	return Config{
		IdleTimeout: 10 * time.Second, // see IdleTimeout
		Clock:       clock.Real(),     // the wall clock
	}
}

// Validate reports a configuration that cannot work.
func (c Config) Validate() error {
	if c.IdleTimeout <= 0 {
		return errors.New("gopool: IdleTimeout must be positive")
	}
	if c.Clock == nil {
		return errors.New("gopool: nil Clock")
	}
	return nil
}

// Pool runs tasks on reusable goroutines. The zero value is not usable;
// call New. It is safe for concurrent use.
type Pool struct {
	cfg   Config
	tasks chan func() // unbuffered: a send succeeds only into an idle worker
	done  chan struct{}

	mu      sync.Mutex
	closed  bool
	wg      sync.WaitGroup
	started uint64       // workers started, for tests and metrics
	idle    atomic.Int64 // workers waiting for a task
}

// New returns a pool with no workers; they start on demand.
func New(cfg Config) (*Pool, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	return &Pool{cfg: cfg, tasks: make(chan func()), done: make(chan struct{})}, nil
}

// Go runs f on an idle worker, or on a new one when none is idle. It never
// waits for a worker to become free. After Close it returns ErrClosed and
// does not run f.
func (p *Pool) Go(f func()) error {
	select {
	case p.tasks <- f:
		return nil
	default:
	}
	p.mu.Lock()
	if p.closed {
		p.mu.Unlock()
		return ErrClosed
	}
	p.wg.Add(1)
	p.started++
	p.mu.Unlock()
	go p.work(f)
	return nil
}

func (p *Pool) work(f func()) {
	defer p.wg.Done()
	f()
	idle := p.cfg.Clock.NewTimer(p.cfg.IdleTimeout)
	defer idle.Stop()
	for {
		p.idle.Add(1)
		select {
		case f = <-p.tasks:
			p.idle.Add(-1)
			f()
			if !idle.Stop() { // fired meanwhile: drain it, or it ends the next wait
				select {
				case <-idle.C():
				default:
				}
			}
			idle.Reset(p.cfg.IdleTimeout)
		case <-idle.C():
			p.idle.Add(-1)
			return
		case <-p.done:
			p.idle.Add(-1)
			return
		}
	}
}

// Started returns how many workers the pool has started in all.
func (p *Pool) Started() uint64 {
	p.mu.Lock()
	defer p.mu.Unlock()
	return p.started
}

// Idle returns how many workers are waiting for a task.
func (p *Pool) Idle() int { return int(p.idle.Load()) }

// Close makes later calls to Go fail, stops idle workers and waits for
// running tasks to return. A task handed to a worker while Close runs may
// still run; Close waits for it too. It is idempotent.
func (p *Pool) Close() error {
	p.mu.Lock()
	if !p.closed {
		p.closed = true
		close(p.done)
	}
	p.mu.Unlock()
	p.wg.Wait()
	return nil
}
