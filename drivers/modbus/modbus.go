// Package modbus reads Modbus RTU (RS-485, through go.bug.st/serial), Modbus TCP and
// RTU-over-TCP devices. One goroutine owns each bus (see Bus) and schedules every
// register group of every device on it; register decoding is pure (decode.go).
//
// It imports only gateway/reading from the gateway; metrics reach it through the
// Observer interface.
package modbus

import (
	"context"
	"errors"
	"fmt"
	"time"
)

// Function is a Modbus read function code.
type Function uint8

// The read functions envgate uses (MODBUS Application Protocol V1.1b3 §6).
const (
	ReadCoils            Function = 1
	ReadDiscreteInputs   Function = 2
	ReadHoldingRegisters Function = 3
	ReadInputRegisters   Function = 4
)

// IsBits reports whether f reads single bits (coils, discrete inputs).
func (f Function) IsBits() bool { return f == ReadCoils || f == ReadDiscreteInputs }

// DataType is how a value is laid out in registers.
type DataType string

// The supported data types. Bool is one bit read with function 1 or 2.
const (
	Int16   DataType = "int16"
	Uint16  DataType = "uint16"
	Int32   DataType = "int32"
	Uint32  DataType = "uint32"
	Int64   DataType = "int64"
	Uint64  DataType = "uint64"
	Float32 DataType = "float32"
	Float64 DataType = "float64"
	Bool    DataType = "bool"
)

// WordOrder is the byte and word order of a multi-byte value, named by where the bytes
// of the big-endian value A B C D land on the wire: ABCD is big-endian with the high
// word first, CDAB swaps the words, BADC swaps the bytes in each word, DCBA is fully
// little-endian. For 64-bit types the pattern extends over four registers.
type WordOrder string

// The four word orders.
const (
	ABCD WordOrder = "ABCD"
	CDAB WordOrder = "CDAB"
	BADC WordOrder = "BADC"
	DCBA WordOrder = "DCBA"
)

// Point is one value read from a device: where it is, how to decode it, what it means.
type Point struct {
	Function Function
	Address  uint16 // protocol address, 0-based ("40001" in a manual is holding register 0)
	Type     DataType
	Order    WordOrder // 16-bit types: BADC and DCBA swap the two bytes; ignored for bits
	Scale    float64   // value = raw × Scale + Offset; 0 means 1
	Offset   float64
	Quantity string        // canonical quantity name (gateway/reading catalog)
	Unit     string        // unit of raw × Scale + Offset, converted to the catalog unit (reading.Convert); "" is the catalog unit
	Interval time.Duration // how often to read it
	Min, Max *float64      // plausible range; nil: the catalog's range. Outside → quality Bad
}

// Device is one slave on a bus.
type Device struct {
	Name, Site            string
	Slave                 uint8 // unit id; 1-247 normally, some devices ship at 255
	Points                []Point
	MaxGap                uint16 // merge points of one function whose registers are at most this far apart into one request
	OneRegisterPerRequest bool   // quirk: the device answers only single-register (or single-value) reads
}

// Client is a Modbus master on one bus. It is not safe for concurrent use: the bus's
// goroutine owns it. Errors: ErrTimeout (no answer), ErrCRC, ErrFrame, *ExceptionError,
// or an I/O error (port gone: the caller closes the client and reopens it).
type Client interface {
	// ReadRegisters reads count 16-bit registers with function 3 or 4.
	ReadRegisters(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]uint16, error)
	// ReadBits reads count bits with function 1 or 2.
	ReadBits(ctx context.Context, slave uint8, fn Function, addr, count uint16) ([]bool, error)
	// Close releases the port or connection. Calling it twice is safe.
	Close() error
}

// Errors of a transaction, checked with errors.Is.
var (
	ErrTimeout = errors.New("no answer from slave (check A/B wiring, baud rate, parity and slave address)")
	ErrCRC     = errors.New("bad CRC in reply")
	ErrFrame   = errors.New("malformed reply")
)

// ExceptionError is a Modbus exception reply (function code | 0x80). Check with errors.As.
type ExceptionError struct {
	Function Function
	Code     uint8
}

func (e *ExceptionError) Error() string {
	return fmt.Sprintf("exception %02X (%s) to function %d", e.Code, exceptionName(e.Code), e.Function)
}

// exceptionName names the exception codes of MODBUS Application Protocol V1.1b3 §7.
func exceptionName(code uint8) string {
	switch code {
	case 1:
		return "illegal function"
	case 2:
		return "illegal data address"
	case 3:
		return "illegal data value"
	case 4:
		return "server device failure"
	case 5:
		return "acknowledge"
	case 6:
		return "server device busy"
	case 8:
		return "memory parity error"
	case 0x0A:
		return "gateway path unavailable"
	case 0x0B:
		return "gateway target device failed to respond"
	}
	return "unknown exception"
}

// Observer receives what a bus does, for metrics. Its methods are called from the bus
// goroutine and must not block.
type Observer interface {
	// Transaction reports one request/response exchange and its outcome (err nil: ok).
	Transaction(bus, device string, rtt time.Duration, err error)
	// Poll reports one scheduled read of a device's group(s): ok when every request of
	// it succeeded. It drives the device's up gauge and poll counters.
	Poll(device string, d time.Duration, err error)
	// Busy adds time the bus spent transmitting and waiting for replies.
	Busy(bus string, d time.Duration)
}
