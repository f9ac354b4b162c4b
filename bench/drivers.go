package bench

import (
	"context"
	"fmt"
	"strings"
	"sync"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/measurement"
	"github.com/pingcap/go-ycsb/pkg/ycsb"

	// go-ycsb's own bindings, registered under "etcd" and "redis", so that
	// peers run the very workload code quorumkv runs.
	_ "github.com/pingcap/go-ycsb/db/etcd"
	_ "github.com/pingcap/go-ycsb/db/redis"
	// The core workload, registered under "core".
	_ "github.com/pingcap/go-ycsb/pkg/workload"
)

// openDB opens the driver of cfg.DB. The workload properties configure
// go-ycsb's bindings; the Config's addresses win over them.
func openDB(cfg Config, p *properties.Properties) (ycsb.DB, error) {
	switch cfg.DB {
	case DBQuorumKV:
		q, err := NewQuorumKV(cfg)
		if err != nil {
			return nil, err
		}
		return q, nil
	case DBEtcd:
		p = cloneProps(p)
		if len(cfg.Endpoints) > 0 {
			_, _, _ = p.Set("etcd.endpoints", strings.Join(cfg.Endpoints, ","))
		} else if _, ok := p.Get("etcd.endpoints"); !ok {
			_, _, _ = p.Set("etcd.endpoints", "127.0.0.1:2379")
		}
	case DBRedis:
		p = cloneProps(p)
		if cfg.RedisAddr != "" {
			_, _, _ = p.Set("redis.addr", cfg.RedisAddr)
		}
	default:
		return nil, fmt.Errorf("%w: unknown db %q", ErrInvalidConfig, cfg.DB)
	}
	creator := ycsb.GetDBCreator(cfg.DB)
	if creator == nil {
		return nil, fmt.Errorf("bench: no go-ycsb binding %q", cfg.DB)
	}
	db, err := creator.Create(p)
	if err != nil {
		return nil, fmt.Errorf("bench: open %s: %w", cfg.DB, err)
	}
	return timeoutDB{DB: db, timeout: cfg.RequestTimeout}, nil
}

func cloneProps(p *properties.Properties) *properties.Properties {
	q := properties.NewProperties()
	q.Merge(p)
	return q
}

// measureOnce guards the initialisation of go-ycsb's process-wide
// measurement. go-ycsb's core workload reports every read-modify-write to
// it and dereferences it unconditionally, so it must exist before workload
// F runs; the benchmark itself never reads it. It is global because the
// library's state is.
var measureOnce sync.Once

func initYCSBMeasurement() {
	measureOnce.Do(func() {
		p := properties.NewProperties()
		_, _, _ = p.Set("measurementtype", "histogram")
		measurement.InitMeasure(p)
	})
}

// tracingDB notes every DB call in the transaction of its context, so that
// the runner can name each transaction, and releases the transaction's
// workload lock for the length of the call.
//
// go-ycsb's generators (Zipfian, the operation chooser, the acknowledged
// insert counter) keep unsynchronised state shared by all threads. The
// runner therefore serialises the workload code of all threads under one
// lock and lets only the DB calls run concurrently. (With
// insertionretrylimit set, the core workload sleeps between insert retries
// under that lock.)
type tracingDB struct{ ycsb.DB }

// enter notes op and leaves the workload lock; the returned function takes
// it back.
func enter(ctx context.Context, op string) (leave func()) {
	t := txnFrom(ctx)
	if t == nil {
		return func() {}
	}
	t.call(op)
	if t.workload == nil {
		return func() {}
	}
	t.workload.Unlock()
	return t.workload.Lock
}

func (d tracingDB) Read(ctx context.Context, table, key string, fields []string) (map[string][]byte, error) {
	defer enter(ctx, OpRead)()
	return d.DB.Read(ctx, table, key, fields)
}

func (d tracingDB) Scan(ctx context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	defer enter(ctx, OpScan)()
	return d.DB.Scan(ctx, table, startKey, count, fields)
}

func (d tracingDB) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	defer enter(ctx, OpUpdate)()
	return d.DB.Update(ctx, table, key, values)
}

func (d tracingDB) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	defer enter(ctx, OpInsert)()
	return d.DB.Insert(ctx, table, key, values)
}

func (d tracingDB) Delete(ctx context.Context, table, key string) error {
	defer enter(ctx, OpDelete)()
	return d.DB.Delete(ctx, table, key)
}

// timeoutDB bounds every call of a go-ycsb binding by a deadline, as the
// quorumkv driver's HTTP client bounds its requests.
type timeoutDB struct {
	ycsb.DB
	timeout time.Duration
}

func (d timeoutDB) Read(ctx context.Context, table, key string, fields []string) (map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.DB.Read(ctx, table, key, fields)
}

func (d timeoutDB) Scan(ctx context.Context, table, startKey string, count int, fields []string) ([]map[string][]byte, error) {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.DB.Scan(ctx, table, startKey, count, fields)
}

func (d timeoutDB) Update(ctx context.Context, table, key string, values map[string][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.DB.Update(ctx, table, key, values)
}

func (d timeoutDB) Insert(ctx context.Context, table, key string, values map[string][]byte) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.DB.Insert(ctx, table, key, values)
}

func (d timeoutDB) Delete(ctx context.Context, table, key string) error {
	ctx, cancel := context.WithTimeout(ctx, d.timeout)
	defer cancel()
	return d.DB.Delete(ctx, table, key)
}
