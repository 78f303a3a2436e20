package derive

import (
	"bytes"
	"errors"
	"fmt"
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

// ledgerFile is the saved ledger of one air monitor.
type ledgerFile struct {
	name  string // file name in the state directory, from the site and device (hex)
	saved []byte // content last written or read
	dirty bool   // the monitor derived something since: the ledger may have changed
}

// LoadState reads the monitors' saved state from dir before Restore. A monitor without
// a file starts empty; a file that cannot be read or is corrupt is reported (naming the
// file) and its monitor starts empty too, while the others load.
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
			errs = append(errs, err)
			continue
		}
		if err := m.agg.(*air.Aggregator).RestoreLedger(b); err != nil {
			errs = append(errs, fmt.Errorf("%s: %w", path, err))
			continue
		}
		m.ledger.saved = b
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
		if !m.ledger.dirty {
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
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return err
	}
	var errs []error
	for _, j := range jobs {
		err := writeAtomic(filepath.Join(dir, j.lf.name), j.b)
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

// syncDir makes the renames in dir durable.
func syncDir(dir string) error {
	d, err := os.Open(dir)
	if err != nil {
		return err
	}
	defer d.Close()
	return d.Sync()
}
