package main

import (
	"bytes"
	"context"
	"encoding/json"
	"io"
	"net/http"
	"net/http/httptest"
	"os"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/node"
)

// request is what a fake node received.
type request struct {
	Method, Path, Query, ContentType string
	Body                             []byte
}

// fakeNode serves the JSON of reply (a function of the request count,
// from 1) with status, and records the requests.
type fakeNode struct {
	*httptest.Server
	mu   sync.Mutex
	reqs []request
}

func newFakeNode(t *testing.T, status int, reply func(n int) any) *fakeNode {
	t.Helper()
	f := &fakeNode{}
	f.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		body, _ := io.ReadAll(r.Body)
		f.mu.Lock()
		f.reqs = append(f.reqs, request{r.Method, r.URL.Path, r.URL.RawQuery, r.Header.Get("Content-Type"), body})
		n := len(f.reqs)
		f.mu.Unlock()
		b, err := json.MarshalIndent(reply(n), "", "  ")
		if err != nil {
			t.Error(err)
		}
		w.Header().Set("Content-Type", "application/json")
		w.WriteHeader(status)
		_, _ = w.Write(b)
	}))
	t.Cleanup(f.Close)
	return f
}

func (f *fakeNode) requests() []request {
	f.mu.Lock()
	defer f.mu.Unlock()
	return append([]request(nil), f.reqs...)
}

func always(v any) func(int) any { return func(int) any { return v } }

// runCtx executes the CLI with args under ctx and returns what it printed.
func runCtx(t *testing.T, ctx context.Context, args ...string) (string, error) {
	t.Helper()
	root := newRootCmd()
	var out bytes.Buffer
	root.SetOut(&out)
	root.SetErr(&out)
	root.SetArgs(args)
	err := root.ExecuteContext(ctx)
	return out.String(), err
}

// testPlan is a plan with a change in progress (n4 leaves for n5) and a
// staged removal of n3.
func testPlan() node.Plan {
	return node.Plan{
		Epoch: 7,
		Current: node.PlanChange{
			Changing: true, Fingerprint: "1f2e",
			Committed: []string{"n1", "n2", "n3", "n4"}, Target: []string{"n1", "n2", "n3", "n5"},
			Joining: []string{"n5"}, Leaving: []string{"n4"}, WaitingSync: []string{"n5"},
			Moves: []node.PlanMove{
				{Partition: 3, To: "n5", From: []string{"n4", "n1"}, Keys: 1000, Bytes: 12 << 20},
				{Partition: 17, To: "n5", From: []string{"n4"}, Keys: 500, Bytes: 307 << 10},
				{Partition: 17, To: "n2", From: []string{"n4"}, Keys: -1, Bytes: -1},
			},
			Partitions: 2, Keys: 1500, Bytes: 12<<20 + 307<<10,
		},
		Staged: []node.StagedIntent{{Node: "n3", Intent: "remove"}, {Node: "n6", Intent: "join", Replaces: "n3"}},
		AfterCommit: &node.PlanChange{
			Changing: true, Fingerprint: "9a9a",
			Committed: []string{"n1", "n2", "n3", "n4"}, Target: []string{"n1", "n2", "n5", "n6"},
			Joining: []string{"n5", "n6"}, Leaving: []string{"n4"}, Removing: []string{"n3"},
			Moves:      []node.PlanMove{{Partition: 9, To: "n6", From: []string{"n1"}, Keys: 42, Bytes: 2048}},
			Partitions: 1, Keys: 42, Bytes: 2048,
		},
	}
}

