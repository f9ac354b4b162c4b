// Package faultfs holds filesystem faults for tests, as pebble errorfs
// injectors.
package faultfs

import (
	"os"
	"sync/atomic"
	"syscall"

	"github.com/cockroachdb/pebble/v2/vfs"
	"github.com/cockroachdb/pebble/v2/vfs/errorfs"
)

// DiskFull makes a filesystem behave as a full disk while it is on:
// creating, linking or reusing a file, and writing or syncing one, fail
// with ENOSPC; reads, renames, removals and closes work. Its zero value is
// off. It is safe for concurrent use.
type DiskFull struct {
	full     atomic.Bool
	refusals atomic.Int64
}

// Wrap returns fs with d's faults.
func (d *DiskFull) Wrap(fs vfs.FS) vfs.FS { return errorfs.Wrap(fs, d) }

// Set fills (true) or frees (false) the disk.
func (d *DiskFull) Set(full bool) { d.full.Store(full) }

// Refusals counts the operations refused so far.
func (d *DiskFull) Refusals() int64 { return d.refusals.Load() }

// MaybeError implements errorfs.Injector.
func (d *DiskFull) MaybeError(op errorfs.Op) error {
	if !d.full.Load() {
		return nil
	}
	switch op.Kind {
	case errorfs.OpCreate, errorfs.OpLink, errorfs.OpReuseForWrite,
		errorfs.OpFileWrite, errorfs.OpFileWriteAt,
		errorfs.OpFileSync, errorfs.OpFileSyncData, errorfs.OpFileSyncTo:
		d.refusals.Add(1)
		return &os.PathError{Op: "write", Path: op.Path, Err: syscall.ENOSPC}
	}
	return nil
}

// String implements errorfs.Injector.
func (d *DiskFull) String() string { return "disk full" }
