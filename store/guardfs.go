package store

import (
	"strings"
	"sync/atomic"

	"github.com/cockroachdb/pebble/v2/vfs"
)

// guardFS wraps the filesystem pebble writes through and stands between
// pebble and its write-ahead log (files named *.log).
//
// Pebble cannot survive a WAL error: depending on where it surfaces it
// calls Fatalf, panics while holding its commit mutex, or panics in WAL
// rotation under a deferred unlock, which Go turns into an unrecoverable
// "unlock of unlocked mutex" fatal error (see doc.go). So pebble never sees
// one. On the first failed WAL write, sync, close or creation, guardFS
//
//  1. reports the error to the Store, which marks itself failed, and only
//     then
//  2. freezes the WAL: that call and every later WAL write and sync report
//     success without touching the disk, and WAL files created afterwards
//     live in memory only.
//
// The WAL on disk thus stays exactly as a crash at that instant would leave
// it, which pebble's recovery handles. Because the Store is marked failed
// before pebble can tell any committer that its sync "succeeded", the
// Store's commit path, which checks the failure after every commit, turns
// all those acknowledgements into errors; nothing not durable is acked.
type guardFS struct {
	vfs.FS
	// onWALError is called with the first WAL error, before the freeze.
	onWALError func(error)
	// walSyncs counts WAL syncs that reached the filesystem.
	walSyncs *atomic.Uint64
	// frozen is set once the first WAL error has been reported.
	frozen atomic.Bool
	// sink holds WAL files created after the freeze.
	sink vfs.FS
}

func newGuardFS(fs vfs.FS, onWALError func(error), walSyncs *atomic.Uint64) *guardFS {
	return &guardFS{FS: fs, onWALError: onWALError, walSyncs: walSyncs, sink: vfs.NewMem()}
}

func (g *guardFS) isWAL(name string) bool { return strings.HasSuffix(g.FS.PathBase(name), ".log") }

// freeze records err and freezes the WAL. The Store learns of the failure
// before frozen is set, so whoever sees frozen also sees the failure.
func (g *guardFS) freeze(err error) {
	g.onWALError(err)
	g.frozen.Store(true)
}

// sinkCreate creates an in-memory stand-in for a WAL file.
func (g *guardFS) sinkCreate(name string) (vfs.File, error) {
	if err := g.sink.MkdirAll(g.sink.PathDir(name), 0o755); err != nil {
		return nil, err
	}
	return g.sink.Create(name, vfs.WriteCategoryUnspecified)
}

func (g *guardFS) wrap(name string, f vfs.File, err error) (vfs.File, error) {
	if !g.isWAL(name) {
		return f, err
	}
	if err != nil {
		g.freeze(err)
		return g.sinkCreate(name)
	}
	return &walFile{File: f, g: g}, nil
}

// Create implements vfs.FS.
func (g *guardFS) Create(name string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if g.isWAL(name) && g.frozen.Load() {
		return g.sinkCreate(name)
	}
	f, err := g.FS.Create(name, category)
	return g.wrap(name, f, err)
}

// ReuseForWrite implements vfs.FS; pebble recycles old WAL files with it.
func (g *guardFS) ReuseForWrite(oldname, newname string, category vfs.DiskWriteCategory) (vfs.File, error) {
	if g.isWAL(newname) && g.frozen.Load() {
		return g.sinkCreate(newname)
	}
	f, err := g.FS.ReuseForWrite(oldname, newname, category)
	return g.wrap(newname, f, err)
}

// OpenReadWrite implements vfs.FS.
func (g *guardFS) OpenReadWrite(name string, category vfs.DiskWriteCategory, opts ...vfs.OpenOption) (vfs.File, error) {
	f, err := g.FS.OpenReadWrite(name, category, opts...)
	if err != nil || !g.isWAL(name) {
		return f, err
	}
	return &walFile{File: f, g: g}, nil
}

// Unwrap implements vfs.FS.
func (g *guardFS) Unwrap() vfs.FS { return g.FS }

// walFile is a WAL file on the real filesystem, until the freeze.
type walFile struct {
	vfs.File
	g *guardFS
}

func (f *walFile) Write(p []byte) (int, error) {
	if f.g.frozen.Load() {
		return len(p), nil
	}
	if _, err := f.File.Write(p); err != nil {
		f.g.freeze(err)
	}
	return len(p), nil
}

func (f *walFile) WriteAt(p []byte, off int64) (int, error) {
	if f.g.frozen.Load() {
		return len(p), nil
	}
	if _, err := f.File.WriteAt(p, off); err != nil {
		f.g.freeze(err)
	}
	return len(p), nil
}

func (f *walFile) Preallocate(off, n int64) error {
	if f.g.frozen.Load() {
		return nil
	}
	return f.File.Preallocate(off, n) // pebble ignores its errors
}

func (f *walFile) Sync() error {
	if f.g.frozen.Load() {
		return nil
	}
	f.g.walSyncs.Add(1)
	if err := f.File.Sync(); err != nil {
		f.g.freeze(err)
	}
	return nil
}

func (f *walFile) SyncData() error {
	if f.g.frozen.Load() {
		return nil
	}
	f.g.walSyncs.Add(1)
	if err := f.File.SyncData(); err != nil {
		f.g.freeze(err)
	}
	return nil
}

func (f *walFile) SyncTo(length int64) (bool, error) {
	if f.g.frozen.Load() {
		return true, nil
	}
	full, err := f.File.SyncTo(length)
	if err != nil {
		f.g.freeze(err)
		return true, nil
	}
	if full {
		f.g.walSyncs.Add(1)
	}
	return full, nil
}

func (f *walFile) Close() error {
	if err := f.File.Close(); err != nil && !f.g.frozen.Load() {
		f.g.freeze(err)
	}
	return nil
}