// Each command sends its method, path and JSON body, and prints the plan
// the node answers with.
func TestClusterCommandsSendRequests(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		method string
		path   string
		body   string // JSON, "" for none
	}{
		{[]string{"plan"}, http.MethodGet, "/v1/cluster/plan", ""},
		{[]string{"commit"}, http.MethodPost, "/v1/cluster/commit", ""},
		{[]string{"clear"}, http.MethodPost, "/v1/cluster/clear", ""},
		{[]string{"leave", "n3"}, http.MethodPost, "/v1/cluster/leave", `{"node":"n3","stage":false,"force":false}`},
		{[]string{"leave", "n3", "--stage"}, http.MethodPost, "/v1/cluster/leave", `{"node":"n3","stage":true,"force":false}`},
		{[]string{"remove", "n3", "--force"}, http.MethodPost, "/v1/cluster/remove", `{"node":"n3","stage":false,"force":true}`},
		{[]string{"remove", "--stage", "n3", "--force"}, http.MethodPost, "/v1/cluster/remove", `{"node":"n3","stage":true,"force":true}`},
		{[]string{"replace", "n3", "n5"}, http.MethodPost, "/v1/cluster/replace", `{"old":"n3","new":"n5","stage":false,"force":false}`},
		{[]string{"replace", "n3", "n5", "--stage", "--force"}, http.MethodPost, "/v1/cluster/replace", `{"old":"n3","new":"n5","stage":true,"force":true}`},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := newFakeNode(t, http.StatusOK, always(testPlan()))
			out, err := run(t, append(append([]string{"cluster"}, tc.args...), "--node", srv.URL+"/")...)
			if err != nil {
				t.Fatal(err)
			}
			reqs := srv.requests()
			if len(reqs) != 1 {
				t.Fatalf("%d requests, want 1", len(reqs))
			}
			r := reqs[0]
			if r.Method != tc.method || r.Path != tc.path || r.Query != "" {
				t.Fatalf("sent %s %s?%s, want %s %s", r.Method, r.Path, r.Query, tc.method, tc.path)
			}
			if string(r.Body) != tc.body {
				t.Fatalf("sent body %q, want %q", r.Body, tc.body)
			}
			if tc.body != "" && r.ContentType != "application/json" {
				t.Fatalf("sent Content-Type %q, want application/json", r.ContentType)
			}
			if !strings.Contains(out, "total: 2 partitions in 3 moves, 1500 keys, 12.3 MiB") {
				t.Fatalf("printed\n%s\nwithout the plan's totals", out)
			}
		})
	}
}

// The plan shows both changes, the staged intents, every move with its
// sources and size, and the totals.
func TestClusterPlanRendersMoves(t *testing.T) {
	srv := newFakeNode(t, http.StatusOK, always(testPlan()))
	out, err := run(t, "cluster", "plan", "--node", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	for _, want := range []string{
		"epoch 7",
		"change in progress:",
		"members      n1 n2 n3 n4 -> n1 n2 n3 n5",
		"joining      n5",
		"leaving      n4",
		"waiting to sync: n5",
		"fingerprint  1f2e",
		"          3  n4,n1 -> n5  1000   12.0 MiB\n",
		"         17  n4    -> n5   500  307.0 KiB\n",
		"         17  n4    -> n2     ?          ?\n",
		"total: 2 partitions in 3 moves, 1500 keys, 12.3 MiB; the size of 1 move is unknown (the source did not answer)",
		"n3           remove",
		"n6           join (replaces n3)",
		"committing would make this change:",
		"removing     n3",
		"          9  n1   -> n6    42  2.0 KiB\n",
		"total: 1 partition in 1 move, 42 keys, 2.0 KiB\n",
	} {
		if !strings.Contains(out, want) {
			t.Errorf("plan lacks %q", want)
		}
	}
	if t.Failed() {
		t.Logf("plan printed:\n%s", out)
	}
}

// A plan without moves: a cluster at rest, and intents that make no ring.
func TestClusterPlanWithoutMoves(t *testing.T) {
	for _, tc := range []struct {
		name string
		plan node.Plan
		want string
	}{
		{"at rest", node.Plan{Epoch: 3, Current: node.PlanChange{Fingerprint: "aa", Committed: []string{"n1", "n2"}, Target: []string{"n1", "n2"}, Moves: []node.PlanMove{}}, Staged: []node.StagedIntent{}},
			"epoch 3\n\nno change in progress; members: n1 n2\n\nnothing staged\n"},
		{"no ring", node.Plan{Epoch: 4, Current: node.PlanChange{Fingerprint: "bb", Committed: []string{"n1"}, Error: "ring: seed n1 claimed twice", Moves: []node.PlanMove{}}},
			"epoch 4\n\nno change can start: the intents do not make a ring\n  members      n1 -> (none)\n  fingerprint  bb\n  error: ring: seed n1 claimed twice\n  no partition moves\n\nnothing staged\n"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			srv := newFakeNode(t, http.StatusOK, always(tc.plan))
			out, err := run(t, "cluster", "plan", "--node", srv.URL)
			if err != nil {
				t.Fatal(err)
			}
			if out != tc.want {
				t.Fatalf("plan printed\n%s\nwant\n%s", out, tc.want)
			}
		})
	}
}

