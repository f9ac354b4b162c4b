package handoff

import (
	"errors"
	"fmt"
	"slices"
	"sync"
	"sync/atomic"

	"github.com/vmihailenco/msgpack/v5"

	"github.com/quorumkv/quorumkv/store"
	"github.com/quorumkv/quorumkv/version"
)

// hintFakeStore is an in-memory HintStore with the store package's hint
// semantics: AddHint merges with version.Sync, DeleteHint compares, and
// HintBytes counts row key plus encoded set.
type hintFakeStore struct {
	mu    sync.Mutex
	hints map[string]map[string]version.Set // owner -> k -> set
	bytes map[string]int64
}

func newHintFakeStore() *hintFakeStore {
	return &hintFakeStore{hints: map[string]map[string]version.Set{}, bytes: map[string]int64{}}
}

func hintFakeRowBytes(owner string, k []byte, set version.Set) int64 {
	b, err := msgpack.Marshal(&set)
	if err != nil {
		panic(err)
	}
	return int64(1+len(owner)+1+8+len(k)) + int64(1+len(b))
}

func (s *hintFakeStore) AddHint(owner string, k []byte, set version.Set, limit, total int64) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	var oldBytes int64
	old, ok := s.hints[owner][string(k)]
	if ok {
		oldBytes = hintFakeRowBytes(owner, k, old)
		set = version.Sync(old, set)
	} else {
		set = set.Clone()
	}
	delta := hintFakeRowBytes(owner, k, set) - oldBytes
	if delta > 0 && limit > 0 && s.bytes[owner]+delta > limit {
		return false, nil
	}
	if delta > 0 && total > 0 {
		all := delta
		for _, b := range s.bytes {
			all += b
		}
		if all > total {
			return false, store.ErrHintsFull
		}
	}
	if s.hints[owner] == nil {
		s.hints[owner] = map[string]version.Set{}
	}
	s.hints[owner][string(k)] = set
	s.bytes[owner] += delta
	return true, nil
}

func (s *hintFakeStore) Hint(owner string, k []byte) (version.Set, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.hints[owner][string(k)].Clone(), nil
}

func (s *hintFakeStore) ScanHints(owner string, fn func(k []byte, set version.Set) error) error {
	s.mu.Lock()
	m := s.hints[owner]
	keys := make([]string, 0, len(m))
	for k := range m {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	sets := make([]version.Set, len(keys))
	for i, k := range keys {
		sets[i] = m[k].Clone()
	}
	s.mu.Unlock()
	for i, k := range keys {
		if err := fn([]byte(k), sets[i]); err != nil {
			return err
		}
	}
	return nil
}

func (s *hintFakeStore) DeleteHint(owner string, k []byte, replayed version.Set) (bool, error) {
	s.mu.Lock()
	defer s.mu.Unlock()
	cur, ok := s.hints[owner][string(k)]
	if !ok || !cur.Equal(replayed) {
		return false, nil
	}
	delete(s.hints[owner], string(k))
	if len(s.hints[owner]) == 0 {
		delete(s.hints, owner)
	}
	s.bytes[owner] -= hintFakeRowBytes(owner, k, cur)
	if s.bytes[owner] == 0 {
		delete(s.bytes, owner)
	}
	return true, nil
}

func (s *hintFakeStore) HintBytes(owner string) int64 {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.bytes[owner]
}

func (s *hintFakeStore) HintOwners() []string {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]string, 0, len(s.hints))
	for o := range s.hints {
		out = append(out, o)
	}
	slices.Sort(out)
	return out
}

var errHintInjected = errors.New("injected fault")

// hintFaulty wraps a HintStore and fails AddHint or DeleteHint while the
// corresponding switch is on.
type hintFaulty struct {
	HintStore
	failAdd, failDelete atomic.Bool
}

func (f *hintFaulty) AddHint(owner string, k []byte, set version.Set, limit, total int64) (bool, error) {
	if f.failAdd.Load() {
		return false, errHintInjected
	}
	return f.HintStore.AddHint(owner, k, set, limit, total)
}

func (f *hintFaulty) DeleteHint(owner string, k []byte, replayed version.Set) (bool, error) {
	if f.failDelete.Load() {
		return false, errHintInjected
	}
	return f.HintStore.DeleteHint(owner, k, replayed)
}

// hintKey returns the i-th test key, encoded as the store requires.
func hintKey(i int) []byte {
	return store.EncodeKey([]byte("b"), []byte(fmt.Sprintf("k%03d", i)))
}

// hintKeyS is hintKey as a map key.
func hintKeyS(i int) string { return string(hintKey(i)) }
