package buffer

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"io/fs"
	"math/rand/v2"
	"os"
	"path/filepath"
	"slices"
	"sort"
	"strings"
	"sync"
	"syscall"
	"testing"
	"time"

	"github.com/envgate/envgate/gateway/reading"
)

// The crash model (issue 10: power cuts were never tested, only SIGKILL, which keeps
// the page cache). memFS is a file system in memory that knows what is on stable
// storage: a file's bytes only after its fsync, a directory's entries (new files,
// removals, renames) only after the directory's fsync. At a crash everything else may
// be lost: a random prefix of the writes since the last fsync survives, the last of
// them torn at a random byte, or (the harsher mode) each 512-byte block of the unsynced
// part is independently old or new; a random prefix of each directory's unsynced
// changes survives. The file system can also die in the middle of an operation: the
// operation numbered crashAt is applied partly (a write torn) or not at all, and every
// later one fails. In half of the runs an fsync can also fail (EIO) without a crash, as
// Linux reports a failed writeback: some of the file's unsynced writes reached the disk,
// the rest are lost there though reads still see them, and the next fsync does not
// write them again (the pages count as clean); a directory keeps a prefix of its
// unsynced entry changes.

var crashIterations = flag.Int("crash.iterations", 600, "random crash points run by TestCrashModel")

var errCrashed = errors.New("crash model: the machine lost power")

type inode struct {
	data   []byte // what reads see: the page cache
	synced []byte // on stable storage
	writes []wop  // since the last fsync, in order
}

// wop is a write of data at off, or a truncation to off when trunc is set.
type wop struct {
	off   int
	data  []byte
	trunc bool
}

// nsop is a change of one directory entry: name now refers to ino (nil: removed).
type nsop struct {
	dir, name string
	ino       *inode
}

type memFS struct {
	mu       sync.Mutex
	rng      *rand.Rand
	ops      int
	crashAt  int // the operation at which the power goes; 0: never
	failOne  int // 1 in failOne fsyncs fails with EIO; 0: none
	dead     bool
	dirs     map[string]bool
	names    map[string]*inode // path → inode, as processes see it
	durable  map[string]*inode // path → inode, as stable storage has it
	pendingN []nsop            // entry changes not yet made durable by a directory fsync
}

func newMemFS(rng *rand.Rand) *memFS {
	return &memFS{rng: rng, dirs: map[string]bool{}, names: map[string]*inode{}, durable: map[string]*inode{}}
}

// step counts a mutating operation; it reports false when the power is gone (the
// operation must not happen) and true for the crash point itself with torn set.
func (m *memFS) step() (ok, crashNow bool) {
	if m.dead {
		return false, false
	}
	m.ops++
	if m.crashAt > 0 && m.ops >= m.crashAt {
		m.dead = true
		return false, true
	}
	return true, false
}

type memFile struct {
	m      *memFS
	ino    *inode
	name   string
	append bool
	pos    int
}

func (m *memFS) OpenFile(name string, flag int, perm os.FileMode) (file, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = filepath.Clean(name)
	ino := m.names[name]
	if flag&os.O_CREATE != 0 {
		if ino != nil && flag&os.O_EXCL != 0 {
			return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrExist}
		}
		if ino == nil {
			if ok, _ := m.step(); !ok {
				return nil, &fs.PathError{Op: "open", Path: name, Err: errCrashed}
			}
			ino = &inode{}
			m.setName(name, ino)
		}
	}
	if ino == nil {
		return nil, &fs.PathError{Op: "open", Path: name, Err: fs.ErrNotExist}
	}
	f := &memFile{m: m, ino: ino, name: name, append: flag&os.O_APPEND != 0}
	if flag&os.O_TRUNC != 0 {
		if err := f.truncLocked(0); err != nil {
			return nil, err
		}
	}
	return f, nil
}

func (m *memFS) setName(name string, ino *inode) {
	if ino == nil {
		delete(m.names, name)
	} else {
		m.names[name] = ino
	}
	m.pendingN = append(m.pendingN, nsop{dir: filepath.Dir(name), name: name, ino: ino})
}

func (m *memFS) ReadDir(dir string) ([]dirEntry, error) {
	m.mu.Lock()
	defer m.mu.Unlock()
	dir = filepath.Clean(dir)
	var out []dirEntry
	for name, ino := range m.names {
		if filepath.Dir(name) == dir {
			out = append(out, dirEntry{name: filepath.Base(name), size: int64(len(ino.data))})
		}
	}
	sort.Slice(out, func(i, j int) bool { return out[i].name < out[j].name })
	return out, nil
}

