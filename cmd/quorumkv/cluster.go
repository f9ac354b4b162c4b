package main

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"

	"github.com/spf13/cobra"
	"golang.org/x/term"

	"github.com/quorumkv/quorumkv/handoff"
	"github.com/quorumkv/quorumkv/node"
)

// The `quorumkv cluster ...` commands: plan, commit and clear membership
// changes, ask nodes to leave, remove or replace them, and follow the
// partition transfers. They call the node's administration API
// (node/admin.go).

func newClusterCmd() *cobra.Command {
	cmd := &cobra.Command{
		Use:   "cluster",
		Short: "Plan, commit and follow membership changes",
		Args:  cobra.NoArgs, // an unknown subcommand is an error, not the help
		RunE: func(cmd *cobra.Command, _ []string) error {
			return cmd.Help()
		},
	}
	status := newStatusCmd()
	status.Short += " (same as quorumkv status)"
	cmd.AddCommand(
		newPlanCmd("plan", "Show the change in progress, the staged intents and what committing them would move",
			cobra.NoArgs, http.MethodGet, nil),
		newPlanCmd("commit", "Commit the staged intents: the change they make starts",
			cobra.NoArgs, http.MethodPost, nil),
		newPlanCmd("clear", "Drop the staged intents",
			cobra.NoArgs, http.MethodPost, nil),
		newPlanCmd("leave ID", "Ask a node to leave: it hands its partitions on, then goes",
			cobra.ExactArgs(1), http.MethodPost, oneNode),
		newPlanCmd("remove ID", "Remove a node that is gone for good; the others rebuild its partitions",
			cobra.ExactArgs(1), http.MethodPost, oneNode),
		newPlanCmd("replace OLD NEW", "Give a node that is gone for good a new node's place (NEW must be started with --stage)",
			cobra.ExactArgs(2), http.MethodPost, func(args []string) (node.IntentRequest, error) {
				if args[0] == args[1] {
					return node.IntentRequest{}, fmt.Errorf("replace %s with itself: name two different nodes", args[0])
				}
				return node.IntentRequest{Old: args[0], New: args[1]}, nil
			}),
		newTransfersCmd(),
		status,
	)
	return cmd
}

// oneNode makes the body of leave and remove.
func oneNode(args []string) (node.IntentRequest, error) {
	return node.IntentRequest{Node: args[0]}, nil
}

// newPlanCmd returns a command that calls /v1/cluster/{name} and prints
// the plan it answers with. A non-nil intent makes the request body of
// the command's arguments, and gives the command --stage and --force.
func newPlanCmd(use, short string, args cobra.PositionalArgs, method string, intent func([]string) (node.IntentRequest, error)) *cobra.Command {
	var f clientFlags
	var raw, stage, force bool
	name, _, _ := strings.Cut(use, " ")
	cmd := &cobra.Command{
		Use:   use,
		Short: short,
		Args:  args,
		RunE: func(cmd *cobra.Command, args []string) error {
			for _, a := range args {
				if strings.TrimSpace(a) == "" {
					return errors.New("a node ID must not be empty")
				}
			}
			var in any
			if intent != nil {
				req, err := intent(args)
				if err != nil {
					return err
				}
				req.Stage, req.Force = stage, force
				in = req
			}
			body, err := f.admin(cmd.Context(), method, "/v1/cluster/"+name, in)
			if err != nil {
				return err
			}
			if raw {
				_, err := cmd.OutOrStdout().Write(body)
				return err
			}
			var p node.Plan
			if err := json.Unmarshal(body, &p); err != nil {
				return fmt.Errorf("decode the plan: %w", err)
			}
			renderPlan(cmd.OutOrStdout(), p)
			return nil
		},
	}
	f.registerAdmin(cmd)
	cmd.Flags().BoolVar(&raw, "json", false, "print the plan as the node's JSON")
	if intent != nil {
		cmd.Flags().BoolVar(&stage, "stage", false, "stage the intent: it waits for 'quorumkv cluster commit'")
		cmd.Flags().BoolVar(&force, "force", false, "go ahead although the node refuses (too few members left, or the node is up)")
	}
	return cmd
}

