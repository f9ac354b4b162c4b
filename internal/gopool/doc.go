// Package gopool runs short tasks on reusable goroutines.
//
// A new goroutine starts with a small stack, and a task that goes deep (a
// Pebble lookup, a msgpack decode) grows it by copying, several times, on
// every request. Profiles of the request path showed that copying at about
// 8% of the CPU. A Pool hands each task to an idle worker whose stack has
// already grown, and starts a new worker only when none is idle, so the
// number of tasks running at once is never limited by the pool.
//
// Idle workers exit after Config.IdleTimeout. Close stops the idle workers
// and waits for every worker to finish its task.
package gopool
