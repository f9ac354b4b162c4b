package store

import (
	"context"
	"errors"
	"fmt"
	"sync"
	"sync/atomic"
	"time"

	"github.com/cockroachdb/pebble/v2"
	"github.com/cockroachdb/pebble/v2/bloom"
	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/rs/zerolog"
)

// Store is a node's durable storage. It is safe for concurrent use.
type Store struct {
	cfg     Config
	log     zerolog.Logger
	skipLog zerolog.Logger // log, sampled: a row a scan skips is met on every scan
	db      *pebble.DB
	stripes []sync.Mutex // per-key write serialization, indexed by hash
	rows    *rowCache    // newest records of hot data rows; nil if disabled
	// syncing counts synced commits waiting for their WAL sync.
	syncing atomic.Int64
	// lastQuarantine is the time of the newest quarantine row written.
	lastQuarantine atomic.Int64

	// Lifecycle. Every operation counts itself in inflight; Close sets
	// closing and waits for inflight to drain before closing pebble.
	closing   atomic.Bool
	inflight  atomic.Int64
	idle      chan struct{} // capacity 1; poked when inflight drops to 0 while closing
	closeOnce sync.Once
	closeErr  error

	// failure holds the fatal storage error of the current pebble
	// instance (the latest reopen's error once a reopen failed); while it
	// is set, every operation fails with ErrFailed, and Reopen clears it.
	// wedged means pebble panicked in a way that may have left its
	// internal locks held, so neither Close nor Reopen may call into it.
	failure atomic.Pointer[error]
	wedged  atomic.Bool
	// lifeMu serializes Reopen and Close, the two that replace or close
	// db. db is written only under it, while failure is set (or closing)
	// and no operation is in flight.
	lifeMu sync.Mutex
	// healthMu guards healthCh, closed and replaced at every change of
	// failure (Health).
	healthMu sync.Mutex
	healthCh chan struct{}
	// loopCtx ends reopenLoop, which loopWG tracks.
	loopCtx    context.Context
	loopCancel context.CancelFunc
	loopWG     sync.WaitGroup

	// hintMu guards hintBytes and hintCount: the bytes of pending hint
	// rows (keys plus values) and their number, per owner, rebuilt by Open
	// and kept by AddHint/DeleteHint; and hintPending, the bytes AddHint
	// calls in progress reserved against a limit.
	hintMu      sync.Mutex
	hintBytes   map[string]int64
	hintCount   map[string]int64
	hintPending map[string]int64

	// epoch is the actor epoch (ActorEpoch); epochMu serializes heals,
	// which advance it.
	epoch   atomic.Uint64
	epochMu sync.Mutex

	// dots hands out node-wide unique dot counters (NextCounter).
	dots dotCounter
	// incarnation identifies this store's life (Incarnation); set by Open.
	incarnation uint64

	m counters
}

// Open opens (or creates) the store in cfg.Dir.
func Open(cfg Config, log zerolog.Logger) (*Store, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	fs := cfg.FS
	if fs == nil {
		fs = vfs.Default
	}
	s := &Store{
		cfg:       cfg,
		log:       log,
		skipLog:   log.Sample(&zerolog.BurstSampler{Burst: skipLogBurst, Period: time.Minute}),
		stripes:   make([]sync.Mutex, cfg.LockStripes),
		rows:      newRowCache(cfg.RowCacheSize),
		idle:      make(chan struct{}, 1),
		hintBytes: make(map[string]int64),
		hintCount: make(map[string]int64),

		hintPending: make(map[string]int64),
		healthCh:    make(chan struct{}),
	}
	s.loopCtx, s.loopCancel = context.WithCancel(context.Background())
	if err := fs.MkdirAll(cfg.Dir, 0o755); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	if err := syncParents(fs, cfg.Dir); err != nil {
		return nil, fmt.Errorf("store: open: %w", err)
	}
	db, err := s.openPebble(&walWatch{s: s, live: true})
	if err != nil {
		return nil, err
	}
	s.db = db
	for _, load := range []func() error{s.loadActorEpoch, s.loadDotFloor, s.loadIncarnation, s.loadHintBytes} {
		if err := load(); err != nil {
			_ = s.Close()
			return nil, err
		}
	}
	if err := s.failedErr(); err != nil { // the WAL failed while opening
		_ = s.Close()
		return nil, fmt.Errorf("store: open %s: %w", cfg.Dir, err)
	}
	if cfg.ReopenBackoff > 0 {
		s.loopWG.Add(1)
		go s.reopenLoop()
	}
	return s, nil
}

