package main

import (
	"testing"

	"github.com/spf13/cobra"
)

func TestClientURL(t *testing.T) {
	for _, tc := range []struct {
		name string
		read bool
		args []string
		want string
	}{
		{"defaults", true, nil, "http://h:1/v1/kv/b/k"},
		{"read params", true, []string{"-r", "quorum", "-n", "2", "--timeout", "250ms"}, "http://h:1/v1/kv/b/k?n=2&r=quorum&timeout=250ms"},
		{"strict read", true, []string{"--sloppy=false"}, "http://h:1/v1/kv/b/k?sloppy=false"},
		{"strict write", false, []string{"-w", "all", "--sloppy=false"}, "http://h:1/v1/kv/b/k?sloppy=false&w=all"},
	} {
		t.Run(tc.name, func(t *testing.T) {
			var f clientFlags
			cmd := &cobra.Command{Use: "x"}
			f.register(cmd, tc.read)
			if err := cmd.Flags().Parse(append([]string{"--node", "http://h:1/"}, tc.args...)); err != nil {
				t.Fatal(err)
			}
			if got := f.url("b", "k"); got != tc.want {
				t.Fatalf("url = %s, want %s", got, tc.want)
			}
		})
	}
}
