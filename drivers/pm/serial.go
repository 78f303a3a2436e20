package pm

import (
	"errors"
	"fmt"
	"io/fs"
	"strings"
	"syscall"

	"go.bug.st/serial"
)

// go.bug.st/serial's ports are what New's open function returns.
var _ Port = serial.Port(nil)

// lineMode is the UART setting of every supported sensor: 9600 8N1 (tech-notes §3.1,
// §3.2).
var lineMode = serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}

// OpenSerial opens the serial device at path (for example /dev/ttyUSB0 or a udev name
// under /dev/serial/by-id/) at 9600 8N1. Errors say what to do: join the dialout group,
// stop the process holding the port, or look the port up with `envgate ports`.
func OpenSerial(path string) (Port, error) {
	mode := lineMode
	p, err := serial.Open(path, &mode)
	if err != nil {
		return nil, explainOpen(path, err)
	}
	return p, nil
}

// explainOpen turns an error from opening a serial port into one the operator can act on.
func explainOpen(path string, err error) error {
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
		return fmt.Errorf("open %s: %w: another process holds the port (find it with: fuser -v %s); "+
			"stop it or configure another port", path, err, path)
	case code == serial.PortNotFound || errors.Is(err, fs.ErrNotExist):
		return fmt.Errorf("open %s: %w (no such device: is the adapter plugged in? `envgate ports` lists serial ports)", path, err)
	case code == serial.InvalidSerialPort || errors.Is(err, syscall.ENOTTY):
		return fmt.Errorf("open %s: %w (not a serial port? `envgate ports` lists serial ports)", path, err)
	}
	return fmt.Errorf("open %s: %w", path, err)
}

// explainLoss adds a hint to the error of a port that stopped working under us: on
// Linux a vanished USB adapter reads as end of file (go.bug.st/serial reports "port
// closed") or EIO.
func explainLoss(err error) error {
	var pe *serial.PortError
	if (errors.As(err, &pe) && pe.Code() == serial.PortClosed) || errors.Is(err, syscall.EIO) ||
		errors.Is(err, syscall.ENXIO) || errors.Is(err, syscall.ENODEV) {
		return fmt.Errorf("%w (device disconnected? check the USB cable; `envgate ports` lists serial ports)", err)
	}
	return err
}
