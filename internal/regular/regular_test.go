package regular

import (
	"os"
	"path/filepath"
	"strings"
	"syscall"
	"testing"
)

// Open refuses a named pipe at once (a plain open would wait for a writer forever), a
// directory and a device, each named; a regular file opens, blocking again.
func TestOpenRefusesWhatIsNotRegular(t *testing.T) {
	dir := t.TempDir()
	fifo := filepath.Join(dir, "fifo")
	if err := syscall.Mkfifo(fifo, 0o600); err != nil {
		t.Fatal(err)
	}
	file := filepath.Join(dir, "file")
	if err := os.WriteFile(file, []byte("x"), 0o600); err != nil {
		t.Fatal(err)
	}
	for _, tc := range []struct {
		name, want string
		flag       int
	}{
		{fifo, "is a named pipe (FIFO), not a regular file", os.O_RDONLY},
		{dir, "is a directory, not a regular file", os.O_RDONLY},
		{"/dev/null", "is a device, not a regular file", os.O_WRONLY | os.O_APPEND},
	} {
		f, err := Open(tc.name, tc.flag, 0)
		if err == nil || !strings.Contains(err.Error(), tc.name+" "+tc.want) {
			t.Errorf("Open(%s) = %v, %v; want %q", tc.name, f, err, tc.want)
		}
	}
	f, err := Open(file, os.O_RDONLY, 0)
	if err != nil {
		t.Fatal(err)
	}
	defer f.Close()
	rc, err := f.SyscallConn()
	if err != nil {
		t.Fatal(err)
	}
	var flags int
	var ferr error
	if err := rc.Control(func(fd uintptr) { flags, ferr = fcntlFlags(fd) }); err != nil || ferr != nil {
		t.Fatalf("F_GETFL: %v, %v", err, ferr)
	}
	if flags&syscall.O_NONBLOCK != 0 {
		t.Errorf("regular file left non-blocking")
	}
}

// fcntlFlags returns the file status flags of fd.
func fcntlFlags(fd uintptr) (int, error) {
	r, _, errno := syscall.Syscall(syscall.SYS_FCNTL, fd, syscall.F_GETFL, 0)
	if errno != 0 {
		return 0, errno
	}
	return int(r), nil
}
