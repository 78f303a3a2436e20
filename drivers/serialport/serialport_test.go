package serialport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"slices"
	"strings"
	"syscall"
	"testing"

	"github.com/creack/pty"
)

func TestExplain(t *testing.T) {
	check := func(err error, want string) {
		t.Helper()
		got := Explain("/dev/ttyUSB0", err)
		if !errors.Is(got, err) || !strings.Contains(got.Error(), want) {
			t.Errorf("Explain(%v) = %v, want it to wrap the cause and say %q", err, got, want)
		}
	}
	check(fs.ErrPermission, "dialout")
	check(fs.ErrNotExist, "envgate ports")
	check(syscall.ENOTTY, "not a serial port")
	check(syscall.EBUSY, "fuser -v /dev/ttyUSB0") // nobody holds this path here
	if err := ExplainLoss(fmt.Errorf("read: %w", syscall.EIO)); !errors.Is(err, syscall.EIO) || !strings.Contains(err.Error(), "disconnected") {
		t.Errorf("ExplainLoss(EIO) = %v, want a hint about the cable", err)
	}
}

func TestWhoHolds(t *testing.T) {
	ptmx, tty, err := pty.Open()
	if err != nil {
		if os.Getenv("CI") == "true" {
			t.Fatalf("no pty on this machine: %v", err)
		}
		t.Skipf("no pty on this machine: %v", err)
	}
	defer ptmx.Close()
	defer tty.Close()
	comm, _ := os.ReadFile("/proc/self/comm")
	want := fmt.Sprintf("pid %d (%s)", os.Getpid(), strings.TrimSpace(string(comm)))
	if got := WhoHolds(tty.Name()); !slices.Contains(got, want) {
		t.Errorf("WhoHolds(%s) = %q, want it to include %q", tty.Name(), got, want)
	}
	// Root ignores TIOCEXCL, so a real EBUSY cannot be provoked here; check the message.
	err = Explain(tty.Name(), syscall.EBUSY)
	if !errors.Is(err, syscall.EBUSY) || !strings.Contains(err.Error(), want) {
		t.Errorf("Explain(EBUSY) = %v, want it to name %q", err, want)
	}
	if got := WhoHolds(t.TempDir() + "/nothing"); got != nil {
		t.Errorf("WhoHolds(unused path) = %q, want nil", got)
	}
}