// openPebble opens pebble on cfg.Dir, its WAL errors going to w.
func (s *Store) openPebble(w *walWatch) (*pebble.DB, error) {
	fs := s.baseFS()
	cache := pebble.NewCache(s.cfg.CacheSize)
	defer cache.Unref()
	log := s.log
	opts := &pebble.Options{
		FS:                          newGuardFS(fs, w.onWALError, &s.m.walSyncs),
		Cache:                       cache,
		MemTableSize:                s.cfg.MemTableSize,
		MemTableStopWritesThreshold: 2,
		WALMinSyncInterval:          s.walMinSyncInterval,
		FormatMajorVersion:          pebble.FormatNewest,
		Logger:                      pebbleLogger{log: log},
		EventListener: &pebble.EventListener{
			BackgroundError: func(err error) {
				s.m.errors.Add(1)
				log.Error().Err(err).Msg("pebble background error")
			},
			WriteStallBegin: func(info pebble.WriteStallBeginInfo) {
				log.Warn().Str("reason", info.Reason).Msg("pebble write stall")
			},
			WriteStallEnd: func() { log.Info().Msg("pebble write stall ended") },
		},
	}
	// Bloom filters let a read of an absent key (every first write of a
	// key reads it first) skip the data blocks of every table; without
	// them such reads dominated the profile of a 1M-record load.
	for i := range opts.Levels {
		opts.Levels[i].FilterPolicy = bloom.FilterPolicy(10)
		opts.Levels[i].FilterType = pebble.TableFilter
	}
	db, err := openPebble(s.cfg.Dir, opts)
	if err != nil {
		return nil, fmt.Errorf("store: open %s: %w", s.cfg.Dir, err)
	}
	return db, nil
}

// baseFS is the filesystem the store lives on.
func (s *Store) baseFS() vfs.FS {
	if s.cfg.FS == nil {
		return vfs.Default
	}
	return s.cfg.FS
}

// syncParents fsyncs every directory above dir, so that the entries MkdirAll
// made for it survive a crash: pebble syncs the directory it writes in,
// not the path to it, and a crash soon after the first start could
// otherwise lose the whole store, acknowledged writes included.
func syncParents(fs vfs.FS, dir string) error {
	for {
		parent := fs.PathDir(dir)
		if parent == dir || parent == "" || parent == "." {
			return nil
		}
		d, err := fs.OpenDir(parent)
		if err != nil {
			return fmt.Errorf("sync %s: %w", parent, err)
		}
		err = d.Sync()
		if cerr := d.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			return fmt.Errorf("sync %s: %w", parent, err)
		}
		dir = parent
	}
}

// commitNoSyncWait applies b and, when sync is set, starts its WAL sync
// without waiting for it: the write is visible at once, and the returned
// wait blocks until it is durable. wait is nil for an unsynced commit. The
// same failure checks as commit apply, in wait for the synced case.
func (s *Store) commitNoSyncWait(b *pebble.Batch, durable bool) (wait func() error, err error) {
	if !durable {
		return nil, s.commit(b, false)
	}
	if err := s.failedErr(); err != nil {
		_ = b.Close()
		return nil, err
	}
	start := s.cfg.Clock.Now()
	n := b.Len()
	s.syncing.Add(1)
	if err := s.db.ApplyNoSyncWait(b, pebble.Sync); err != nil {
		s.syncing.Add(-1)
		_ = b.Close()
		s.m.errors.Add(1)
		return nil, fmt.Errorf("store: commit: %w", err)
	}
	var once sync.Once
	var werr error
	return func() error {
		once.Do(func() {
			werr = s.syncWait(b, start, n)
		})
		return werr
	}, nil
}

