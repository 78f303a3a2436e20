package config

import (
	"errors"
	"fmt"
	"math"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// ByteSize is a size in bytes. In YAML it is a plain number of bytes or a number
// with a unit: "64KiB", "8 MiB", "1GB". KiB, MiB, GiB and TiB are powers of 1024;
// KB, MB, GB and TB powers of 1000; the B is optional and units ignore case.
type ByteSize int64

// Size units.
const (
	B   ByteSize = 1
	KiB ByteSize = 1 << 10
	MiB ByteSize = 1 << 20
	GiB ByteSize = 1 << 30
	TiB ByteSize = 1 << 40
	KB  ByteSize = 1e3
	MB  ByteSize = 1e6
	GB  ByteSize = 1e9
	TB  ByteSize = 1e12
)

var sizeUnits = map[string]ByteSize{
	"": B, "b": B,
	"k": KB, "kb": KB, "m": MB, "mb": MB, "g": GB, "gb": GB, "t": TB, "tb": TB,
	"ki": KiB, "kib": KiB, "mi": MiB, "mib": MiB, "gi": GiB, "gib": GiB, "ti": TiB, "tib": TiB,
}

// ParseByteSize parses a size such as "512MiB", "8 MiB", "1GB" or "1024": a
// non-negative integer, optional spaces and an optional unit.
func ParseByteSize(s string) (ByteSize, error) {
	t := strings.TrimSpace(s)
	i := 0
	for i < len(t) && t[i] >= '0' && t[i] <= '9' {
		i++
	}
	if i == 0 {
		return 0, errors.New("must start with a whole number of bytes or units")
	}
	n, err := strconv.ParseInt(t[:i], 10, 64)
	if err != nil {
		return 0, errors.New("is too large")
	}
	unit := strings.TrimSpace(t[i:])
	mult, ok := sizeUnits[strings.ToLower(unit)]
	if !ok {
		return 0, errors.New("has an unknown unit (use B, KB, MB, GB, TB, KiB, MiB, GiB or TiB)")
	}
	if n > math.MaxInt64/int64(mult) {
		return 0, errors.New("is too large")
	}
	return ByteSize(n) * mult, nil
}

// String formats the size in the largest unit that divides it exactly, binary units
// first: 8MiB, 1GiB, 1500B. ParseByteSize reads it back.
func (b ByteSize) String() string {
	if b > 0 {
		for _, u := range []struct {
			size ByteSize
			name string
		}{{TiB, "TiB"}, {GiB, "GiB"}, {MiB, "MiB"}, {KiB, "KiB"}, {TB, "TB"}, {GB, "GB"}, {MB, "MB"}, {KB, "KB"}} {
			if b%u.size == 0 {
				return strconv.FormatInt(int64(b/u.size), 10) + u.name
			}
		}
	}
	return strconv.FormatInt(int64(b), 10) + "B"
}

// UnmarshalYAML decodes a size from a YAML scalar, for code that decodes a ByteSize
// with yaml.v3 directly.
func (b *ByteSize) UnmarshalYAML(n *yaml.Node) error {
	if n.Kind != yaml.ScalarNode {
		return fmt.Errorf("line %d: size must be a single value", n.Line)
	}
	v, err := ParseByteSize(n.Value)
	if err != nil {
		return fmt.Errorf("line %d: size %q %w", n.Line, n.Value, err)
	}
	*b = v
	return nil
}

// MarshalYAML encodes the size as its String form.
func (b ByteSize) MarshalYAML() (any, error) { return b.String(), nil }