// --json prints the node's body unchanged.
func TestClusterJSONPassesThrough(t *testing.T) {
	for _, args := range [][]string{{"plan"}, {"leave", "n3"}, {"transfers"}} {
		var reply any = testPlan()
		if args[0] == "transfers" {
			reply = testTransfers(true)
		}
		srv := newFakeNode(t, http.StatusOK, always(reply))
		want, _ := json.MarshalIndent(reply, "", "  ")
		out, err := run(t, append(append([]string{"cluster"}, args...), "--json", "--node", srv.URL)...)
		if err != nil {
			t.Fatal(err)
		}
		if out != string(want) {
			t.Fatalf("cluster %s --json printed\n%s\nwant\n%s", args[0], out, want)
		}
	}
}

// The node's error body becomes the command's error, with its code.
func TestClusterErrors(t *testing.T) {
	for _, tc := range []struct {
		args   []string
		status int
		reply  any
		want   []string
	}{
		{[]string{"leave", "n9"}, http.StatusNotFound, map[string]string{"error": `no member "n9"`, "code": node.CodeUnknownMember},
			[]string{`no member "n9"`, "unknown_member", "HTTP 404"}},
		{[]string{"remove", "n2"}, http.StatusConflict, map[string]string{"error": "n2 is up; remove is for a node that is gone for good", "code": node.CodeConflict},
			[]string{"n2 is up", "conflict", "HTTP 409"}},
		{[]string{"replace", "n3", "n7"}, http.StatusBadRequest, map[string]string{"error": "the body must be JSON", "code": "bad_body"},
			[]string{"the body must be JSON", "bad_body", "HTTP 400"}},
		{[]string{"plan"}, http.StatusServiceUnavailable, map[string]string{"error": node.ErrNoRing.Error(), "code": node.CodeNotReady},
			[]string{"no ring yet", "not_ready", "HTTP 503"}},
		{[]string{"transfers", "--watch"}, http.StatusServiceUnavailable, map[string]string{"error": "not yet", "code": node.CodeNotReady},
			[]string{"not yet", "not_ready"}},
		{[]string{"commit"}, http.StatusBadGateway, "proxy down", []string{"HTTP 502", "proxy down"}},
		{[]string{"plan"}, http.StatusOK, []int{1, 2}, []string{"decode the plan"}},
	} {
		t.Run(strings.Join(tc.args, " "), func(t *testing.T) {
			srv := newFakeNode(t, tc.status, always(tc.reply))
			_, err := run(t, append(append([]string{"cluster"}, tc.args...), "--node", srv.URL)...)
			if err == nil {
				t.Fatal("succeeded")
			}
			for _, w := range tc.want {
				if !strings.Contains(err.Error(), w) {
					t.Errorf("error %q lacks %q", err, w)
				}
			}
		})
	}
}

// Wrong arguments fail before anything is sent.
func TestClusterArgs(t *testing.T) {
	srv := newFakeNode(t, http.StatusOK, always(testPlan()))
	for _, args := range [][]string{
		{"bogus"},
		{"plan", "extra"},
		{"commit", "n1"},
		{"leave"},
		{"leave", "n1", "n2"},
		{"leave", ""},
		{"remove", " "},
		{"remove"},
		{"replace", "n3"},
		{"replace", "n3", "n3"},
		{"replace", "n3", ""},
		{"replace", "n3", "n5", "n6"},
		{"transfers", "n1"},
		{"transfers", "--interval", "0s"},
		{"plan", "--stage"},
		{"commit", "--force"},
	} {
		if _, err := run(t, append(append([]string{"cluster"}, args...), "--node", srv.URL)...); err == nil {
			t.Errorf("cluster %q succeeded", args)
		}
	}
	if n := len(srv.requests()); n != 0 {
		t.Fatalf("%d requests sent for wrong arguments", n)
	}
}

func TestClusterHumanBytes(t *testing.T) {
	for _, tc := range []struct {
		n    int64
		want string
	}{
		{-1, "?"}, {0, "0 B"}, {1023, "1023 B"}, {1024, "1.0 KiB"}, {1536, "1.5 KiB"},
		{12<<20 + 307<<10, "12.3 MiB"}, {5 << 30, "5.0 GiB"}, {1 << 62, "4.0 EiB"},
	} {
		if got := humanBytes(tc.n); got != tc.want {
			t.Errorf("humanBytes(%d) = %q, want %q", tc.n, got, tc.want)
		}
	}
}

