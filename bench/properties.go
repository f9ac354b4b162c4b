package bench

import (
	"embed"
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strconv"
	"strings"
	"time"

	"github.com/magiconair/properties"
	"github.com/pingcap/go-ycsb/pkg/prop"
)

//go:embed workloads/workload?
var bundled embed.FS

// Workloads returns the names of the bundled workload property files,
// "workloada" to "workloadf".
func Workloads() []string {
	entries, _ := fs.ReadDir(bundled, "workloads")
	names := make([]string, 0, len(entries))
	for _, e := range entries {
		names = append(names, e.Name())
	}
	return names
}

// Workload returns the bundled property file called name ("workloada", or
// just "a").
func Workload(name string) ([]byte, bool) {
	if len(name) == 1 {
		name = "workload" + name
	}
	b, err := bundled.ReadFile("workloads/" + name)
	return b, err == nil
}

// loadProperties reads the property files in order, then applies the
// overrides.
func loadProperties(files []string, overrides map[string]string) (*properties.Properties, error) {
	p := properties.NewProperties()
	for _, f := range files {
		b, err := os.ReadFile(f)
		if errors.Is(err, fs.ErrNotExist) {
			var ok bool
			if b, ok = Workload(f); !ok {
				return nil, fmt.Errorf("bench: property file %q: neither a file nor a bundled workload", f)
			}
		} else if err != nil {
			return nil, fmt.Errorf("bench: property file: %w", err)
		}
		fp, err := properties.Load(b, properties.UTF8)
		if err != nil {
			return nil, fmt.Errorf("bench: property file %q: %w", f, err)
		}
		p.Merge(fp)
	}
	keys := make([]string, 0, len(overrides))
	for k := range overrides {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if _, _, err := p.Set(k, overrides[k]); err != nil {
			return nil, fmt.Errorf("bench: property %s: %w", k, err)
		}
	}
	return p, nil
}

// ParseProperty splits a -p argument "key=value".
func ParseProperty(kv string) (key, value string, err error) {
	key, value, ok := strings.Cut(kv, "=")
	key = strings.TrimSpace(key)
	if !ok || key == "" {
		return "", "", fmt.Errorf("%w: property %q is not key=value", ErrInvalidConfig, kv)
	}
	return key, strings.TrimSpace(value), nil
}

// plan is a Config resolved against the workload properties.
type plan struct {
	props      *properties.Properties
	threads    int
	loadOps    int64 // records the load phase inserts
	runOps     int64 // operations of the run phase; 0 = until duration
	duration   time.Duration
	target     float64
	workload   string // a short name for reports, e.g. "workloada"
	fieldCount int64
}