// renderPlan prints p for a reader.
func renderPlan(w io.Writer, p node.Plan) {
	fmt.Fprintf(w, "epoch %d\n\n", p.Epoch)
	switch {
	case p.Current.Changing:
		fmt.Fprintln(w, "change in progress:")
		renderChange(w, p.Current)
	case p.Current.Error != "":
		fmt.Fprintln(w, "no change can start: the intents do not make a ring")
		renderChange(w, p.Current)
	default:
		fmt.Fprintf(w, "no change in progress; members: %s\n", idList(p.Current.Committed))
	}
	if len(p.Staged) == 0 {
		fmt.Fprintln(w, "\nnothing staged")
		return
	}
	fmt.Fprintln(w, "\nstaged, to carry out with 'quorumkv cluster commit' (or drop with 'quorumkv cluster clear'):")
	for _, s := range p.Staged {
		fmt.Fprintf(w, "  %-12s %s", s.Node, s.Intent)
		if s.Replaces != "" {
			fmt.Fprintf(w, " (replaces %s)", s.Replaces)
		}
		fmt.Fprintln(w)
	}
	if p.AfterCommit != nil {
		fmt.Fprintln(w, "\ncommitting would make this change:")
		renderChange(w, *p.AfterCommit)
	}
}

// renderChange prints one change, indented, with its moves and totals.
func renderChange(w io.Writer, c node.PlanChange) {
	fmt.Fprintf(w, "  members      %s -> %s\n", idList(c.Committed), idList(c.Target))
	for _, l := range []struct {
		label string
		ids   []string
	}{
		{"joining", c.Joining}, {"leaving", c.Leaving}, {"removing", c.Removing},
		{"waiting to see the change:", c.WaitingSeen}, {"waiting to sync:", c.WaitingSync},
	} {
		if len(l.ids) > 0 {
			fmt.Fprintf(w, "  %-12s %s\n", l.label, idList(l.ids))
		}
	}
	if c.Fingerprint != "" {
		fmt.Fprintf(w, "  fingerprint  %s\n", c.Fingerprint)
	}
	if c.Error != "" {
		fmt.Fprintf(w, "  error: %s\n", c.Error)
	}
	if !c.Changing {
		fmt.Fprintln(w, "  no partition moves")
		return
	}
	// The columns: partition, sources, "->", destination, keys, bytes.
	rows := [][]string{{"PARTITION", "FROM", "", "TO", "KEYS", "BYTES"}}
	unknown := 0
	for _, m := range c.Moves {
		keys := "?"
		if m.Keys >= 0 {
			keys = fmt.Sprint(m.Keys)
		}
		if m.Keys < 0 || m.Bytes < 0 {
			unknown++
		}
		from := strings.Join(m.From, ",")
		if from == "" {
			from = "-"
		}
		rows = append(rows, []string{fmt.Sprint(m.Partition), from, "->", m.To, keys, humanBytes(m.Bytes)})
	}
	width := make([]int, len(rows[0]))
	for _, r := range rows {
		for i, cell := range r {
			width[i] = max(width[i], len(cell))
		}
	}
	fmt.Fprintln(w)
	for _, r := range rows {
		line := fmt.Sprintf("  %*s  %-*s %2s %-*s  %*s  %*s", width[0], r[0], width[1], r[1], r[2], width[3], r[3], width[4], r[4], width[5], r[5])
		fmt.Fprintln(w, strings.TrimRight(line, " "))
	}
	fmt.Fprintf(w, "\n  total: %s in %s, %s, %s", plural(c.Partitions, "partition"), plural(len(c.Moves), "move"), plural(c.Keys, "key"), humanBytes(c.Bytes))
	if unknown > 0 {
		fmt.Fprintf(w, "; the size of %s is unknown (the source did not answer)", plural(unknown, "move"))
	}
	fmt.Fprintln(w)
}