func TestClusterProgressBar(t *testing.T) {
	for _, tc := range []struct {
		done, total int
		want        string
	}{
		{0, 4, "[----]"}, {1, 4, "[#---]"}, {4, 4, "[####]"}, {0, 0, "[####]"}, {9, 4, "[####]"}, {-1, 4, "[----]"},
	} {
		if got := progressBar(tc.done, tc.total, 4); got != tc.want {
			t.Errorf("progressBar(%d, %d) = %q, want %q", tc.done, tc.total, got, tc.want)
		}
	}
}

// testTransfers has n1 fetching (one partition done, one streaming, one
// failed, one queued), n2 handing off, and n3 unreachable.
func testTransfers(changing bool) node.Transfers {
	now := time.Date(2025, 1, 2, 3, 4, 5, 0, time.UTC)
	return node.Transfers{
		Changing: changing, Fingerprint: "1f2e",
		Nodes: []node.NodeTransfers{
			{Node: "n1", Fingerprint: "1f2e", Done: 1, Total: 4, Keys: 1200, Bytes: 3 << 20, Updated: now,
				Transfers: []handoff.Status{
					{Partition: 2, State: handoff.StateDone, Source: "n4", Keys: 1000, Bytes: 2 << 20, Started: now, Updated: now},
					{Partition: 5, State: handoff.StateStreaming, Source: "n4", Keys: 200, Bytes: 1 << 20, Skipped: 3, Started: now, Updated: now},
					{Partition: 8, State: handoff.StateFailed, Source: "n3", Error: "connection refused", Started: now, Updated: now},
					{Partition: 9, State: handoff.StateQueued},
				}},
			{Node: "n2", Fingerprint: "1f2e", Updated: now, Transfers: []handoff.Status{},
				Lost: node.LostStatus{Pending: []int{4, 6}, RowsDropped: 300, PartitionsFinished: 1, DiskBefore: 8 << 20, DiskAfter: 6 << 20}},
			{Node: "n3", Error: "node: transfers of n3: connection refused"},
		},
	}
}

// The transfers show each node's progress; a terminal also gets bars.
func TestClusterRenderTransfers(t *testing.T) {
	for _, tty := range []bool{false, true} {
		var b bytes.Buffer
		renderTransfers(&b, testTransfers(true), tty)
		out := b.String()
		for _, want := range []string{
			"change 1f2e in progress",
			"1/4 partitions (25%), 1200 keys, 3.0 MiB received",
			"partition 5 streaming from n4: 200 keys, 1.0 MiB, 3 skipped, 0 undecodable",
			"partition 8 failed from n3: 0 keys, 0 B; last error: connection refused",
			"  + 1 partition to fetch\n",
			"n2\n  nothing to fetch\n",
			"hand-off: 2 partitions pending, 1 finished, 300 rows dropped, disk 8.0 MiB -> 6.0 MiB",
			"n3  error: node: transfers of n3: connection refused",
		} {
			if !strings.Contains(out, want) {
				t.Errorf("tty=%v: transfers lack %q", tty, want)
			}
		}
		if strings.Contains(out, "partition 2 ") {
			t.Errorf("tty=%v: a done partition is listed", tty)
		}
		bar := strings.Contains(out, "[#######---")
		if bar != tty {
			t.Errorf("tty=%v: progress bar shown: %v", tty, bar)
		}
		if strings.Contains(out, "\x1b") {
			t.Errorf("tty=%v: ANSI codes in the transfers", tty)
		}
		if t.Failed() {
			t.Logf("printed:\n%s", out)
		}
	}
}

