package store

import (
	"errors"
	"fmt"
	"sync"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// probeFile is written, synced and removed in Config.Dir before a reopen:
// a disk that cannot take it cannot take pebble's recovery either. Pebble
// ignores files whose names it does not know.
const probeFile = "REOPEN-PROBE"

// probeBytes is the size of probeFile.
const probeBytes = 64 << 10

// errDraining means operations of the failed pebble instance are still
// running (or a synced commit still waits for its sync); Reopen must wait
// for them.
var errDraining = errors.New("store: operations of the failed instance still in flight")

// walWatch routes the WAL errors of one pebble instance. While the
// instance is live (it serves the Store) an error fails the Store, as it
// always did; before that (a reopen in progress) it is kept in err for
// Reopen, which must not let the instance serve. mu makes the switch to
// live and the check of err one step: an error is either seen by Reopen
// or fails the Store.
type walWatch struct {
	s    *Store
	mu   sync.Mutex
	live bool
	err  error
}

func (w *walWatch) onWALError(err error) {
	w.mu.Lock()
	if !w.live {
		if w.err == nil {
			w.err = err
		}
		w.mu.Unlock()
		return
	}
	w.mu.Unlock()
	w.s.walFailed(err)
}

// Health reports whether the Store serves: nil, or the error every
// operation fails with (it matches ErrFailed) until a reopen succeeds. The
// channel is closed at the next change, so a watcher loops:
//
//	for {
//		changed, err := s.Health()
//		// ... act on err ...
//		<-changed
//	}
func (s *Store) Health() (changed <-chan struct{}, err error) {
	s.healthMu.Lock()
	ch := s.healthCh
	s.healthMu.Unlock()
	return ch, s.failedErr()
}

// notifyHealth wakes the watchers of Health. It never blocks: fail calls
// it from pebble's WAL writer.
func (s *Store) notifyHealth() {
	s.healthMu.Lock()
	close(s.healthCh)
	s.healthCh = make(chan struct{})
	s.healthMu.Unlock()
}

// Reopen brings a failed Store back: once every operation of the failed
// pebble instance has returned, and a probe file can be written and synced
// in Config.Dir (and the filesystem reports Config.ReopenHeadroom free,
// where it can tell), it closes that instance and opens pebble again from
// the directory. Pebble recovers from its WAL and manifest what was synced
// before the failure, which includes every write this Store acknowledged;
// what the failed instance applied without acknowledging may or may not
// be there. The row cache is emptied and the hint sizes are counted again.
//
// Reopen returns nil at once when the Store has not failed, ErrClosed once
// Close has begun, and otherwise an error matching ErrFailed: the Store
// stays failed, with that error as its cause, and Reopen may be called
// again later. After a pebble panic that may have left pebble's locks held
// (see doc.go) only a restart of the process helps. With
// Config.ReopenBackoff set, the Store calls Reopen itself.
func (s *Store) Reopen() error {
	s.lifeMu.Lock()
	defer s.lifeMu.Unlock()
	if s.closing.Load() {
		return ErrClosed
	}
	if s.failure.Load() == nil {
		return nil
	}
	if s.wedged.Load() {
		return fmt.Errorf("%w: pebble is wedged after a panic; restart the process", ErrFailed)
	}
	// Operations that enter from now on see the failure and leave without
	// touching db; the ones counted here must be gone first.
	if s.inflight.Load() != 0 || s.syncing.Load() != 0 {
		return fmt.Errorf("%w: %w", ErrFailed, errDraining)
	}
	if err := s.probe(); err != nil {
		return s.reopenFailed(err)
	}
	if s.db != nil {
		if err := closePebble(s.db); err != nil {
			s.log.Warn().Err(err).Msg("store: closing the failed pebble instance")
		}
		s.db = nil
	}
	w := &walWatch{s: s}
	db, err := s.openPebble(w)
	if err != nil {
		return s.reopenFailed(err)
	}
	s.db = db
	if err := s.loadHintBytes(); err != nil {
		return s.reopenFailed(errors.Join(err, s.dropDB()))
	}
	w.mu.Lock()
	if w.err != nil {
		err := fmt.Errorf("wal: %w", w.err)
		w.mu.Unlock()
		return s.reopenFailed(errors.Join(err, s.dropDB()))
	}
	s.rows.clear()
	s.failure.Store(nil)
	w.live = true
	w.mu.Unlock()
	s.m.reopens.Add(1)
	s.notifyHealth()
	s.log.Info().Msg("store: reopened after a storage failure; serving again")
	return nil
}

// reopenFailed records why a reopen failed as the Store's failure and
// returns it.
func (s *Store) reopenFailed(err error) error {
	cause := fmt.Errorf("reopen: %w", err)
	s.failure.Store(&cause)
	return s.failedErr()
}

// dropDB closes the pebble instance a reopen opened but cannot use.
func (s *Store) dropDB() error {
	err := closePebble(s.db)
	s.db = nil
	return err
}

// probe checks that the disk takes writes again.
func (s *Store) probe() error {
	fs := s.baseFS()
	if want := s.cfg.ReopenHeadroom; want > 0 {
		// Not every filesystem can tell (vfs.MemFS cannot): then the
		// probe write alone decides.
		if du, err := fs.GetDiskUsage(s.cfg.Dir); err == nil && du.AvailBytes < uint64(want) {
			return fmt.Errorf("%d bytes free in %s, want %d", du.AvailBytes, s.cfg.Dir, want)
		}
	}
	name := fs.PathJoin(s.cfg.Dir, probeFile)
	f, err := fs.Create(name, vfs.WriteCategoryUnspecified)
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	_, err = f.Write(make([]byte, probeBytes))
	if err == nil {
		err = f.Sync()
	}
	err = errors.Join(err, f.Close(), fs.Remove(name))
	if err != nil {
		return fmt.Errorf("probe: %w", err)
	}
	return nil
}

// reopenLoop waits for the Store to fail, then reopens it (retryReopen),
// until Close.
func (s *Store) reopenLoop() {
	defer s.loopWG.Done()
	for {
		changed, err := s.Health()
		if err != nil {
			if !s.retryReopen() {
				return
			}
			continue
		}
		select {
		case <-changed:
		case <-s.loopCtx.Done():
			return
		}
	}
}

// retryReopen calls Reopen after Config.ReopenBackoff, then at doubling
// intervals up to Config.ReopenMaxBackoff (a try that found operations
// still running does not double it), until it succeeds (true), or the
// Store closes or pebble is wedged (false).
func (s *Store) retryReopen() bool {
	delay := s.cfg.ReopenBackoff
	for {
		t := s.cfg.Clock.NewTimer(delay)
		select {
		case <-s.loopCtx.Done():
			t.Stop()
			return false
		case <-t.C():
		}
		err := s.Reopen()
		switch {
		case err == nil:
			return true
		case errors.Is(err, ErrClosed):
			return false
		case s.wedged.Load():
			s.log.Error().Err(err).Msg("store: cannot reopen; restart the process")
			return false
		}
		if !errors.Is(err, errDraining) { // the disk was tried: back off
			delay = min(2*delay, s.cfg.ReopenMaxBackoff)
		}
		s.log.Warn().Err(err).Dur("retry_in", delay).Msg("store: reopen failed")
	}
}