// durableBarrier is for a write that found its result already stored:
// that record may be another writer's, applied but not yet synced (writers
// release the key's lock before their fsync), and acknowledging on it
// would let a crash lose what was acknowledged. The returned wait blocks
// until every commit visible now is durable, by syncing an empty WAL
// record behind them. It is nil when no synced commit is in flight:
// s.syncing counts each from before it is visible until it is durable.
// (Data rows are written only through commitNoSyncWait. AddHint needs no
// barrier: it holds the key's lock until its own commit is durable.)
func (s *Store) durableBarrier() (wait func() error, err error) {
	if !s.cfg.Sync || s.syncing.Load() == 0 {
		return nil, nil
	}
	b := s.db.NewBatch()
	_ = b.LogData(nil, nil)
	return s.commitNoSyncWait(b, true)
}

func (s *Store) syncWait(b *pebble.Batch, start time.Time, n int) (err error) {
	var inUser bool
	defer s.recoverPebble(&err, &inUser)
	serr := b.SyncWait()
	_ = b.Close()
	s.syncing.Add(-1) // after Close: Reopen may close pebble once it is 0
	if serr != nil {
		s.m.errors.Add(1)
		return fmt.Errorf("store: commit: %w", serr)
	}
	// As in commit: a WAL failure hidden from pebble fails the write here.
	if err := s.failedErr(); err != nil {
		s.m.errors.Add(1)
		return err
	}
	s.m.commits.Add(1)
	s.m.commitNanos.Add(uint64(max(0, s.cfg.Clock.Since(start))))
	s.m.bytesWritten.Add(uint64(n))
	return nil
}

// walSyncBatchLoad is how many synced commits must be waiting before WAL
// syncs are spaced by WALMinSyncInterval.
const walSyncBatchLoad = 4

// walMinSyncInterval spaces WAL syncs only under load: a lone writer gets
// its fsync at once, while many concurrent writers share fewer, fuller
// syncs, which is what a disk with a limited sync rate needs.
func (s *Store) walMinSyncInterval() time.Duration {
	if s.syncing.Load() >= walSyncBatchLoad {
		return s.cfg.WALMinSyncInterval
	}
	return 0
}

// openPebble is pebble.Open with a Fatalf or panic turned into an error.
func openPebble(dir string, opts *pebble.Options) (db *pebble.DB, err error) {
	defer func() {
		if r := recover(); r != nil {
			db, err = nil, panicCause(r)
		}
	}()
	return pebble.Open(dir, opts)
}

// Close waits for in-flight operations, then closes pebble. Operations
// started after Close began return ErrClosed. Close is idempotent: later
// calls wait for the first and return its result. It must not be called
// from a Scan, ScanHints or OnWrite callback.
func (s *Store) Close() error {
	s.closeOnce.Do(func() {
		s.closing.Store(true)
		s.loopCancel()
		s.loopWG.Wait()
		s.lifeMu.Lock() // a Reopen in progress finishes first
		defer s.lifeMu.Unlock()
		for s.inflight.Load() != 0 {
			<-s.idle
		}
		if s.wedged.Load() {
			// A commit panicked inside pebble's commit pipeline, which
			// may still hold its mutex; DB.Close would block forever.
			s.log.Error().Msg("store: pebble is wedged after a panic; not closing it (restart the process)")
			s.closeErr = s.failedErr()
			return
		}
		if s.db == nil { // the last reopen failed: nothing is open
			return
		}
		err := closePebble(s.db)
		if err != nil {
			s.closeErr = fmt.Errorf("store: close: %w", err)
		}
	})
	return s.closeErr
}

func closePebble(db *pebble.DB) (err error) {
	defer func() {
		if r := recover(); r != nil {
			err = panicCause(r)
		}
	}()
	return db.Close()
}

// enter registers an operation; it fails once Close has begun or after a
// storage failure. Every successful enter is paired with exit.
func (s *Store) enter() error {
	s.inflight.Add(1)
	if s.closing.Load() {
		s.exit()
		return ErrClosed
	}
	if err := s.failedErr(); err != nil {
		s.exit()
		return err
	}
	return nil
}

func (s *Store) exit() {
	if s.inflight.Add(-1) == 0 && s.closing.Load() {
		select {
		case s.idle <- struct{}{}:
		default:
		}
	}
}

// fail records the first fatal storage error of the current pebble
// instance.
func (s *Store) fail(cause error) {
	if s.failure.CompareAndSwap(nil, &cause) {
		s.m.errors.Add(1)
		s.m.failures.Add(1)
		s.log.Error().Err(cause).Msg("store: storage failed; refusing operations until it reopens")
		s.notifyHealth()
	}
}

