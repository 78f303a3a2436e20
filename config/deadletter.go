package config

import (
	"os"
	"path/filepath"
	"strconv"
	"strings"

	"github.com/envgate/envgate/gateway/deadletter"
	"github.com/envgate/envgate/internal/regular"
)

// deadLetterFile is one dead-letter file of the config: a sink's or an mqtt source's,
// written or defaulted.
type deadLetterFile struct {
	key  string // its key, such as "sinks[0].influxdb.dead_letter"
	path string // as the config gives it, after defaults
	abs  string // cleaned and absolute, for comparing
	keep int    // rotated files kept beside it, <path>.1 ... <path>.<keep>
}

// deadLetterFiles returns every dead-letter file of c after defaults, sinks first.
func (c *Config) deadLetterFiles() []deadLetterFile {
	var out []deadLetterFile
	add := func(key, path string, keep int) {
		if path == "" {
			return // a sink or source without a name: reported as such
		}
		out = append(out, deadLetterFile{key: key, path: path, abs: absPath(path), keep: max(keep, 0)})
	}
	for i, s := range c.Sinks {
		if s.InfluxDB != nil {
			add(indexPath("sinks", i)+".influxdb.dead_letter", s.InfluxDB.DeadLetter, s.InfluxDB.DeadLetterKeep)
		}
		if x := s.PrometheusRemoteWrite; x != nil {
			add(indexPath("sinks", i)+".prometheus_remote_write.dead_letter", x.DeadLetter, x.DeadLetterKeep)
		}
	}
	for i, m := range c.MQTT {
		add(indexPath("mqtt", i)+".dead_letter", m.DeadLetter, deadletter.DefaultKeep)
	}
	return out
}

// absPath returns path cleaned and made absolute from the working directory, where
// the gateway opens it; as cleaned only if there is no working directory.
func absPath(path string) string {
	if abs, err := filepath.Abs(path); err == nil {
		return abs
	}
	return filepath.Clean(path)
}

// validateDeadLetters checks that no two sinks or sources share a dead-letter file
// (or one's file is where another's rotates to: each would rotate and count the
// other's entries as its own), and that none lies inside the buffer's directory,
// <state_dir>/buffer, whose files the buffer owns (it repairs, quarantines and
// removes what it does not recognise). inFile tells a written path from a default.
func (c *Config) validateDeadLetters(inFile func(string) bool) problems {
	var ps problems
	files := c.deadLetterFiles()
	buffer := ""
	if c.Gateway.StateDir != "" {
		buffer = absPath(filepath.Join(c.Gateway.StateDir, "buffer"))
	}
	for i, f := range files {
		what := f.path
		if !inFile(f.key) {
			what = "the default " + f.path
		}
		if buffer != "" && within(buffer, f.abs) {
			ps.add(f.key, 0, "%s is inside %s, which belongs to the buffer; keep dead letters elsewhere", what, filepath.Join(c.Gateway.StateDir, "buffer"))
		}
		for _, g := range files[:i] { // the first clash only: one problem per key
			clash := ""
			switch {
			case f.abs == g.abs:
				clash = "is also the dead-letter file of " + g.key
			case rotatesTo(g, f.abs):
				clash = "is where the dead-letter file of " + g.key + " rotates to"
			case rotatesTo(f, g.abs):
				clash = "rotates to " + g.path + ", the dead-letter file of " + g.key
			default:
				continue
			}
			ps.add(f.key, 0, "%s %s; each sink and mqtt source needs its own", what, clash)
			break
		}
	}
	return ps
}

// within reports whether path is dir or inside it; both are clean and absolute.
func within(dir, path string) bool {
	rel, err := filepath.Rel(dir, path)
	return err == nil && rel != ".." && !strings.HasPrefix(rel, ".."+string(filepath.Separator))
}

// rotatesTo reports whether path is one of f's rotated files, <f>.1 ... <f>.<keep>.
func rotatesTo(f deadLetterFile, path string) bool {
	rest, ok := strings.CutPrefix(path, f.abs+".")
	if !ok {
		return false
	}
	n, err := strconv.Atoi(rest)
	return err == nil && n >= 1 && n <= f.keep && strconv.Itoa(n) == rest
}

// checkDeadLetterFiles refuses a dead-letter path that exists and is not a regular
// file (or a link to one): a named pipe, a device, a socket or a directory would make
// every write fail at run time (gateway/deadletter refuses to open it), so nothing
// could be set aside. It stats each path and opens none. A path that does not exist
// yet is fine: it is created on the first write.
func (c *Config) checkDeadLetterFiles(inFile func(string) bool) problems {
	var ps problems
	for _, f := range c.deadLetterFiles() {
		fi, err := os.Stat(f.path)
		if err != nil {
			continue // missing (created when needed), or not ours to judge here
		}
		if err := regular.Check(f.path, fi.Mode()); err != nil {
			if inFile(f.key) {
				ps.add(f.key, 0, "%v", err)
			} else {
				ps.add(f.key, 0, "the default %v", err)
			}
		}
	}
	return ps
}
