package buildinfo

import (
	"runtime/debug"
	"strings"
	"testing"
)

func TestFromBuildInfo(t *testing.T) {
	for _, tc := range []struct {
		name string
		bi   *debug.BuildInfo
		ok   bool
		want Info
	}{
		{"none", nil, false, Info{"unknown", "unknown", "unknown", "unknown"}},
		{"local build", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "(devel)"}}, true,
			Info{"(devel)", "unknown", "unknown", "go1.26.8"}},
		{"from git, modified", &debug.BuildInfo{GoVersion: "go1.26.8", Main: debug.Module{Version: "v0.3.0"}, Settings: []debug.BuildSetting{
			{Key: "vcs.revision", Value: "abc123"}, {Key: "vcs.time", Value: "2026-12-03T18:00:00Z"}, {Key: "vcs.modified", Value: "true"}}}, true,
			Info{"v0.3.0", "abc123-dirty", "2026-12-03T18:00:00Z", "go1.26.8"}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			if got := fromBuildInfo(tc.bi, tc.ok); got != tc.want {
				t.Fatalf("got %+v, want %+v", got, tc.want)
			}
		})
	}
}

// The test binary has build information: the Go version at least.
func TestGet(t *testing.T) {
	i := Get()
	if !strings.HasPrefix(i.GoVersion, "go") || !strings.HasPrefix(i.String(), "quorumkv ") {
		t.Fatalf("Get() = %+v", i)
	}
}
