//go:build linux

package main

import (
	"context"
	"fmt"
	"net"
	"os"
	"os/exec"
	"regexp"
	"runtime"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"testing"
	"time"

	"golang.org/x/sys/unix"
)

// netLab is a private network for the soak's partitions. Each node runs in
// a network namespace of its own, joined by a veth pair to a router
// namespace that forwards between them:
//
//	node ns n1  eth0 10.77.0.2/30  ── veth ── 10.77.0.1/30  ┐
//	node ns n2  eth0 10.77.0.6/30  ── veth ── 10.77.0.5/30  ├ router ns, ip_forward=1
//	node ns n3  eth0 10.77.0.10/30 ── veth ── 10.77.0.9/30  ┘
//
// A cut is a policy rule in the router, `from A to B blackhole`, so the
// router drops A's packets to B without a word, as a pulled cable would;
// B's packets to A still pass unless the other direction is cut too. The
// test's own sockets are opened inside the router namespace (dial): their
// source is a router address, which no rule names, so a partition
// separates nodes from each other and never from the clients. Nothing is
// created in the root namespace, and deleting the namespaces deletes every
// veth with them.
//
// A netLab is safe for concurrent use.
type netLab struct {
	t      *testing.T
	prefix string
	router string
	nodes  []string // namespace of each node
	addrs  []string // each node's address

	mu struct {
		sync.Mutex
		cuts map[[2]int]bool // directed cuts in place, from → to
	}
}

// netLabPrefix starts the name of every namespace a soak creates. The PID
// of the test process follows it, so a later run can tell the namespaces
// of a run that died (a go test timeout skips t.Cleanup) from those of a
// run still going.
const netLabPrefix = "qkvsoak"

var (
	netLabSeq     atomic.Int64
	netLabStaleRE = regexp.MustCompile(`^` + netLabPrefix + `(\d+)-\d+-`)
)

// netLabSupported says why partitions cannot run here, or nil.
func netLabSupported() error {
	if os.Geteuid() != 0 {
		return fmt.Errorf("network partitions need root (network namespaces and policy routes); run the soak as root, e.g. with sudo -E")
	}
	if _, err := exec.LookPath("ip"); err != nil {
		return fmt.Errorf("network partitions need the ip command (iproute2): %v", err)
	}
	return nil
}

// runIP runs ip with args, bounded in time.
func runIP(args ...string) error {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	out, err := exec.CommandContext(ctx, "ip", args...).CombinedOutput()
	if err != nil {
		return fmt.Errorf("ip %s: %v: %s", strings.Join(args, " "), err, strings.TrimSpace(string(out)))
	}
	return nil
}

// newNetLab builds the namespaces for n nodes; t.Cleanup removes them.
func newNetLab(t *testing.T, n int) *netLab {
	t.Helper()
	if n < 1 || n > 60 {
		t.Fatalf("netLab: %d nodes, want 1 to 60 (one /30 each in 10.77.0.0/24)", n)
	}
	removeStaleNetLabs(t)
	l := &netLab{t: t, prefix: fmt.Sprintf("%s%d-%d-", netLabPrefix, os.Getpid(), netLabSeq.Add(1))}
	l.mu.cuts = map[[2]int]bool{}
	l.router = l.prefix + "r"
	// Registered before anything exists, so a failure halfway through
	// still removes whatever was made.
	t.Cleanup(l.remove)
	must := func(args ...string) {
		t.Helper()
		if err := runIP(args...); err != nil {
			t.Fatal(err)
		}
	}
	must("netns", "add", l.router)
	must("-n", l.router, "link", "set", "lo", "up")
	must("netns", "exec", l.router, "sysctl", "-qw", "net.ipv4.ip_forward=1")
	for i := 0; i < n; i++ {
		ns := fmt.Sprintf("%sn%d", l.prefix, i+1)
		veth := fmt.Sprintf("v%d", i+1)
		gw := fmt.Sprintf("10.77.0.%d", 4*i+1)
		addr := fmt.Sprintf("10.77.0.%d", 4*i+2)
		l.nodes = append(l.nodes, ns)
		l.addrs = append(l.addrs, addr)
		must("netns", "add", ns)
		must("-n", ns, "link", "set", "lo", "up")
		must("-n", l.router, "link", "add", veth, "type", "veth", "peer", "name", "eth0", "netns", ns)
		must("-n", l.router, "addr", "add", gw+"/30", "dev", veth)
		must("-n", l.router, "link", "set", veth, "up")
		must("-n", ns, "addr", "add", addr+"/30", "dev", "eth0")
		must("-n", ns, "link", "set", "eth0", "up")
		must("-n", ns, "route", "add", "10.77.0.0/24", "via", gw)
	}
	return l
}

// ns returns node i's namespace, addr its address.
func (l *netLab) ns(i int) string   { return l.nodes[i] }
func (l *netLab) addr(i int) string { return l.addrs[i] }