// resolve loads the properties and settles every count. It also checks the
// properties go-ycsb's core workload would otherwise reject by exiting the
// process.
func (c Config) resolve() (*plan, error) {
	p, err := loadProperties(c.PropertyFiles, c.Properties)
	if err != nil {
		return nil, err
	}
	pl := &plan{props: p}
	get := func(key string) (int64, bool, error) {
		s, ok := p.Get(key)
		if !ok {
			return 0, false, nil
		}
		v, err := strconv.ParseInt(strings.TrimSpace(s), 10, 64)
		if err != nil || v < 0 {
			return 0, false, fmt.Errorf("%w: property %s=%q is not a non-negative integer", ErrInvalidConfig, key, s)
		}
		return v, true, nil
	}

	pl.threads = c.Threads
	if pl.threads == 0 {
		v, ok, err := get(prop.ThreadCount)
		if err != nil {
			return nil, err
		}
		pl.threads = 16
		if ok && v > 0 {
			pl.threads = int(v)
		}
	}

	records, _, err := get(prop.RecordCount)
	if err != nil {
		return nil, err
	}
	insertStart, _, err := get(prop.InsertStart)
	if err != nil {
		return nil, err
	}
	insertCount, hasInsertCount, err := get(prop.InsertCount)
	if err != nil {
		return nil, err
	}
	if records == 0 {
		return nil, fmt.Errorf("%w: recordcount must be positive", ErrInvalidConfig)
	}
	if !hasInsertCount {
		insertCount = records - insertStart
	}
	if insertStart+insertCount > records {
		return nil, fmt.Errorf("%w: insertstart %d + insertcount %d exceed recordcount %d",
			ErrInvalidConfig, insertStart, insertCount, records)
	}
	pl.loadOps = insertCount

	pl.runOps = c.Ops
	// An explicit Duration alone bounds the run: the files' operationcount
	// would otherwise end it first.
	if pl.runOps == 0 && c.Duration == 0 {
		if pl.runOps, _, err = get(prop.OperationCount); err != nil {
			return nil, err
		}
	}
	pl.duration = c.Duration
	if pl.duration == 0 {
		v, _, err := get(prop.MaxExecutiontime)
		if err != nil {
			return nil, err
		}
		pl.duration = time.Duration(v) * time.Second
	}
	if pl.runOps == 0 && pl.duration == 0 && slices.Contains(c.Phases, PhaseRun) {
		return nil, fmt.Errorf("%w: the run phase needs ops or a duration", ErrInvalidConfig)
	}
	pl.target = c.Target
	if pl.target == 0 {
		if s, ok := p.Get(prop.Target); ok {
			v, err := strconv.ParseFloat(strings.TrimSpace(s), 64)
			if err != nil || v < 0 {
				return nil, fmt.Errorf("%w: property target=%q is not a non-negative rate", ErrInvalidConfig, s)
			}
			pl.target = v
		}
	}
	if pl.fieldCount, _, err = get(prop.FieldCount); err != nil {
		return nil, err
	}
	if pl.fieldCount == 0 {
		pl.fieldCount = prop.FieldCountDefault
	}
	if err := checkCoreProperties(p); err != nil {
		return nil, err
	}

	// What go-ycsb reads: the settled counts win over the files.
	set := func(k, v string) { _, _, _ = p.Set(k, v) }
	set(prop.ThreadCount, strconv.Itoa(pl.threads))
	set(prop.OperationCount, strconv.FormatInt(pl.runOps, 10))
	pl.workload = workloadName(c.PropertyFiles)
	return pl, nil
}

// checkCoreProperties rejects the values go-ycsb's core workload handles by
// exiting the process.
func checkCoreProperties(p *properties.Properties) error {
	oneOf := func(key, def string, allowed ...string) error {
		v := p.GetString(key, def)
		if !slices.Contains(allowed, strings.ToLower(v)) {
			return fmt.Errorf("%w: property %s=%q is not one of %s", ErrInvalidConfig, key, v, strings.Join(allowed, ", "))
		}
		return nil
	}
	if w := p.GetString(prop.Workload, "core"); w != "core" && w != "site.ycsb.workloads.CoreWorkload" {
		return fmt.Errorf("%w: workload %q: only the core workload is supported", ErrInvalidConfig, w)
	}
	for _, chk := range []error{
		oneOf(prop.RequestDistribution, prop.RequestDistributionDefault,
			"uniform", "sequential", "zipfian", "latest", "hotspot", "exponential"),
		oneOf(prop.FieldLengthDistribution, prop.FieldLengthDistributionDefault,
			"constant", "uniform", "zipfian", "histogram"),
		oneOf(prop.ScanLengthDistribution, prop.ScanLengthDistributionDefault, "uniform", "zipfian"),
		oneOf(prop.InsertOrder, prop.InsertOrderDefault, "hashed", "ordered"),
	} {
		if chk != nil {
			return chk
		}
	}
	if p.GetBool(prop.DataIntegrity, false) &&
		strings.ToLower(p.GetString(prop.FieldLengthDistribution, prop.FieldLengthDistributionDefault)) != "constant" {
		return fmt.Errorf("%w: dataintegrity needs fieldlengthdistribution=constant", ErrInvalidConfig)
	}
	if b := p.GetInt64(prop.BatchSize, 1); b > 1 {
		return fmt.Errorf("%w: batch.size %d: batched operations are not supported", ErrInvalidConfig, b)
	}
	return nil
}

// workloadName names a run after its last property file.
func workloadName(files []string) string {
	if len(files) == 0 {
		return "custom"
	}
	name := files[len(files)-1]
	if len(name) == 1 {
		return "workload" + name
	}
	if i := strings.LastIndexAny(name, `/\`); i >= 0 {
		name = name[i+1:]
	}
	return strings.TrimSuffix(name, ".properties")
}
