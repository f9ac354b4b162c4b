//go:build !linux

package main

import (
	"context"
	"errors"
	"net"
	"os/exec"
	"testing"
)

// netLab needs Linux network namespaces; elsewhere the partition soak
// skips.
type netLab struct{}

func netLabSupported() error {
	return errors.New("network partitions need Linux network namespaces")
}

func newNetLab(t *testing.T, n int) *netLab {
	t.Skip(netLabSupported())
	return nil
}

func (l *netLab) ns(i int) string        { panic("netLab: not on Linux") }
func (l *netLab) addr(i int) string      { panic("netLab: not on Linux") }
func (l *netLab) cut(from, to int) error { panic("netLab: not on Linux") }
func (l *netLab) heal() error            { panic("netLab: not on Linux") }
func (l *netLab) dial(context.Context, string, string) (net.Conn, error) {
	panic("netLab: not on Linux")
}

func setDeathSignal(cmd *exec.Cmd) {}
