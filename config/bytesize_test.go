package config

import (
	"math"
	"testing"

	"go.yaml.in/yaml/v3"
)

func TestParseByteSize(t *testing.T) {
	for _, tc := range []struct {
		in   string
		want ByteSize
		ok   bool
	}{
		{"0", 0, true},
		{"1024", 1024, true},
		{"512MiB", 512 << 20, true},
		{"8 MiB", 8 << 20, true},
		{"  64KiB ", 64 << 10, true},
		{"1GB", 1e9, true},
		{"1gb", 1e9, true},
		{"1GiB", 1 << 30, true},
		{"1G", 1e9, true},
		{"1Gi", 1 << 30, true},
		{"2TiB", 2 << 40, true},
		{"3KB", 3000, true},
		{"5MB", 5e6, true},
		{"7B", 7, true},
		{"7 b", 7, true},
		{"9223372036854775807", math.MaxInt64, true},
		{"9223372036854775808", 0, false},
		{"9000000TiB", 0, false},
		{"", 0, false},
		{"MiB", 0, false},
		{"-1", 0, false},
		{"1.5GiB", 0, false},
		{"1 MiB extra", 0, false},
		{"1XB", 0, false},
		{"0x10", 0, false},
	} {
		got, err := ParseByteSize(tc.in)
		if tc.ok && (err != nil || got != tc.want) {
			t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in, got, err, tc.want)
		}
		if !tc.ok && err == nil {
			t.Errorf("ParseByteSize(%q) = %d, want error", tc.in, got)
		}
	}
}

func TestByteSizeString(t *testing.T) {
	for _, tc := range []struct {
		in   ByteSize
		want string
	}{
		{0, "0B"}, {1, "1B"}, {1500, "1500B"}, {2000, "2KB"}, {KiB, "1KiB"}, {8 * MiB, "8MiB"},
		{GiB, "1GiB"}, {3 * TiB, "3TiB"}, {1536 * KiB, "1536KiB"}, {GB, "1GB"}, {-5, "-5B"},
	} {
		if got := tc.in.String(); got != tc.want {
			t.Errorf("ByteSize(%d).String() = %q, want %q", int64(tc.in), got, tc.want)
		}
		if tc.in >= 0 {
			if back, err := ParseByteSize(tc.in.String()); err != nil || back != tc.in {
				t.Errorf("ParseByteSize(%q) = %d, %v; want %d", tc.in.String(), back, err, int64(tc.in))
			}
		}
	}
}

func TestByteSizeYAML(t *testing.T) {
	var v struct {
		A ByteSize `yaml:"a"`
		B ByteSize `yaml:"b"`
	}
	if err := yaml.Unmarshal([]byte("a: 2048\nb: 8 MiB\n"), &v); err != nil || v.A != 2048 || v.B != 8*MiB {
		t.Errorf("yaml.Unmarshal = %+v, %v", v, err)
	}
	if err := yaml.Unmarshal([]byte("a: lots\n"), &v); err == nil {
		t.Error("yaml.Unmarshal(lots) = nil error")
	}
	out, err := yaml.Marshal(v)
	if err != nil || string(out) != "a: 2KiB\nb: 8MiB\n" {
		t.Errorf("yaml.Marshal = %q, %v", out, err)
	}
}