// idList joins node IDs for a reader.
func idList(ids []string) string {
	if len(ids) == 0 {
		return "(none)"
	}
	return strings.Join(ids, " ")
}

// plural renders n things.
func plural[N int | int64](n N, thing string) string {
	if n == 1 {
		return "1 " + thing
	}
	return fmt.Sprintf("%d %ss", n, thing)
}

// humanBytes renders n bytes with a binary unit, such as 12.3 MiB; a
// negative n is unknown.
func humanBytes(n int64) string {
	if n < 0 {
		return "?"
	}
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	unit := -1
	for v >= 1024 && unit < 5 {
		v /= 1024
		unit++
	}
	return fmt.Sprintf("%.1f %ciB", v, "KMGTPE"[unit])
}

func newTransfersCmd() *cobra.Command {
	var f clientFlags
	var raw, watch, local bool
	var interval time.Duration
	cmd := &cobra.Command{
		Use:   "transfers",
		Short: "Show each node's partition transfers and hand-offs",
		Args:  cobra.NoArgs,
		RunE: func(cmd *cobra.Command, _ []string) error {
			if interval <= 0 {
				return fmt.Errorf("--interval must be positive, not %v", interval)
			}
			path := "/v1/cluster/transfers"
			if local {
				path += "?local=true"
			}
			ctx, stop := signal.NotifyContext(cmd.Context(), os.Interrupt, syscall.SIGTERM)
			defer stop()
			fetch := func(ctx context.Context) ([]byte, error) {
				return f.admin(ctx, http.MethodGet, path, nil)
			}
			out := cmd.OutOrStdout()
			return showTransfers(ctx, out, fetch, transfersView{
				tty: isTerminal(out), raw: raw, watch: watch, interval: interval,
			})
		},
	}
	f.registerAdmin(cmd)
	fl := cmd.Flags()
	fl.BoolVar(&raw, "json", false, "print the node's JSON (with --watch, one line per poll)")
	fl.BoolVar(&watch, "watch", false, "poll until no change is in progress (or an interrupt)")
	fl.DurationVar(&interval, "interval", time.Second, "time between polls with --watch")
	fl.BoolVar(&local, "local", false, "only the transfers of the node asked")
	return cmd
}

// transfersView is how showTransfers prints.
type transfersView struct {
	tty, raw, watch bool
	interval        time.Duration
}

// clearScreen moves a terminal's cursor home and clears the screen.
const clearScreen = "\x1b[H\x1b[2J"

// showTransfers fetches the transfers and prints them; with watch, again
// every interval until no change is in progress or ctx is done. An
// interrupted watch is not an error.
func showTransfers(ctx context.Context, w io.Writer, fetch func(context.Context) ([]byte, error), v transfersView) error {
	for {
		body, err := fetch(ctx)
		if err != nil {
			if v.watch && ctx.Err() != nil {
				return nil
			}
			return err
		}
		if v.raw && !v.watch {
			_, err := w.Write(body)
			return err
		}
		var tr node.Transfers
		if err := json.Unmarshal(body, &tr); err != nil {
			return fmt.Errorf("decode the transfers: %w", err)
		}
		if v.raw {
			var line bytes.Buffer
			if err := json.Compact(&line, body); err != nil {
				return err
			}
			line.WriteByte('\n')
			if _, err := w.Write(line.Bytes()); err != nil {
				return err
			}
		} else {
			switch {
			case v.watch && v.tty:
				fmt.Fprint(w, clearScreen)
			case v.watch:
				fmt.Fprintf(w, "--- %s\n", time.Now().Format(time.TimeOnly))
			}
			renderTransfers(w, tr, v.tty)
		}
		if !v.watch {
			return nil
		}
		if !tr.Changing {
			if !v.raw {
				fmt.Fprintln(w, finalLine(tr))
			}
			return nil
		}
		t := time.NewTimer(v.interval)
		select {
		case <-ctx.Done():
			t.Stop()
			return nil
		case <-t.C:
		}
	}
}