func (m *memFS) Remove(name string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	name = filepath.Clean(name)
	if m.names[name] == nil {
		return &fs.PathError{Op: "remove", Path: name, Err: fs.ErrNotExist}
	}
	if ok, _ := m.step(); !ok {
		return errCrashed
	}
	m.setName(name, nil)
	return nil
}

func (m *memFS) Rename(from, to string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	from, to = filepath.Clean(from), filepath.Clean(to)
	ino := m.names[from]
	if ino == nil {
		return &fs.PathError{Op: "rename", Path: from, Err: fs.ErrNotExist}
	}
	if ok, _ := m.step(); !ok {
		return errCrashed
	}
	if filepath.Dir(from) == filepath.Dir(to) {
		// One entry change within a directory: atomic, old or new after a crash.
		delete(m.names, from)
		m.names[to] = ino
		m.pendingN = append(m.pendingN, nsop{dir: filepath.Dir(to), name: "\x00rename", ino: &inode{data: []byte(from + "\x00" + to)}})
		return nil
	}
	m.setName(from, nil)
	m.setName(to, ino)
	return nil
}

func (m *memFS) MkdirAll(dir string, perm os.FileMode) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dirs[filepath.Clean(dir)] = true // directories themselves are durable at once
	return nil
}

func (m *memFS) SyncDir(dir string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if ok, _ := m.step(); !ok {
		return errCrashed
	}
	dir = filepath.Clean(dir)
	fail := m.fails()
	n := -1 // entry changes of dir to make durable; -1: all
	if fail {
		n = m.rng.IntN(len(m.pendingN) + 1)
	}
	kept := m.pendingN[:0]
	for _, op := range m.pendingN {
		if op.dir == dir && n != 0 {
			applyNS(m.durable, op)
			n--
		} else {
			kept = append(kept, op)
		}
	}
	m.pendingN = kept
	if fail {
		return &fs.PathError{Op: "fsync", Path: dir, Err: syscall.EIO}
	}
	return nil
}

// fails decides whether the fsync being made fails.
func (m *memFS) fails() bool { return m.failOne > 0 && m.rng.IntN(m.failOne) == 0 }

func applyNS(ns map[string]*inode, op nsop) {
	if op.name == "\x00rename" {
		from, to, _ := strings.Cut(string(op.ino.data), "\x00")
		if ino := ns[from]; ino != nil {
			delete(ns, from)
			ns[to] = ino
		}
		return
	}
	if op.ino == nil {
		delete(ns, op.name)
	} else {
		ns[op.name] = op.ino
	}
}

func (m *memFS) Lock(string, []byte) (func() error, error) { return func() error { return nil }, nil }

func (f *memFile) Write(b []byte) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	ok, crashNow := f.m.step()
	if !ok && !crashNow {
		return 0, errCrashed
	}
	off := f.pos
	if f.append {
		off = len(f.ino.data)
	}
	n := len(b)
	if crashNow {
		n = f.m.rng.IntN(len(b) + 1) // the write in flight is torn
	}
	f.ino.apply(wop{off: off, data: slices.Clone(b[:n])})
	f.pos = off + n
	if crashNow {
		return n, errCrashed
	}
	return n, nil
}

// WriteAt writes in place, as a cursor save does; the write in flight at the crash is
// torn like any other.
func (f *memFile) WriteAt(b []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	ok, crashNow := f.m.step()
	if !ok && !crashNow {
		return 0, errCrashed
	}
	n := len(b)
	if crashNow {
		n = f.m.rng.IntN(len(b) + 1)
	}
	f.ino.apply(wop{off: int(off), data: slices.Clone(b[:n])})
	if crashNow {
		return n, errCrashed
	}
	return n, nil
}

func (ino *inode) apply(w wop) {
	ino.writes = append(ino.writes, w)
	ino.data = applyW(ino.data, w)
}

func applyW(data []byte, w wop) []byte {
	if w.trunc {
		if w.off <= len(data) {
			return data[:w.off:w.off]
		}
		return append(data, make([]byte, w.off-len(data))...)
	}
	if end := w.off + len(w.data); end > len(data) {
		data = append(data, make([]byte, end-len(data))...)
	}
	copy(data[w.off:], w.data)
	return data
}

