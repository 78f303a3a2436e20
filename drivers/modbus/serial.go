package modbus

import (
	"fmt"

	"go.bug.st/serial"

	"github.com/envgate/envgate/drivers/serialport"
)

// go.bug.st/serial's ports are what NewRTU takes.
var _ Port = serial.Port(nil)

// OpenSerial opens the serial device at path (for example /dev/ttyUSB0) with the line
// settings in opt and returns an RTU master on it. Errors say what to do: join the
// dialout group, stop the process holding the port, or look the port up with
// `envgate ports` (drivers/serialport).
func OpenSerial(path string, opt RTUOptions) (*RTU, error) {
	opt = opt.withDefaults()
	if err := opt.validate(); err != nil {
		return nil, fmt.Errorf("open %s: %w", path, err)
	}
	mode := &serial.Mode{BaudRate: opt.Baud, DataBits: opt.DataBits, Parity: serial.NoParity, StopBits: serial.OneStopBit}
	switch opt.Parity {
	case "even":
		mode.Parity = serial.EvenParity
	case "odd":
		mode.Parity = serial.OddParity
	}
	if opt.StopBits == 2 {
		mode.StopBits = serial.TwoStopBits
	}
	p, err := serialport.Open(path, mode)
	if err != nil {
		return nil, err
	}
	r := NewRTU(p, opt)
	r.name = path
	return r, nil
}