// cut drops every packet node from sends to node to.
func (l *netLab) cut(from, to int) error {
	l.mu.Lock()
	defer l.mu.Unlock()
	k := [2]int{from, to}
	if l.mu.cuts[k] {
		return nil
	}
	if err := runIP(l.ruleArgs("add", from, to)...); err != nil {
		return err
	}
	l.mu.cuts[k] = true
	return nil
}

// heal removes every cut.
func (l *netLab) heal() error {
	l.mu.Lock()
	defer l.mu.Unlock()
	var first error
	for k := range l.mu.cuts {
		if err := runIP(l.ruleArgs("del", k[0], k[1])...); err != nil {
			if first == nil {
				first = err
			}
			continue
		}
		delete(l.mu.cuts, k)
	}
	return first
}

func (l *netLab) ruleArgs(verb string, from, to int) []string {
	return []string{"-n", l.router, "rule", verb, "from", l.addrs[from], "to", l.addrs[to], "blackhole", "pref", "100"}
}

// dial opens a connection from inside the router namespace. The socket is
// made on an OS thread switched into that namespace and keeps it after the
// thread switches back.
func (l *netLab) dial(ctx context.Context, network, addr string) (net.Conn, error) {
	type result struct {
		c   net.Conn
		err error
	}
	ch := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		c, restored, err := dialInNetns(ctx, "/var/run/netns/"+l.router, network, addr)
		if restored {
			runtime.UnlockOSThread()
		} // otherwise the thread is still in the router namespace, and exits with this goroutine
		ch <- result{c, err}
	}()
	r := <-ch
	return r.c, r.err
}

// dialInNetns dials from the namespace at path. The caller has locked its
// OS thread; restored reports whether the thread is back in its own
// namespace. Errors are *net.OpError with Op "dial", so that a failure here
// counts as a request that was never sent.
func dialInNetns(ctx context.Context, path, network, addr string) (c net.Conn, restored bool, err error) {
	fail := func(err error) (net.Conn, bool, error) {
		return nil, restored, &net.OpError{Op: "dial", Net: network, Err: err}
	}
	self, err := os.Open(fmt.Sprintf("/proc/self/task/%d/ns/net", unix.Gettid()))
	if err != nil {
		return fail(err)
	}
	defer self.Close()
	target, err := os.Open(path)
	if err != nil {
		restored = true
		return fail(err)
	}
	defer target.Close()
	if err := unix.Setns(int(target.Fd()), unix.CLONE_NEWNET); err != nil {
		restored = true
		return fail(fmt.Errorf("setns %s: %w", path, err))
	}
	var d net.Dialer
	c, err = d.DialContext(ctx, network, addr)
	restored = unix.Setns(int(self.Fd()), unix.CLONE_NEWNET) == nil
	return c, restored, err
}

// remove kills whatever still runs in the lab's namespaces (only servers
// this test started) and deletes them, veths included.
func (l *netLab) remove() {
	names := append([]string{}, l.nodes...)
	names = append(names, l.router)
	for _, ns := range names {
		if err := deleteNetns(ns); err != nil {
			l.t.Errorf("cleanup: %v", err)
		}
	}
}

// deleteNetns kills the processes left in ns and deletes it. A namespace
// that does not exist is not an error.
func deleteNetns(ns string) error {
	if _, err := os.Stat("/var/run/netns/" + ns); os.IsNotExist(err) {
		return nil
	}
	for attempt := 0; attempt < 50; attempt++ {
		out, _ := exec.Command("ip", "netns", "pids", ns).Output()
		pids := strings.Fields(string(out))
		if len(pids) == 0 {
			break
		}
		for _, p := range pids {
			if pid, err := strconv.Atoi(p); err == nil {
				syscall.Kill(pid, syscall.SIGKILL)
			}
		}
		time.Sleep(100 * time.Millisecond)
	}
	return runIP("netns", "del", ns)
}

// removeStaleNetLabs deletes the namespaces of soak runs whose process is
// gone: a run killed by go test's -timeout never reaches t.Cleanup.
func removeStaleNetLabs(t *testing.T) {
	out, err := exec.Command("ip", "netns", "list").Output()
	if err != nil {
		return
	}
	for _, line := range strings.Split(string(out), "\n") {
		name, _, _ := strings.Cut(strings.TrimSpace(line), " ")
		m := netLabStaleRE.FindStringSubmatch(name)
		if m == nil {
			continue
		}
		if _, err := os.Stat("/proc/" + m[1]); err == nil {
			continue // that run is alive
		}
		t.Logf("removing namespace %s left by soak run %s", name, m[1])
		if err := deleteNetns(name); err != nil {
			t.Logf("could not remove %s: %v", name, err)
		}
	}
}

// setDeathSignal makes the kernel kill a server if the test process dies
// without its cleanups (a go test -timeout panic). Pdeathsig follows the
// thread that started the child, and Go ends a thread only when a
// goroutine exits locked to it: here only when dial could not switch a
// thread back. The servers that thread started would then die, which the
// soak reports as an unexpected exit, not as a silent loss.
func setDeathSignal(cmd *exec.Cmd) {
	cmd.SysProcAttr = &syscall.SysProcAttr{Pdeathsig: syscall.SIGKILL}
}