func (f *memFile) ReadAt(b []byte, off int64) (int, error) {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if f.m.dead {
		return 0, errCrashed
	}
	if off >= int64(len(f.ino.data)) {
		return 0, io.EOF
	}
	n := copy(b, f.ino.data[off:])
	if n < len(b) {
		return n, io.EOF
	}
	return n, nil
}

func (f *memFile) Truncate(size int64) error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	return f.truncLocked(int(size))
}

func (f *memFile) truncLocked(size int) error {
	if ok, _ := f.m.step(); !ok {
		return errCrashed
	}
	f.ino.apply(wop{off: size, trunc: true})
	return nil
}

func (f *memFile) Sync() error {
	f.m.mu.Lock()
	defer f.m.mu.Unlock()
	if ok, _ := f.m.step(); !ok {
		return errCrashed
	}
	if f.m.fails() {
		// Some of the writes reached the disk; the rest never will.
		f.ino.synced = f.ino.survivor(f.m.rng)
		f.ino.writes = nil
		return &fs.PathError{Op: "fsync", Path: f.name, Err: syscall.EIO}
	}
	for _, w := range f.ino.writes {
		f.ino.synced = applyW(f.ino.synced, w)
	}
	f.ino.writes = nil
	return nil
}

func (f *memFile) Close() error { return nil }
func (f *memFile) Name() string { return f.name }

// crash returns the file system as stable storage has it after the power is lost now.
func (m *memFS) crash(rng *rand.Rand) *memFS {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.dead = true
	ns := map[string]*inode{}
	for k, v := range m.durable {
		ns[k] = v
	}
	// A random prefix of each directory's unsynced entry changes survives.
	cut := map[string]int{}
	seen := map[string]int{}
	for _, op := range m.pendingN {
		if _, ok := cut[op.dir]; !ok {
			n := 0
			for _, o := range m.pendingN {
				if o.dir == op.dir {
					n++
				}
			}
			cut[op.dir] = rng.IntN(n + 1)
		}
		if seen[op.dir] < cut[op.dir] {
			applyNS(ns, op)
		}
		seen[op.dir]++
	}
	out := newMemFS(rng)
	out.dirs = maps(m.dirs)
	images := map[*inode]*inode{}
	for name, ino := range ns {
		img := images[ino]
		if img == nil {
			d := ino.survivor(rng)
			img = &inode{data: d, synced: slices.Clone(d)}
			images[ino] = img
		}
		out.names[name] = img
		out.durable[name] = img
	}
	return out
}

// survivor is what stable storage holds of the file after a crash.
func (ino *inode) survivor(rng *rand.Rand) []byte {
	d := slices.Clone(ino.synced)
	if len(ino.writes) == 0 {
		return d
	}
	if rng.IntN(3) > 0 {
		// A prefix of the writes, the last one torn.
		n := rng.IntN(len(ino.writes) + 1)
		for i, w := range ino.writes[:n] {
			if i == n-1 && !w.trunc {
				w.data = w.data[:rng.IntN(len(w.data)+1)]
			}
			d = applyW(d, w)
		}
		return d
	}
	// Each 512-byte block of what changed is old or new; the size anywhere between.
	cur := ino.data
	size := len(d) + rng.IntN(max(len(cur)-len(d), 0)+1)
	if len(cur) < len(d) {
		size = []int{len(cur), len(d)}[rng.IntN(2)]
	}
	out := make([]byte, size)
	copy(out, d)
	for b := 0; b < size; b += 512 {
		if rng.IntN(2) == 0 {
			continue
		}
		end := min(b+512, size)
		for i := b; i < end; i++ {
			out[i] = 0
			if i < len(cur) {
				out[i] = cur[i]
			}
		}
	}
	return out
}

func maps[K comparable, V any](m map[K]V) map[K]V {
	out := make(map[K]V, len(m))
	for k, v := range m {
		out[k] = v
	}
	return out
}

