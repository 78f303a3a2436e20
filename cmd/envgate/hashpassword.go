package main

import (
	"bufio"
	"flag"
	"fmt"
	"io"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
	"golang.org/x/sys/unix"
)

// cmdHashPassword reads a password, the first line of stdin, and prints its bcrypt
// hash for basic_auth_users of the web config file (gateway.web_config_file). On a
// terminal it asks for the password without echoing it.
func cmdHashPassword(args []string, stdin io.Reader, stdout, stderr io.Writer) int {
	fs := flag.NewFlagSet("hash-password", flag.ContinueOnError)
	fs.SetOutput(stderr)
	cost := fs.Int("cost", bcrypt.DefaultCost, fmt.Sprintf("bcrypt cost, %d to %d; each step doubles the time a login takes", bcrypt.MinCost, bcrypt.MaxCost))
	if err := fs.Parse(args); err != nil {
		return 2
	}
	if fs.NArg() > 0 || *cost < bcrypt.MinCost || *cost > bcrypt.MaxCost {
		fmt.Fprintf(stderr, "envgate hash-password: usage: envgate hash-password [-cost N] < password (N from %d to %d)\n", bcrypt.MinCost, bcrypt.MaxCost)
		return 2
	}
	if f, ok := stdin.(*os.File); ok {
		if restore, err := noEcho(f); err == nil {
			fmt.Fprint(stderr, "password: ")
			defer func() { restore(); fmt.Fprintln(stderr) }()
		}
	}
	line, err := bufio.NewReader(io.LimitReader(stdin, 4096)).ReadString('\n')
	if err != nil && err != io.EOF {
		fmt.Fprintf(stderr, "envgate hash-password: read the password: %v\n", err)
		return 1
	}
	password := strings.TrimRight(line, "\r\n")
	if password == "" {
		fmt.Fprintln(stderr, "envgate hash-password: empty password")
		return 1
	}
	// bcrypt uses the first 72 bytes and refuses longer passwords.
	hash, err := bcrypt.GenerateFromPassword([]byte(password), *cost)
	if err != nil {
		fmt.Fprintf(stderr, "envgate hash-password: %v\n", err)
		return 1
	}
	fmt.Fprintln(stdout, string(hash))
	return 0
}

// noEcho turns off the echo of the terminal f and returns how to turn it on again;
// it fails if f is not a terminal.
func noEcho(f *os.File) (restore func(), err error) {
	fd := int(f.Fd())
	old, err := unix.IoctlGetTermios(fd, unix.TCGETS)
	if err != nil {
		return nil, err
	}
	t := *old
	t.Lflag &^= unix.ECHO
	t.Lflag |= unix.ICANON | unix.ISIG
	if err := unix.IoctlSetTermios(fd, unix.TCSETS, &t); err != nil {
		return nil, err
	}
	return func() { _ = unix.IoctlSetTermios(fd, unix.TCSETS, old) }, nil
}
