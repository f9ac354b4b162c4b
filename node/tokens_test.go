package node_test

import (
	"errors"
	"os"
	"path/filepath"
	"strings"
	"testing"

	"github.com/quorumkv/quorumkv/node"
)

const (
	readSecret  = "read-secret-0123456789"
	writeSecret = "write-secret-0123456789"
	adminSecret = "admin-secret-0123456789"
)

func TestParseTokens(t *testing.T) {
	for _, tc := range []struct {
		name  string
		file  string
		err   error
		line  int
		roles map[string]node.Role // secret -> role
		names map[string]string    // secret -> name
	}{
		{name: "roles, names, comments and blanks",
			file:  "# tokens\n\nread " + readSecret + " dashboards\n  write\t" + writeSecret + "\n# admin below\nadmin " + adminSecret + " ops \n",
			roles: map[string]node.Role{readSecret: node.RoleRead, writeSecret: node.RoleWrite, adminSecret: node.RoleAdmin},
			names: map[string]string{readSecret: "dashboards", writeSecret: "line 4", adminSecret: "ops"}},
		{name: "CRLF line ends", file: "read " + readSecret + " r\r\nadmin " + adminSecret + "\r\n",
			roles: map[string]node.Role{readSecret: node.RoleRead, adminSecret: node.RoleAdmin},
			names: map[string]string{readSecret: "r", adminSecret: "line 2"}},
		{name: "unknown role", file: "read " + readSecret + "\nroot " + adminSecret + "\n", err: node.ErrUnknownRole, line: 2},
		{name: "token in the role column", file: adminSecret + " admin\n", err: node.ErrUnknownRole, line: 1},
		{name: "role is case sensitive", file: "Admin " + adminSecret + "\n", err: node.ErrUnknownRole, line: 1},
		{name: "short token", file: "\n\nwrite 0123456789abcdef\nwrite short-token-15c\n", err: node.ErrShortToken, line: 4},
		{name: "duplicate token", file: "read " + readSecret + "\nadmin " + readSecret + "\n", err: node.ErrDuplicateToken, line: 2},
		{name: "token alone", file: readSecret + "\n", err: node.ErrTokenLine, line: 1},
		{name: "too many fields", file: "read " + readSecret + " a name\n", err: node.ErrTokenLine, line: 1},
		{name: "only comments", file: "# nothing\n\n", err: node.ErrNoTokens},
		{name: "empty", file: "", err: node.ErrNoTokens},
		{name: "line too long", file: "read " + strings.Repeat("x", 70<<10) + "\n", err: node.ErrTokenLine, line: 1},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ts, err := node.ParseTokens(strings.NewReader(tc.file))
			if tc.err != nil {
				var fe *node.TokenFileError
				if !errors.Is(err, tc.err) || !errors.As(err, &fe) || fe.Line != tc.line {
					t.Fatalf("err = %v, want %v at line %d", err, tc.err, tc.line)
				}
				for _, s := range []string{readSecret, adminSecret, "short-token-15c", "0123456789abcde"} {
					if strings.Contains(err.Error(), s) {
						t.Fatalf("the error %q shows a token", err)
					}
				}
				return
			}
			if err != nil {
				t.Fatal(err)
			}
			if ts.Len() != len(tc.roles) {
				t.Fatalf("%d tokens, want %d", ts.Len(), len(tc.roles))
			}
			for secret, role := range tc.roles {
				tok, ok := ts.Lookup(secret)
				if !ok || tok.Role != role || tok.Name != tc.names[secret] {
					t.Fatalf("Lookup(%s) = %+v %v, want role %v name %q", tc.names[secret], tok, ok, role, tc.names[secret])
				}
			}
			for _, wrong := range []string{"", "read", readSecret[:len(readSecret)-1], readSecret + "x", strings.ToUpper(adminSecret)} {
				if tok, ok := ts.Lookup(wrong); ok {
					t.Fatalf("Lookup(%q) found %+v", wrong, tok)
				}
			}
		})
	}
}

func TestLoadTokensNamesTheFile(t *testing.T) {
	path := filepath.Join(t.TempDir(), "tokens")
	if err := os.WriteFile(path, []byte("read "+readSecret+"\nwrite tooshort\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	_, err := node.LoadTokens(path)
	if !errors.Is(err, node.ErrShortToken) || !strings.Contains(err.Error(), path+": token file line 2") {
		t.Fatalf("err = %v", err)
	}
	if _, err := node.LoadTokens(filepath.Join(t.TempDir(), "missing")); !errors.Is(err, os.ErrNotExist) {
		t.Fatalf("missing file: %v", err)
	}
}

func TestParseRole(t *testing.T) {
	for _, r := range []node.Role{node.RoleRead, node.RoleWrite, node.RoleAdmin} {
		got, err := node.ParseRole(r.String())
		if err != nil || got != r {
			t.Fatalf("ParseRole(%q) = %v, %v", r.String(), got, err)
		}
	}
	if !(node.RoleRead < node.RoleWrite && node.RoleWrite < node.RoleAdmin) {
		t.Fatal("roles are not ordered read < write < admin")
	}
	if _, err := node.ParseRole("none"); !errors.Is(err, node.ErrUnknownRole) {
		t.Fatalf("ParseRole(none): %v", err)
	}
}

// The parser never panics, never shows a token of the file in an error,
// and every token it accepts is found again, with its role, and is long
// enough.
func FuzzParseTokens(f *testing.F) {
	f.Add("read " + readSecret + " r\nwrite " + writeSecret + "\n# c\n\nadmin " + adminSecret + " ops\n")
	f.Add("admin 0123456789abcdef\r\n")
	f.Add("read " + readSecret + "\nread " + readSecret + "\n")
	f.Add("write short\n")
	f.Add("guest " + readSecret + "\n")
	f.Add("read\t\t" + readSecret + "\tname\textra\n")
	f.Add("#\n \n\t\n")
	f.Fuzz(func(t *testing.T, file string) {
		ts, err := node.ParseTokens(strings.NewReader(file))
		if err != nil {
			var fe *node.TokenFileError
			if !errors.As(err, &fe) {
				t.Fatalf("error %v is not a TokenFileError", err)
			}
			for _, line := range strings.Split(file, "\n") {
				fields := strings.Fields(line)
				if len(fields) >= 2 && len(fields[1]) >= node.MinTokenLen && strings.Contains(err.Error(), fields[1]) {
					t.Fatalf("error %q shows the token %q", err, fields[1])
				}
			}
			return
		}
		n := 0
		for _, line := range strings.Split(file, "\n") {
			fields := strings.Fields(line)
			if len(fields) == 0 || strings.HasPrefix(fields[0], "#") {
				continue
			}
			n++
			role, rerr := node.ParseRole(fields[0])
			tok, ok := ts.Lookup(fields[1])
			if rerr != nil || !ok || tok.Role != role || len(fields[1]) < node.MinTokenLen {
				t.Fatalf("line %q: role %v (%v), found %+v %v", line, role, rerr, tok, ok)
			}
		}
		if n != ts.Len() {
			t.Fatalf("%d token lines, %d tokens", n, ts.Len())
		}
	})
}