// crashRun is one random workload ended by a power cut, and what it was promised.
type crashRun struct {
	t         *testing.T
	seed      uint64
	rng       *rand.Rand
	m         *memFS
	opt       Options
	nextID    int
	appended  map[float64]bool
	maybe     []float64                   // appended since the last Sync that returned nil
	durable   map[float64]bool            // covered by a Sync (or Close) that returned nil
	acked     map[string]map[float64]bool // per reader: delivered and covered by a persisted cursor
	ackTried  map[string]map[float64]bool // per reader: delivered and acknowledged, persisted or not
	delivered map[string][]float64        // per reader, in this run of the queue
}

var crashReaders = []string{"a", "b"}

func (c *crashRun) failf(format string, args ...any) {
	c.t.Helper()
	c.t.Fatalf("seed %d: %s (reproduce: go test ./gateway/buffer -run 'TestCrashModel/seed=%d$')", c.seed, fmt.Sprintf(format, args...), c.seed)
}

func (c *crashRun) open() (*Queue, map[string]*Reader) {
	c.t.Helper()
	q, err := Open(c.opt)
	for range 20 {
		if !errors.Is(err, syscall.EIO) {
			break
		}
		q, err = Open(c.opt) // an injected fsync failure: the service manager starts it again
	}
	if err != nil && c.m.isDead() {
		return nil, nil // the power went during the restart
	}
	if err != nil {
		c.failf("Open: %v", err)
	}
	rs := map[string]*Reader{}
	for _, n := range crashReaders {
		r, err := q.Reader(n)
		if err != nil {
			c.failf("Reader(%s): %v", n, err)
		}
		rs[n] = r
	}
	return q, rs
}