// --watch polls until the change is over, then prints a final line.
func TestClusterTransfersWatchStopsWhenDone(t *testing.T) {
	srv := newFakeNode(t, http.StatusOK, func(n int) any { return testTransfers(n < 3) })
	out, err := run(t, "cluster", "transfers", "--watch", "--interval", "5ms", "--local", "--node", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	reqs := srv.requests()
	if len(reqs) != 3 {
		t.Fatalf("%d polls, want 3", len(reqs))
	}
	for _, r := range reqs {
		if r.Method != http.MethodGet || r.Path != "/v1/cluster/transfers" || r.Query != "local=true" {
			t.Fatalf("polled %s %s?%s", r.Method, r.Path, r.Query)
		}
	}
	if !strings.HasSuffix(out, "\nno change in progress; 2 partitions still to hand off\n") {
		t.Fatalf("watch printed\n%s\nwithout the final line", out)
	}
	if strings.Count(out, "--- ") != 3 || strings.Contains(out, "\x1b") {
		t.Fatalf("watch to a non-terminal printed\n%s\nwant 3 plain frames", out)
	}
}

// --watch ends, without an error, when its context is cancelled.
func TestClusterTransfersWatchStopsOnCancel(t *testing.T) {
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	srv := newFakeNode(t, http.StatusOK, func(n int) any {
		if n == 3 {
			cancel()
		}
		return testTransfers(true)
	})
	done := make(chan error, 1)
	go func() {
		_, err := runCtx(t, ctx, "cluster", "transfers", "--watch", "--interval", "5ms", "--node", srv.URL)
		done <- err
	}()
	select {
	case err := <-done:
		if err != nil {
			t.Fatalf("cancelled watch: %v", err)
		}
	case <-time.After(10 * time.Second):
		t.Fatal("watch goes on after its context was cancelled")
	}
	if n := len(srv.requests()); n < 3 || n > 4 {
		t.Fatalf("%d polls, want 3 (or 4 if one raced the cancel)", n)
	}
}

// --watch --json prints one compact line per poll; a terminal watch
// clears the screen before each frame.
func TestClusterShowTransfersFrames(t *testing.T) {
	polls := []node.Transfers{testTransfers(true), testTransfers(false)}
	for _, tc := range []struct {
		view  transfersView
		check func(t *testing.T, out string)
	}{
		{transfersView{raw: true, watch: true, interval: time.Millisecond}, func(t *testing.T, out string) {
			lines := strings.Split(strings.TrimSuffix(out, "\n"), "\n")
			if len(lines) != 2 {
				t.Fatalf("printed %d lines, want 2:\n%s", len(lines), out)
			}
			for i, l := range lines {
				var got node.Transfers
				if err := json.Unmarshal([]byte(l), &got); err != nil || got.Changing != polls[i].Changing || len(got.Nodes) != 3 {
					t.Fatalf("line %d = %s (%v)", i, l, err)
				}
			}
		}},
		{transfersView{tty: true, watch: true, interval: time.Millisecond}, func(t *testing.T, out string) {
			if strings.Count(out, clearScreen) != 2 || !strings.Contains(out, "[#######") {
				t.Fatalf("terminal watch printed %q", out)
			}
		}},
		{transfersView{tty: true, interval: time.Millisecond}, func(t *testing.T, out string) {
			if strings.Contains(out, "\x1b") || strings.Contains(out, "no change in progress") {
				t.Fatalf("a single look printed %q", out)
			}
		}},
	} {
		i := 0
		fetch := func(context.Context) ([]byte, error) {
			b, err := json.Marshal(polls[min(i, len(polls)-1)])
			i++
			return b, err
		}
		var b bytes.Buffer
		if err := showTransfers(context.Background(), &b, fetch, tc.view); err != nil {
			t.Fatal(err)
		}
		tc.check(t, b.String())
	}
}

func TestClusterIsTerminal(t *testing.T) {
	if isTerminal(&bytes.Buffer{}) {
		t.Fatal("a buffer is a terminal")
	}
	r, w, err := os.Pipe()
	if err != nil {
		t.Fatal(err)
	}
	defer r.Close()
	defer w.Close()
	if isTerminal(w) {
		t.Fatal("a pipe is a terminal")
	}
}

// cluster status is the status command.
func TestClusterStatusIsStatus(t *testing.T) {
	srv := newFakeNode(t, http.StatusOK, always(node.ClusterStatus{Node: "n1", Cluster: "c", Partitions: 64}))
	out, err := run(t, "cluster", "status", "--node", srv.URL)
	if err != nil {
		t.Fatal(err)
	}
	if r := srv.requests(); len(r) != 1 || r[0].Method != http.MethodGet || r[0].Path != "/v1/cluster" {
		t.Fatalf("sent %+v, want GET /v1/cluster", r)
	}
	if !strings.Contains(out, "cluster c, seen from n1, 64 partitions") {
		t.Fatalf("cluster status printed %q", out)
	}
}
