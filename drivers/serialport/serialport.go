// Package serialport opens serial ports through go.bug.st/serial, the one serial stack
// in envgate, and turns their errors into ones an installer can act on: join the
// dialout group, stop the process holding the port, plug the adapter in.
package serialport

import (
	"errors"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"slices"
	"strconv"
	"strings"
	"syscall"

	"go.bug.st/serial"
)

// Open opens the serial device at path with mode; errors say what to do about them.
func Open(path string, mode *serial.Mode) (serial.Port, error) {
	p, err := serial.Open(path, mode)
	if err != nil {
		return nil, Explain(path, err)
	}
	return p, nil
}

// Explain turns an error from opening a serial port into one the operator can act on.
func Explain(path string, err error) error {
	var pe *serial.PortError
	code := serial.PortErrorCode(-1)
	if errors.As(err, &pe) {
		code = pe.Code()
	}
	switch {
	case code == serial.PermissionDenied || errors.Is(err, fs.ErrPermission):
		return fmt.Errorf("open %s: %w (add the user envgate runs as to the dialout group: "+
			"sudo usermod -aG dialout USER, then restart the service)", path, err)
	case code == serial.PortBusy || errors.Is(err, syscall.EBUSY) ||
		strings.Contains(strings.ToLower(err.Error()), "port busy"):
		holders := WhoHolds(path)
		who := "another process (run: fuser -v " + path + ")"
		if len(holders) > 0 {
			who = strings.Join(holders, ", ")
		}
		return fmt.Errorf("open %s: %w: the port is held by %s; stop it or configure another port", path, err, who)
	case code == serial.PortNotFound || errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("open %s: %w (no such device: is the adapter plugged in? `envgate ports` lists serial ports)", path, err)
	case code == serial.InvalidSerialPort || errors.Is(err, syscall.ENOTTY):
		return fmt.Errorf("open %s: %w (not a serial port? `envgate ports` lists serial ports)", path, err)
	case code == serial.InvalidSpeed:
		return fmt.Errorf("open %s: %w (the port does not support this baud rate)", path, err)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// ExplainLoss adds a hint to the error of a port that stopped working under us: on
// Linux a vanished USB adapter reads as end of file (go.bug.st/serial reports "port
// closed") or EIO.
func ExplainLoss(err error) error {
	var pe *serial.PortError
	if (errors.As(err, &pe) && pe.Code() == serial.PortClosed) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%w (device disconnected? check the USB cable; `envgate ports` lists serial ports)", err)
	}
	return err
}

// WhoHolds names the processes that have path open, such as "pid 1234 (minicom)", by
// scanning /proc/*/fd. It is best effort: without root it sees only the caller's own
// processes, and it returns nil when it finds nothing. Symlinks (udev names such as
// /dev/serial/by-id/…) are resolved first.
func WhoHolds(path string) []string {
	targets := []string{path}
	if abs, err := filepath.Abs(path); err == nil && abs != path {
		targets = append(targets, abs)
	}
	if real, err := filepath.EvalSymlinks(path); err == nil && !slices.Contains(targets, real) {
		targets = append(targets, real)
	}
	procs, err := os.ReadDir("/proc")
	if err != nil {
		return nil
	}
	var pids []int
	for _, p := range procs {
		pid, err := strconv.Atoi(p.Name())
		if err != nil {
			continue
		}
		dir := filepath.Join("/proc", p.Name(), "fd")
		fds, err := os.ReadDir(dir)
		if err != nil {
			continue // gone, or not ours to look at
		}
		for _, fd := range fds {
			link, err := os.Readlink(filepath.Join(dir, fd.Name()))
			if err == nil && slices.Contains(targets, link) {
				pids = append(pids, pid)
				break
			}
		}
	}
	slices.Sort(pids)
	var out []string
	for _, pid := range pids {
		comm, err := os.ReadFile(filepath.Join("/proc", strconv.Itoa(pid), "comm"))
		name := strings.TrimSpace(string(comm))
		if err != nil || name == "" {
			name = "?"
		}
		out = append(out, fmt.Sprintf("pid %d (%s)", pid, name))
	}
	return out
}