// walFailed is guardFS's callback for a failed WAL write or sync.
func (s *Store) walFailed(err error) { s.fail(fmt.Errorf("wal: %w", err)) }

// failedErr returns ErrFailed wrapping the first failure, or nil.
func (s *Store) failedErr() error {
	if p := s.failure.Load(); p != nil {
		return fmt.Errorf("%w: %w", ErrFailed, *p)
	}
	return nil
}

// panicCause turns a value recovered from pebble into an error.
func panicCause(r any) error {
	if fe, ok := r.(*FatalError); ok {
		return fe
	}
	return &PanicError{Value: r}
}

// recoverPebble is deferred by every method that calls into pebble. A panic
// from pebble (a Fatalf, or a raw panic) fails the store and becomes the
// method's error. A panic from the caller's own code (an Update function, a
// Scan callback, OnWrite), flagged by *inUser, is re-raised untouched.
func (s *Store) recoverPebble(errp *error, inUser *bool) {
	r := recover()
	if r == nil {
		return
	}
	if inUser != nil && *inUser {
		panic(r)
	}
	cause := panicCause(r)
	var fe *FatalError
	if !errors.As(cause, &fe) {
		s.wedged.Store(true)
	}
	s.fail(cause)
	*errp = s.failedErr()
}

// stripe returns the lock for a key hash.
func (s *Store) stripe(hash uint64) *sync.Mutex {
	return &s.stripes[hash%uint64(len(s.stripes))]
}

// readData reads the data row of key k through the row cache. The caller
// holds the key's stripe lock, so a record read from Pebble may be cached.
func (s *Store) readData(hash uint64, row, k []byte) (rec record, size int, found bool, err error) {
	if r, ok := s.rows.get(hash, row); ok {
		return r.rec, r.size, true, nil
	}
	return s.fillData(hash, row, k)
}

// fillData reads the data row of key k from Pebble and caches it. The
// caller holds the key's stripe lock.
func (s *Store) fillData(hash uint64, row, k []byte) (rec record, size int, found bool, err error) {
	rec, size, found, err = s.readRow(row, k)
	if err == nil && found {
		s.rows.put(hash, row, cachedRow{rec: rec, size: size})
	}
	return rec, size, found, err
}

// readRow reads and decodes the record at row. size is the length of the
// stored value. An absent row is found == false and no error.
func (s *Store) readRow(row, k []byte) (rec record, size int, found bool, err error) {
	v, closer, err := s.db.Get(row)
	if errors.Is(err, pebble.ErrNotFound) {
		return record{}, 0, false, nil
	}
	if err != nil {
		s.m.errors.Add(1)
		return record{}, 0, false, fmt.Errorf("store: read: %w", err)
	}
	size = len(v)
	rec, err = decodeRecord(v)
	_ = closer.Close()
	if err != nil {
		s.m.errors.Add(1)
		return record{}, 0, false, &CorruptError{Key: append([]byte(nil), k...), Err: err}
	}
	return rec, size, true, nil
}

// commit applies b, fsyncing the WAL first when sync is set. It refuses to
// write after a storage failure. b is closed unless pebble panicked.
func (s *Store) commit(b *pebble.Batch, sync bool) error {
	if err := s.failedErr(); err != nil {
		_ = b.Close()
		return err
	}
	opts := pebble.NoSync
	if sync {
		opts = pebble.Sync
	}
	start := s.cfg.Clock.Now()
	n := b.Len()
	// A panic propagates to the caller's recoverPebble; b is then dropped.
	if err := b.Commit(opts); err != nil {
		_ = b.Close()
		s.m.errors.Add(1)
		return fmt.Errorf("store: commit: %w", err)
	}
	_ = b.Close()
	// guardFS hides WAL errors from pebble, so a commit whose WAL write or
	// sync failed returns nil; the failure was recorded before pebble let
	// the commit return. Never acknowledge a write once the store failed.
	if err := s.failedErr(); err != nil {
		s.m.errors.Add(1)
		return err
	}
	s.m.commits.Add(1)
	s.m.commitNanos.Add(uint64(max(0, s.cfg.Clock.Since(start))))
	s.m.bytesWritten.Add(uint64(n))
	return nil
}
