package buffer

import (
	"hash/maphash"
	"sync/atomic"
)

// names caches decoded names: a record's site, device, quantity and unit come from a few
// dozen distinct values in a gateway, and decoding them afresh was four allocations per
// reading, the largest share of a drain's garbage (bench/README.md, "BenchmarkDrain").
// Each slot holds the last name that hashed to it; a collision only costs the
// allocation the cache saves. Safe for concurrent use: every Reader decodes through it.
var names [1024]atomic.Pointer[string]

var namesSeed = maphash.MakeSeed()

// maxInterned bounds the names cached: reading.MaxNameLen and the catalog's quantities
// and units are shorter.
const maxInterned = 64

// intern returns b as a string, from names when it is there.
func intern(b []byte) string {
	if len(b) == 0 || len(b) > maxInterned {
		return string(b)
	}
	slot := &names[maphash.Bytes(namesSeed, b)%uint64(len(names))]
	if p := slot.Load(); p != nil && *p == string(b) {
		return *p
	}
	s := string(b)
	slot.Store(&s)
	return s
}
