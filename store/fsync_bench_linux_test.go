//go:build linux

package store

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"
)

// BenchmarkFdatasync measures what one WAL-like sync costs on this machine:
// a 2 KiB append followed by fdatasync, on a file in the test's temporary
// directory. Besides the latency (ns/op) it reports the CPU time of this
// process per sync (cpu-ns/sync, from getrusage) and the busy time of the
// whole machine per sync (machine-busy-ns/sync, from /proc/stat, which
// includes kernel threads and interrupts; only meaningful on an otherwise
// idle machine). On a virtual disk the CPU cost of a sync is what makes
// unspaced group commit expensive (see BENCHMARKS.md).
func BenchmarkFdatasync(b *testing.B) {
	f, err := os.Create(filepath.Join(b.TempDir(), "wal"))
	if err != nil {
		b.Fatal(err)
	}
	defer f.Close()
	buf := make([]byte, 2048)
	cpu0, busy0 := processCPU(b), machineBusy(b)
	b.ResetTimer()
	for b.Loop() {
		if _, err := f.Write(buf); err != nil {
			b.Fatal(err)
		}
		if err := syscall.Fdatasync(int(f.Fd())); err != nil {
			b.Fatal(err)
		}
	}
	b.StopTimer()
	n := float64(b.N)
	b.ReportMetric(float64(processCPU(b)-cpu0)/n, "cpu-ns/sync")
	b.ReportMetric(float64(machineBusy(b)-busy0)/n, "machine-busy-ns/sync")
}

// processCPU is this process's user and system CPU time.
func processCPU(b *testing.B) time.Duration {
	var ru syscall.Rusage
	if err := syscall.Getrusage(syscall.RUSAGE_SELF, &ru); err != nil {
		b.Fatal(err)
	}
	return time.Duration(ru.Utime.Nano() + ru.Stime.Nano())
}

// machineBusy is the machine's non-idle CPU time (all CPUs) since boot,
// from the first line of /proc/stat: every field but idle and iowait.
func machineBusy(b *testing.B) time.Duration {
	data, err := os.ReadFile("/proc/stat")
	if err != nil {
		b.Skip("no /proc/stat:", err)
	}
	line, _, _ := strings.Cut(string(data), "\n")
	fields := strings.Fields(line)
	if len(fields) < 8 || fields[0] != "cpu" {
		b.Fatalf("unexpected /proc/stat line %q", line)
	}
	const userHZ = 100 // clock ticks per second of /proc/stat on Linux
	var ticks int64
	for i, s := range fields[1:] {
		if i == 3 || i == 4 { // idle, iowait
			continue
		}
		v, err := strconv.ParseInt(s, 10, 64)
		if err != nil {
			b.Fatalf("/proc/stat field %d: %v", i+1, err)
		}
		ticks += v
	}
	return time.Duration(ticks) * time.Second / userHZ
}