// finalLine is what a watch prints when the change is over.
func finalLine(tr node.Transfers) string {
	pending := 0
	for _, n := range tr.Nodes {
		pending += len(n.Lost.Pending)
	}
	if pending > 0 {
		return fmt.Sprintf("no change in progress; %s still to hand off", plural(pending, "partition"))
	}
	return "no change in progress"
}

// maxListed bounds the transfers listed under one node.
const maxListed = 10

// renderTransfers prints each node's progress; tty adds progress bars.
func renderTransfers(w io.Writer, tr node.Transfers, tty bool) {
	if tr.Changing {
		fmt.Fprintf(w, "change %s in progress\n", tr.Fingerprint)
	} else {
		fmt.Fprintln(w, "no change in progress")
	}
	for _, n := range tr.Nodes {
		fmt.Fprintf(w, "\n%s", n.Node)
		if n.Error != "" {
			fmt.Fprintf(w, "  error: %s\n", n.Error)
			continue
		}
		if n.Fingerprint != "" && n.Fingerprint != tr.Fingerprint {
			fmt.Fprintf(w, "  (at change %s)", n.Fingerprint)
		}
		fmt.Fprintln(w)
		if n.Total == 0 {
			fmt.Fprintln(w, "  nothing to fetch")
		} else {
			fmt.Fprint(w, "  ")
			if tty {
				fmt.Fprint(w, progressBar(n.Done, n.Total, 30), " ")
			}
			fmt.Fprintf(w, "%d/%d partitions (%d%%), %s, %s received\n", n.Done, n.Total, 100*n.Done/n.Total, plural(n.Keys, "key"), humanBytes(n.Bytes))
		}
		listed, more := 0, 0
		for _, s := range n.Transfers {
			switch {
			case s.State == handoff.StateDone:
			case s.State == handoff.StateQueued && s.Error == "", listed == maxListed:
				more++
			default:
				listed++
				fmt.Fprintf(w, "  partition %d %s", s.Partition, s.State)
				if s.Source != "" {
					fmt.Fprintf(w, " from %s", s.Source)
				}
				fmt.Fprintf(w, ": %d keys, %s", s.Keys, humanBytes(s.Bytes))
				if s.Skipped > 0 || s.Undecodable > 0 {
					fmt.Fprintf(w, ", %d skipped, %d undecodable", s.Skipped, s.Undecodable)
				}
				if s.Error != "" {
					fmt.Fprintf(w, "; last error: %s", s.Error)
				}
				fmt.Fprintln(w)
			}
		}
		if more > 0 {
			fmt.Fprintf(w, "  + %s to fetch\n", plural(more, "partition"))
		}
		l := n.Lost
		if len(l.Pending) > 0 || l.PartitionsFinished > 0 {
			fmt.Fprintf(w, "  hand-off: %s pending, %d finished, %d rows dropped", plural(len(l.Pending), "partition"), l.PartitionsFinished, l.RowsDropped)
			if l.DiskBefore > 0 || l.DiskAfter > 0 {
				fmt.Fprintf(w, ", disk %s -> %s", humanBytes(int64(l.DiskBefore)), humanBytes(int64(l.DiskAfter)))
			}
			fmt.Fprintln(w)
		}
	}
}

// progressBar draws done of total as a bar of width cells.
func progressBar(done, total, width int) string {
	filled := width
	if total > 0 {
		filled = min(width, max(0, width*done/total))
	}
	return "[" + strings.Repeat("#", filled) + strings.Repeat("-", width-filled) + "]"
}

// isTerminal reports whether w is a terminal.
func isTerminal(w io.Writer) bool {
	f, ok := w.(*os.File)
	return ok && term.IsTerminal(int(f.Fd()))
}
