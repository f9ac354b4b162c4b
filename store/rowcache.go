package store

import (
	"sync"
	"sync/atomic"
)

// rowCache keeps the newest record of recently used data rows in memory,
// so that reads of a hot key, and the read half of its read-modify-write,
// skip Pebble's lookup: profiles of an update-heavy load spent about 12% of
// the CPU in memtable seeks for keys written moments before.
//
// Coherence rests on one rule: an entry is added or changed only while the
// key's stripe lock is held, either with the record just committed or with
// one just read from Pebble. Every writer of data rows (update,
// MarkReapable, reapOne) holds that lock and refreshes the entry after its
// commit, so the cache never holds a record older than Pebble's. Readers
// may look without the lock: they see the record before or after a
// concurrent write, as they would in Pebble.
//
// Absent rows are not cached. Eviction is random (Go's map order) once a
// shard is over its byte budget, which is cheap and keeps a skewed hot set
// resident with high probability.
type rowCache struct {
	shards   []cacheShard
	perShard int64 // byte budget of one shard
	hits     atomic.Uint64
	misses   atomic.Uint64
}

type cacheShard struct {
	mu    sync.Mutex
	rows  map[string]cachedRow // by data row key
	bytes int64
}

type cachedRow struct {
	rec  record
	size int // length of the stored value, as readRow reports it
}

// rowCacheShards spreads lock contention; a power of two.
const rowCacheShards = 64

// cacheEntryOverhead approximates the map entry, string header and record.
const cacheEntryOverhead = 96

// newRowCache returns a cache of about size bytes, or nil when size is 0.
func newRowCache(size int64) *rowCache {
	if size <= 0 {
		return nil
	}
	c := &rowCache{shards: make([]cacheShard, rowCacheShards), perShard: max(size/rowCacheShards, 1)}
	for i := range c.shards {
		c.shards[i].rows = make(map[string]cachedRow)
	}
	return c
}

func (c *rowCache) shard(hash uint64) *cacheShard {
	// The stripe lock uses the hash's low bits; mixing in the high bits
	// keeps the shards even for any stripe count.
	return &c.shards[(hash^hash>>32)%rowCacheShards]
}

func entryBytes(rowLen int, r cachedRow) int64 {
	return int64(rowLen+len(r.rec.Set)) + cacheEntryOverhead
}

// get returns the cached record of row. The record's Set aliases the
// cache's copy: callers must not modify it.
func (c *rowCache) get(hash uint64, row []byte) (cachedRow, bool) {
	if c == nil {
		return cachedRow{}, false
	}
	sh := c.shard(hash)
	sh.mu.Lock()
	r, ok := sh.rows[string(row)]
	sh.mu.Unlock()
	if ok {
		c.hits.Add(1)
	} else {
		c.misses.Add(1)
	}
	return r, ok
}

// put stores r as row's newest record. The caller holds row's stripe lock
// and r.rec.Set is not modified afterwards.
func (c *rowCache) put(hash uint64, row []byte, r cachedRow) {
	if c == nil {
		return
	}
	n := entryBytes(len(row), r)
	sh := c.shard(hash)
	sh.mu.Lock()
	defer sh.mu.Unlock()
	if old, ok := sh.rows[string(row)]; ok {
		sh.bytes -= entryBytes(len(row), old)
	}
	if n > c.perShard { // too large to keep; drop any older copy
		delete(sh.rows, string(row))
		return
	}
	sh.rows[string(row)] = r
	sh.bytes += n
	for k, v := range sh.rows {
		if sh.bytes <= c.perShard {
			break
		}
		if k == string(row) {
			continue
		}
		sh.bytes -= entryBytes(len(k), v)
		delete(sh.rows, k)
	}
}

// drop forgets row. The caller holds row's stripe lock.
func (c *rowCache) drop(hash uint64, row []byte) {
	if c == nil {
		return
	}
	sh := c.shard(hash)
	sh.mu.Lock()
	if old, ok := sh.rows[string(row)]; ok {
		sh.bytes -= entryBytes(len(row), old)
		delete(sh.rows, string(row))
	}
	sh.mu.Unlock()
}

// usage returns the cached bytes and entries.
func (c *rowCache) usage() (bytes int64, entries int) {
	if c == nil {
		return 0, 0
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		bytes += sh.bytes
		entries += len(sh.rows)
		sh.mu.Unlock()
	}
	return bytes, entries
}

// clear empties the cache: after a reopen it may hold records that were
// applied to the memtable of the failed instance but never made durable.
// No writer may run meanwhile.
func (c *rowCache) clear() {
	if c == nil {
		return
	}
	for i := range c.shards {
		sh := &c.shards[i]
		sh.mu.Lock()
		clear(sh.rows)
		sh.bytes = 0
		sh.mu.Unlock()
	}
}
