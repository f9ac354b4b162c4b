package bench

import (
	"context"
	"fmt"
	"maps"
	"slices"
	"sync"

	"github.com/pingcap/go-ycsb/pkg/ycsb"
)

// memDB is an in-memory ycsb.DB with ordered scans, to test the runner
// without a server.
type memDB struct {
	mu    sync.Mutex // guards the fields below
	rows  map[string]map[string][]byte
	calls map[string]int
}

var _ ycsb.DB = (*memDB)(nil)

func newMemDB() *memDB {
	return &memDB{rows: map[string]map[string][]byte{}, calls: map[string]int{}}
}

func (m *memDB) Close() error                                             { return nil }
func (m *memDB) InitThread(ctx context.Context, _, _ int) context.Context { return ctx }
func (m *memDB) CleanupThread(context.Context)                            {}
func (m *memDB) count(op string)                                          { m.calls[op]++ }
func rowKey(table, key string) string                                     { return table + "/" + key }

func (m *memDB) Read(_ context.Context, table, key string, fields []string) (map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count(OpRead)
	r, ok := m.rows[rowKey(table, key)]
	if !ok {
		return nil, fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	return project(maps.Clone(r), fields), nil
}

func (m *memDB) Scan(_ context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count(OpScan)
	keys := slices.Sorted(maps.Keys(m.rows))
	i, _ := slices.BinarySearch(keys, rowKey(table, startKey))
	var out []map[string][]byte
	for ; i < len(keys) && len(out) < count; i++ {
		out = append(out, project(maps.Clone(m.rows[keys[i]]), fields))
	}
	return out, nil
}

func (m *memDB) Update(_ context.Context, table, key string, values map[string][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count(OpUpdate)
	r, ok := m.rows[rowKey(table, key)]
	if !ok {
		return fmt.Errorf("%w: %s", ErrNotFound, key)
	}
	for k, v := range values {
		r[k] = slices.Clone(v)
	}
	return nil
}

func (m *memDB) Insert(_ context.Context, table, key string, values map[string][]byte) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count(OpInsert)
	r := make(map[string][]byte, len(values))
	for k, v := range values {
		r[k] = slices.Clone(v) // go-ycsb reuses its buffers
	}
	m.rows[rowKey(table, key)] = r
	return nil
}

func (m *memDB) Delete(_ context.Context, table, key string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.count(OpDelete)
	delete(m.rows, rowKey(table, key))
	return nil
}

func (m *memDB) size() int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return len(m.rows)
}

func (m *memDB) callCount(op string) int {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.calls[op]
}
