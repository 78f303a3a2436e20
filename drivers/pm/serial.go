package pm

import (
	"go.bug.st/serial"

	"github.com/envgate/envgate/drivers/serialport"
)

// go.bug.st/serial's ports are what New's open function returns.
var _ Port = serial.Port(nil)

// lineMode is the UART setting of every supported sensor: 9600 8N1 (docs/engineering-notes.md §3.1,
// §3.2).
var lineMode = serial.Mode{BaudRate: 9600, DataBits: 8, Parity: serial.NoParity, StopBits: serial.OneStopBit}

// OpenSerial opens the serial device at path (for example /dev/ttyUSB0 or a udev name
// under /dev/serial/by-id/) at 9600 8N1. Errors say what to do: join the dialout group,
// stop the process holding the port, or look the port up with `envgate ports`.
func OpenSerial(path string) (Port, error) {
	mode := lineMode
	return serialport.Open(path, &mode)
}
