package testsvc

import (
	"errors"
	"os"
	"os/exec"
	"runtime"
	"syscall"
	"testing"
)

// SelfCommand runs this test binary again with args, for tests that need a second
// process (a lock holder, a session leader). Under `go test -exec qemu-arm` (the 32-bit
// ARM step of scripts/test.sh) the binary is not native: it then runs under the same
// emulator, which keeps the guest's pid equal to its own.
func SelfCommand(t testing.TB, args ...string) *exec.Cmd {
	t.Helper()
	probe := exec.Command(os.Args[0], "-test.run=^$")
	if err := probe.Run(); errors.Is(err, syscall.ENOEXEC) {
		emu, lerr := exec.LookPath("qemu-" + runtime.GOARCH)
		if lerr != nil {
			t.Fatalf("test binary is not native (%v) and no emulator: %v", err, lerr)
		}
		return exec.Command(emu, append([]string{os.Args[0]}, args...)...)
	}
	return exec.Command(os.Args[0], args...)
}
