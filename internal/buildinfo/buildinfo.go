// Package buildinfo reports what binary is running: the module version,
// the commit it was built from and the Go version, as the Go toolchain
// recorded them (runtime/debug.ReadBuildInfo).
package buildinfo

import (
	"fmt"
	"runtime/debug"
	"sync"
)

// Info describes the running binary. Unknown fields read "unknown".
type Info struct {
	Version   string `json:"version"`    // the main module's version, "(devel)" for a local build
	Commit    string `json:"commit"`     // the VCS revision, with "-dirty" when the tree was modified
	BuildTime string `json:"build_time"` // the commit's time, as VCS recorded it
	GoVersion string `json:"go_version"`
}

// String is one line for --version.
func (i Info) String() string {
	return fmt.Sprintf("quorumkv %s (commit %s, built %s, %s)", i.Version, i.Commit, i.BuildTime, i.GoVersion)
}

var (
	once sync.Once
	info Info
)

// Get returns the running binary's build information.
func Get() Info {
	once.Do(func() { info = fromBuildInfo(debug.ReadBuildInfo()) })
	return info
}

func fromBuildInfo(bi *debug.BuildInfo, ok bool) Info {
	out := Info{Version: "unknown", Commit: "unknown", BuildTime: "unknown", GoVersion: "unknown"}
	if !ok || bi == nil {
		return out
	}
	if bi.Main.Version != "" {
		out.Version = bi.Main.Version
	}
	if bi.GoVersion != "" {
		out.GoVersion = bi.GoVersion
	}
	dirty := false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			out.Commit = s.Value
		case "vcs.time":
			out.BuildTime = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if dirty && out.Commit != "unknown" {
		out.Commit += "-dirty"
	}
	return out
}
