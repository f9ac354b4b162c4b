package node

import (
	"bufio"
	"crypto/sha256"
	"crypto/subtle"
	"errors"
	"fmt"
	"io"
	"os"
	"strings"
)

// Role is what a bearer token may do. Each role includes the ones below
// it: write may read, admin may read and write.
type Role int

// The roles, weakest first.
const (
	// RoleNone is no role: the zero value, never granted.
	RoleNone Role = iota
	// RoleRead reads keys, bucket properties, the cluster's status and
	// plan, and /metrics.
	RoleRead
	// RoleWrite also writes and deletes keys.
	RoleWrite
	// RoleAdmin also changes bucket properties and membership, runs
	// anti-entropy, rotates gossip keys and reads pprof.
	RoleAdmin
)

var roleNames = map[Role]string{RoleRead: "read", RoleWrite: "write", RoleAdmin: "admin"}

func (r Role) String() string {
	if s, ok := roleNames[r]; ok {
		return s
	}
	return "none"
}

// ParseRole parses read, write or admin. The error does not repeat s: in
// a token file it may be a token written in the wrong column.
func ParseRole(s string) (Role, error) {
	for r, name := range roleNames {
		if name == s {
			return r, nil
		}
	}
	return RoleNone, fmt.Errorf("%w (want read, write or admin)", ErrUnknownRole)
}

// MinTokenLen is the shortest token a token file may hold.
const MinTokenLen = 16

// Errors of token files. A TokenFileError wraps one of them.
var (
	// ErrUnknownRole is a role other than read, write or admin.
	ErrUnknownRole = errors.New("node: unknown role")
	// ErrShortToken is a token under MinTokenLen characters.
	ErrShortToken = errors.New("node: token too short")
	// ErrDuplicateToken is a token given twice.
	ErrDuplicateToken = errors.New("node: duplicate token")
	// ErrTokenLine is a line that is not ROLE TOKEN [NAME].
	ErrTokenLine = errors.New("node: malformed token line")
	// ErrNoTokens is a token file with no token in it.
	ErrNoTokens = errors.New("node: no tokens")
)

// TokenFileError is a bad token file line. It names the line, never the
// token.
type TokenFileError struct {
	Line int
	Err  error
}

func (e *TokenFileError) Error() string {
	if e.Line == 0 {
		return "token file: " + e.Err.Error()
	}
	return fmt.Sprintf("token file line %d: %v", e.Line, e.Err)
}

func (e *TokenFileError) Unwrap() error { return e.Err }

// Token is a configured bearer token, known by the SHA-256 of its
// secret; Name (the file's third column, else "line N") is what logs
// show.
type Token struct {
	Role Role
	Name string
	sum  [sha256.Size]byte
}

// Tokens is a parsed token file. It is immutable and safe for concurrent
// use.
type Tokens struct {
	list []Token
}

// ParseTokens reads a token file: one token per line, "ROLE TOKEN [NAME]"
// separated by spaces or tabs, ROLE one of read, write or admin. Blank
// lines and lines starting with # are ignored. Tokens are at least
// MinTokenLen characters and unique. Errors name the line, never the
// token.
func ParseTokens(r io.Reader) (*Tokens, error) {
	ts := &Tokens{}
	seen := map[[sha256.Size]byte]int{}
	sc := bufio.NewScanner(r)
	sc.Buffer(make([]byte, 0, 4096), 64<<10)
	line := 0
	for sc.Scan() {
		line++
		text := strings.TrimSpace(sc.Text())
		if text == "" || strings.HasPrefix(text, "#") {
			continue
		}
		fields := strings.Fields(text)
		if len(fields) < 2 || len(fields) > 3 {
			return nil, &TokenFileError{Line: line, Err: fmt.Errorf("%w: want ROLE TOKEN [NAME], got %d fields", ErrTokenLine, len(fields))}
		}
		role, err := ParseRole(fields[0])
		if err != nil {
			return nil, &TokenFileError{Line: line, Err: err}
		}
		if len(fields[1]) < MinTokenLen {
			return nil, &TokenFileError{Line: line, Err: fmt.Errorf("%w: under %d characters", ErrShortToken, MinTokenLen)}
		}
		t := Token{Role: role, Name: fmt.Sprintf("line %d", line), sum: sha256.Sum256([]byte(fields[1]))}
		if len(fields) == 3 {
			t.Name = fields[2]
		}
		if first, dup := seen[t.sum]; dup {
			return nil, &TokenFileError{Line: line, Err: fmt.Errorf("%w: the token of line %d", ErrDuplicateToken, first)}
		}
		seen[t.sum] = line
		ts.list = append(ts.list, t)
	}
	if err := sc.Err(); err != nil {
		// Say which line it failed after, not what the line held.
		return nil, &TokenFileError{Line: line + 1, Err: fmt.Errorf("%w: %v", ErrTokenLine, err)}
	}
	if len(ts.list) == 0 {
		return nil, &TokenFileError{Err: ErrNoTokens}
	}
	return ts, nil
}

// LoadTokens reads and parses the token file at path.
func LoadTokens(path string) (*Tokens, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("token file: %w", err)
	}
	defer f.Close()
	ts, err := ParseTokens(f)
	if err != nil {
		return nil, fmt.Errorf("%s: %w", path, err)
	}
	return ts, nil
}

// Len returns the number of tokens.
func (ts *Tokens) Len() int { return len(ts.list) }

// Lookup returns the token whose secret is presented. It compares the
// SHA-256 of presented with that of every token, in constant time and
// without stopping at a match, so the time taken says nothing about which
// token, or how much of one, matched.
func (ts *Tokens) Lookup(presented string) (Token, bool) {
	sum := sha256.Sum256([]byte(presented))
	found := -1
	for i := range ts.list {
		eq := subtle.ConstantTimeCompare(sum[:], ts.list[i].sum[:])
		found = subtle.ConstantTimeSelect(eq, i, found)
	}
	if found < 0 {
		return Token{}, false
	}
	return ts.list[found], true
}
