package derive

import (
	"bytes"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io/fs"
	"os"
	"path/filepath"

	"github.com/envgate/envgate/gateway/air"
)

// What the log cannot rebuild is kept in a directory of its own (<state_dir>/derive):
// an air monitor's monthly and yearly statistics need a month or a year of closed days,
// far more than the buffer keeps (Reach). Each air monitor has one file, its ledger
// (gateway/air Ledger: the closed days of this year and the last, and the months and
// years already emitted), replaced atomically after the derived readings it reflects
// are durable, so a restored ledger never claims a month whose readings a crash lost.
// The file is the ledger's own encoding followed by its CRC-32C (4 bytes,
// little-endian): a flipped bit is found, not read as another figure.

// ledgerFile is the saved ledger of one air monitor.
type ledgerFile struct {
	name  string // file name in the state directory, from the site and device (hex)
	saved []byte // ledger last written or read
	dirty bool   // the monitor derived something since: the ledger may have changed
	// unread is set when the file exists but could not be read (an I/O error, not
	// damage): it is not overwritten by this process, so nothing of it is lost.
	unread bool
}

// castagnoli is the CRC-32C table of the ledger files' checksum.
var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// sealLedger appends b's checksum; openLedger checks and removes it.
func sealLedger(b []byte) []byte {
	return binary.LittleEndian.AppendUint32(bytes.Clone(b), crc32.Checksum(b, castagnoli))
}

func openLedger(b []byte) ([]byte, error) {
	if len(b) < 4 {
		return nil, fmt.Errorf("%w: %d bytes, too short for its checksum", air.ErrCorruptLedger, len(b))
	}
	body, sum := b[:len(b)-4], binary.LittleEndian.Uint32(b[len(b)-4:])
	if crc32.Checksum(body, castagnoli) != sum {
		return nil, fmt.Errorf("%w: checksum mismatch", air.ErrCorruptLedger)
	}
	return body, nil
}

// LoadState reads the monitors' saved state from dir before Restore. A monitor without
// a file starts empty. A damaged file is reported (naming it), renamed to <file>.bad for
// a person to look at (replacing an older one), and its monitor starts empty; a file
// that cannot be read (an I/O error) is reported and left alone: this process does not
// save that monitor's ledger. The other monitors load either way.
func (s *Set) LoadState(dir string) error {
	if s.Empty() || dir == "" {
		return nil
	}
	s.mu.Lock()
	defer s.mu.Unlock()
	var errs []error
	for _, m := range s.air {
		path := filepath.Join(dir, m.ledger.name)
		b, err := os.ReadFile(path)
		switch {
		case errors.Is(err, fs.ErrNotExist):
			continue
		case err != nil:
			m.ledger.unread = true
			errs = append(errs, fmt.Errorf("%w (not saved again until a restart reads it)", err))
			continue
		}
		body, err := openLedger(b)
		if err == nil {
			err = m.agg.(*air.Aggregator).RestoreLedger(body)
		}
		if err != nil {
			if rerr := os.Rename(path, path+".bad"); rerr != nil {
				m.ledger.unread = true
				err = fmt.Errorf("%w; cannot set it aside (not saved again until a restart): %v", err, rerr)
			} else {
				err = fmt.Errorf("%w; set aside as %s.bad, starting without it", err, m.ledger.name)
			}
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		m.ledger.saved = body
	}
	return errors.Join(errs...)
}

// SaveState writes to dir the state that changed since the last save. The caller (the
// pipeline's writer, after a successful sync) makes sure that everything derived so far
// is durable. The state is taken under the Set's lock and written without it, so a slow
// disk delays neither Add nor the metrics. A monitor whose file cannot be written stays
// due, and the next call tries again.
func (s *Set) SaveState(dir string) error {
	if s.Empty() || dir == "" {
		return nil
	}
	type job struct {
		lf *ledgerFile
		b  []byte
	}
	var jobs []job
	s.mu.Lock()
	for _, m := range s.air {
		if !m.ledger.dirty || m.ledger.unread {
			continue
		}
		m.ledger.dirty = false
		if b := m.agg.(*air.Aggregator).Ledger(); !bytes.Equal(b, m.ledger.saved) {
			jobs = append(jobs, job{m.ledger, b})
		}
	}
	s.mu.Unlock()
	if len(jobs) == 0 {
		return nil
	}
	if err := makeDir(dir); err != nil {
		return err
	}
	var errs []error
	for _, j := range jobs {
		err := writeAtomic(filepath.Join(dir, j.lf.name), sealLedger(j.b))
		s.mu.Lock()
		if err != nil {
			j.lf.dirty = true
			errs = append(errs, err)
		} else {
			j.lf.saved = j.b
		}
		s.mu.Unlock()
	}
	if len(errs) > 0 {
		return errors.Join(errs...)
	}
	return syncDir(dir)
}

// writeAtomic replaces path with b: a crash leaves the old content or the new one.
func writeAtomic(path string, b []byte) error {
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return err
	}
	_, err = f.Write(b)
	if err == nil {
		err = f.Sync()
	}
	if cerr := f.Close(); err == nil {
		err = cerr
	}
	if err == nil {
		err = os.Rename(tmp, path)
	}
	if err != nil {
		os.Remove(tmp)
	}
	return err
}

// makeDir creates dir if it is missing, durably: its entry in its parent is synced.
func makeDir(dir string) error {
	if _, err := os.Stat(dir); err == nil {
		return nil
	}
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	return syncDir(filepath.Dir(dir))
}

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
