package maint

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"log/slog"
	"os"
	"path/filepath"
)

// FileName is the log's file in the gateway's state directory.
const FileName = "maintenance.json"

// fileVersion is the version of the file's format. A field is added without a new
// version; a field is removed or changes meaning only with a new one.
const fileVersion = 1

// MaxFile bounds the file read back: MaxPerDevice windows of a few hundred bytes each,
// for many more devices than a box has.
const MaxFile = 4 << 20

// file is the JSON document in FileName.
type file struct {
	Version int      `json:"version"`
	Windows []Window `json:"windows"` // by device, then oldest first
}

// Open reads the log kept in path (the state directory's FileName) and returns it; Start
// and Stop write it back. A missing file is an empty log.
//
// A file that cannot be read as a log (cut short, edited by hand, from a newer
// envgate) does not stop the gateway: it is set aside as path+".bad", the error is
// logged naming both files, and the log starts empty — every device counts as out of
// maintenance until someone starts it again. Refusing to start would stop every
// device's data at the roadside over one small state file, while the readings the
// windows covered are stored unchanged in any case. Only an error that leaves the
// file in place (it cannot be read, or set aside) is returned: the gateway cannot
// keep a log it cannot write.
func Open(path string, log *slog.Logger) (*Log, error) {
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	l, err := Read(path)
	switch {
	case err == nil:
		l.path = path
		return l, nil
	case errors.Is(err, fs.ErrNotExist):
		l = New()
		l.path = path
		return l, nil
	case !errors.Is(err, errCorrupt):
		return nil, err
	}
	if rerr := os.Rename(path, path+".bad"); rerr != nil {
		return nil, fmt.Errorf("%w; cannot set it aside: %w", err, rerr)
	}
	log.Error("maintenance log unreadable; set aside, every device starts out of maintenance",
		"file", path, "set_aside_as", path+".bad", "err", err)
	l = New()
	l.path = path
	return l, nil
}

// errCorrupt marks an error of Read about the file's content, not its reading.
var errCorrupt = errors.New("not a maintenance log")

// Read reads the log in path without keeping the path: its Start and Stop write
// nothing (envgate replay). The error names the file; a missing file is an error
// wrapping fs.ErrNotExist.
func Read(path string) (*Log, error) {
	f, err := os.Open(path)
	if err != nil {
		return nil, fmt.Errorf("maintenance log: %w", err)
	}
	defer f.Close()
	b, err := io.ReadAll(io.LimitReader(f, MaxFile+1))
	if err != nil {
		return nil, fmt.Errorf("maintenance log %s: %w", path, err)
	}
	ix, err := parse(b)
	if err != nil {
		return nil, fmt.Errorf("maintenance log %s: %w: %w", path, errCorrupt, err)
	}
	l := New()
	l.snap.Store(ix)
	return l, nil
}

// parse decodes the file's content b.
func parse(b []byte) (*index, error) {
	if len(b) > MaxFile {
		return nil, fmt.Errorf("longer than %d bytes", MaxFile)
	}
	dec := json.NewDecoder(bytes.NewReader(b))
	dec.DisallowUnknownFields()
	var f file
	if err := dec.Decode(&f); err != nil {
		return nil, err
	}
	if dec.More() {
		return nil, errors.New("data after the JSON document")
	}
	if f.Version != fileVersion {
		return nil, fmt.Errorf("version %d: this envgate reads version %d", f.Version, fileVersion)
	}
	return build(f.Windows)
}

// encode returns the file's content for ws.
func encode(ws []Window) ([]byte, error) {
	if ws == nil {
		ws = []Window{}
	}
	b, err := json.MarshalIndent(file{Version: fileVersion, Windows: ws}, "", "  ")
	if err != nil {
		return nil, err
	}
	return append(b, '\n'), nil
}

// writeFile replaces path with the log of ws, durably: a crash at any point leaves the
// old file or the new one, never a mix, and once it returns nil the new one survives a
// power cut (the temporary file is synced before the rename, the directory after it).
func writeFile(path string, ws []Window) error {
	b, err := encode(ws)
	if err != nil {
		return fmt.Errorf("maintenance log %s: %w", path, err)
	}
	dir := filepath.Dir(path)
	if err := os.MkdirAll(dir, 0o750); err != nil {
		return fmt.Errorf("maintenance log: %w", err)
	}
	tmp := path + ".tmp"
	f, err := os.OpenFile(tmp, os.O_WRONLY|os.O_CREATE|os.O_TRUNC, 0o640)
	if err != nil {
		return fmt.Errorf("maintenance log: %w", err)
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
		return fmt.Errorf("maintenance log: %w", err)
	}
	d, err := os.Open(dir)
	if err != nil {
		return fmt.Errorf("maintenance log: %w", err)
	}
	defer d.Close()
	if err := d.Sync(); err != nil {
		return fmt.Errorf("maintenance log: sync %s: %w", dir, err)
	}
	return nil
}