func runCrash(t *testing.T, seed uint64) {
	rng := rand.New(rand.NewPCG(seed, seed^0x5eed))
	c := &crashRun{t: t, seed: seed, rng: rng, m: newMemFS(rng), appended: map[float64]bool{}, durable: map[float64]bool{},
		acked: map[string]map[float64]bool{}, ackTried: map[string]map[float64]bool{}, delivered: map[string][]float64{}}
	for _, n := range crashReaders {
		c.acked[n] = map[float64]bool{}
		c.ackTried[n] = map[float64]bool{}
	}
	clock := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	c.opt = Options{Dir: "/buf", SegmentBytes: int64(200 + rng.IntN(2000)), CursorInterval: time.Nanosecond,
		MemoryReadings: 1 << 20, fs: c.m, now: func() time.Time { clock = clock.Add(time.Second); return clock }}
	c.m.crashAt = 1 + rng.IntN(300)
	if rng.IntN(2) == 0 {
		c.m.failOne = 6
	}
	q, readers := c.open()
	for step := 0; step < 80 && !c.m.isDead(); step++ {
		switch k := rng.IntN(10); {
		case k < 4:
			n := 1 + rng.IntN(20)
			rs := make([]reading.Reading, n)
			for i := range rs {
				id := float64(c.nextID)
				c.nextID++
				rs[i] = reading.New(t0.Add(time.Duration(id)*time.Second), "canal-east", "noise-1", "la", id)
				c.appended[id] = true
				c.maybe = append(c.maybe, id)
			}
			q.Append(rs...)
		case k < 6:
			err := q.Sync()
			if err == nil {
				for _, id := range c.maybe {
					c.durable[id] = true
				}
				c.maybe = nil
			} else if errors.Is(err, ErrLost) {
				c.maybe = nil
			}
		case k < 9:
			name := crashReaders[rng.IntN(len(crashReaders))]
			rs, next, err := readers[name].Peek(1 + rng.IntN(30))
			if err != nil {
				continue
			}
			var ids []float64
			for _, r := range rs {
				ids = append(ids, r.Value)
			}
			if d := c.delivered[name]; len(d) > 0 && len(ids) > 0 && ids[0] <= d[len(d)-1] {
				c.failf("reader %s delivered %v after %v: out of order", name, ids[0], d[len(d)-1])
			}
			if !slices.IsSorted(ids) || len(slices.Compact(slices.Clone(ids))) != len(ids) {
				c.failf("reader %s delivered %v: not strictly increasing (a duplicate or reordering)", name, ids)
			}
			for _, id := range ids {
				if c.acked[name][id] {
					// Only what was acknowledged after the cursor was last saved may come again.
					c.failf("reader %s delivered %v again though its cursor had been saved past it", name, id)
				}
			}
			if rng.IntN(4) == 0 {
				continue // the sink failed; the same readings come again
			}
			c.delivered[name] = append(c.delivered[name], ids...)
			for _, id := range c.delivered[name] {
				c.ackTried[name][id] = true
			}
			// Saved only if this Ack (or an earlier one) saved the cursor: an Ack that
			// does not move it returns nil without saving.
			if err := readers[name].Ack(next); err == nil && unsaved(readers[name]) == 0 {
				for _, id := range c.delivered[name] {
					c.acked[name][id] = true
				}
			}
		default:
			// A clean restart.
			err := q.Close()
			if c.m.isDead() {
				break
			}
			if err != nil {
				c.maybe = nil // the final fsync failed: lost, and counted
			}
			if err == nil {
				for _, id := range c.maybe {
					c.durable[id] = true
				}
				c.maybe = nil
				for _, n := range crashReaders {
					for _, id := range c.delivered[n] {
						c.acked[n][id] = true
					}
				}
			}
			for _, n := range crashReaders {
				for _, id := range c.delivered[n] {
					c.ackTried[n][id] = true
				}
			}
			if q, readers = c.open(); q == nil {
				break
			}
			c.delivered = map[string][]float64{}
		}
	}
	// The power goes (now, if the workload did not reach crashAt).
	c.opt.fs = c.m.crash(rng)
	q2, readers2 := c.open()
	if q2 == nil {
		c.failf("Open after the crash failed")
	}
	defer q2.Close()
	// New readings after the crash must be delivered too: the log must not have reused
	// or skipped past what the cursors point at.
	after := make([]reading.Reading, 5)
	for i := range after {
		id := float64(1_000_000 + i)
		after[i] = reading.New(t0.Add(time.Duration(id)*time.Second), "canal-east", "noise-1", "la", id)
	}
	if err := q2.Append(after...); err != nil {
		c.failf("Append after the crash: %v", err)
	}
	if err := q2.Sync(); err != nil {
		c.failf("Sync after the crash: %v", err)
	}
	for _, name := range crashReaders {
		var got []float64
		for range 10000 {
			rs, next, err := readers2[name].Peek(50)
			if err != nil {
				c.failf("Peek after the crash: %v", err)
			}
			for _, r := range rs {
				got = append(got, r.Value)
			}
			readers2[name].Ack(next)
			if len(rs) == 0 {
				break
			}
		}
		if !slices.IsSorted(got) || len(slices.Compact(slices.Clone(got))) != len(got) {
			c.failf("reader %s delivered %v after the crash: not strictly increasing (a duplicate or reordering)", name, got)
		}
		have := map[float64]bool{}
		for _, v := range got {
			have[v] = true
			if !c.appended[v] && v < 1_000_000 {
				c.failf("reader %s delivered %v, never appended", name, v)
			}
			if c.acked[name][v] {
				c.failf("reader %s delivered %v again after the crash though its cursor had been persisted past it", name, v)
			}
		}
		for id := range c.durable {
			if !have[id] && !c.ackTried[name][id] {
				c.failf("reader %s lost reading %v, reported durable (delivered after the crash: %v)", name, id, got)
			}
		}
		for i := range after {
			if !have[float64(1_000_000+i)] {
				c.failf("reader %s never delivered reading %d appended after the crash (got %v)", name, 1_000_000+i, got)
			}
		}
	}
}

func unsaved(r *Reader) uint64 {
	n, _ := r.Unsaved()
	return n
}

func (m *memFS) isDead() bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.dead
}

// TestCrashModel runs the buffer through random workloads (appends, syncs, reader
// peeks and acks with persisted cursors, rotation, clean restarts) and cuts the power
// at a random file-system operation; after each crash it reopens and checks that every
// reading reported durable is delivered to every sink whose persisted cursor had not
// passed it, nothing is delivered twice or out of order, no persisted cursor goes back,
// and new readings are delivered. -crash.iterations sets the number of crash points.
func TestCrashModel(t *testing.T) {
	n := *crashIterations
	if testing.Short() {
		n = min(n, 50)
	}
	for seed := range uint64(n) {
		t.Run(fmt.Sprintf("seed=%d", seed), func(t *testing.T) { runCrash(t, seed) })
	}
}

// FuzzCrashModel explores more crash points: go test -fuzz FuzzCrashModel ./gateway/buffer
func FuzzCrashModel(f *testing.F) {
	f.Add(uint64(0))
	f.Fuzz(func(t *testing.T, seed uint64) { runCrash(t, seed) })
}
