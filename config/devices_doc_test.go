package config

import (
	"encoding/binary"
	"fmt"
	"math"
	"os"
	"strings"
	"testing"

	"github.com/envgate/envgate/gateway/reading"
)

// TestDevicesDoc keeps docs/devices.md in step with the built-in profiles: each has a
// section whose factory settings and register table match the profile file, the
// sample profile loads, and the word-order table is right.
func TestDevicesDoc(t *testing.T) {
	data, err := os.ReadFile("../docs/devices.md")
	if err != nil {
		t.Fatal(err)
	}
	doc := string(data)
	for _, p := range BuiltinProfiles() {
		_, sec, ok := strings.Cut(doc, "\n### `"+p.Name+"`\n")
		if !ok {
			t.Errorf("docs/devices.md has no section \"### `%s`\"", p.Name)
			continue
		}
		sec, _, _ = strings.Cut(sec, "\n### ")
		if want := factoryLine(p.Defaults); !strings.Contains(sec, want) {
			t.Errorf("docs/devices.md, %s: no line %q", p.Name, want)
		}
		for _, pt := range p.Points {
			if row := pointRow(pt); !strings.Contains(sec, row) {
				t.Errorf("docs/devices.md, %s: no row\n%s", p.Name, row)
			}
		}
		if !strings.Contains(sec, "Confidence:") || !strings.Contains(sec, "Source:") {
			t.Errorf("docs/devices.md, %s: says nothing about source or confidence", p.Name)
		}
	}

	sample := section(t, doc, "## Writing your own profile", "```yaml\n", "```\n")
	if _, err := ParseProfile([]byte(sample), "sample.yaml"); err != nil {
		t.Errorf("docs/devices.md sample profile:\n%s", errLines(err))
	}

	// 23.5 is 0x41BC0000 as a big-endian float32; each order puts its bytes on the wire
	// as the table shows.
	var abcd [4]byte
	binary.BigEndian.PutUint32(abcd[:], math.Float32bits(23.5))
	for order, idx := range map[string][4]int{"ABCD": {0, 1, 2, 3}, "CDAB": {2, 3, 0, 1}, "BADC": {1, 0, 3, 2}, "DCBA": {3, 2, 1, 0}} {
		w := [4]byte{abcd[idx[0]], abcd[idx[1]], abcd[idx[2]], abcd[idx[3]]}
		row := fmt.Sprintf("| `%s` | `%02X %02X %02X %02X` | `0x%04X` | `0x%04X` |", order, w[0], w[1], w[2], w[3],
			binary.BigEndian.Uint16(w[:2]), binary.BigEndian.Uint16(w[2:]))
		if !strings.Contains(doc, row) {
			t.Errorf("docs/devices.md has no word-order row\n%s", row)
		}
	}
}

// factoryLine renders a profile's defaults as docs/devices.md shows them.
func factoryLine(d ProfileDefaults) string {
	parity := map[string]string{"none": "N", "even": "E", "odd": "O"}[d.Parity]
	return fmt.Sprintf("Factory settings: %d baud, %d%s%d, slave %d.", d.Baud, d.DataBits, parity, d.StopBits, d.Slave)
}

// pointRow renders a profile point as a row of a register table in docs/devices.md.
func pointRow(pt ModbusPoint) string {
	prefix := map[int]int{1: 1, 2: 10001, 3: 40001, 4: 30001}[pt.Function]
	q, _ := reading.Lookup(pt.Quantity)
	order := pt.Order
	if pt.registers() == 1 && (order == "ABCD" || order == "CDAB") {
		order = "–"
	}
	return fmt.Sprintf("| `%s` | %d | %05d | %d (0x%04X) | %s | %s | %g | %s |",
		pt.Quantity, pt.Function, prefix+pt.Address, pt.Address, pt.Address, pt.Type, order, pt.Scale, q.Unit)
}
