package packaging

import (
	"archive/tar"
	"bytes"
	"crypto/md5"
	"debug/elf"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"os/exec"
	"path/filepath"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"syscall"
	"testing"

	"github.com/envgate/envgate/internal/testsvc"
)

const (
	conffile = "/etc/envgate/envgate.yaml"
	v1       = "1.0.0"
	v2       = "1.0.1"
)

// TestPackage builds the three packages once with scripts/package.sh, checks the
// control data and contents of each, and takes the amd64 one through install, upgrade
// with a modified conffile, and purge in a scratch root: dpkg --root with
// --force-script-chrootless runs the maintainer scripts outside a chroot with
// DPKG_ROOT set, and they then touch only files under that root.
func TestPackage(t *testing.T) {
	for _, tool := range []string{"dpkg", "dpkg-deb", "systemd-sysusers", "systemd-tmpfiles", "systemctl"} {
		if _, err := exec.LookPath(tool); err != nil {
			testsvc.SkipOrFail(t, "%s not found: run scripts/install-deps.sh", tool)
		}
	}
	if os.Geteuid() != 0 {
		// dpkg must create root-owned files and the scripts chown /var/lib/envgate.
		testsvc.SkipOrFail(t, "the package test installs into a scratch root and needs to run as root")
	}
	dist := t.TempDir()
	cmd := exec.Command("../scripts/package.sh", v1)
	cmd.Env = append(os.Environ(), "ENVGATE_DIST="+dist)
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("scripts/package.sh %s: %v\n%s", v1, err, out)
	}
	debs := map[string]string{}
	for _, arch := range []string{"amd64", "arm64", "armhf"} {
		debs[arch] = filepath.Join(dist, fmt.Sprintf("envgate_%s_%s.deb", v1, arch))
	}

	for arch, deb := range debs {
		t.Run("contents/"+arch, func(t *testing.T) { checkContents(t, deb, arch) })
	}
	hostPasswd := readFile(t, "/etc/passwd")
	t.Run("lifecycle/amd64", func(t *testing.T) { lifecycle(t, debs["amd64"]) })
	t.Run("preseeded-invalid/amd64", func(t *testing.T) { preseededInvalid(t, debs["amd64"]) })
	if readFile(t, "/etc/passwd") != hostPasswd {
		t.Errorf("installing into a scratch root changed this machine's /etc/passwd")
	}
}

// preseededInvalid installs deb where an operator already put a config that envgate
// check rejects: the postinst enables the service, does not start it, and prints the
// problems.
func preseededInvalid(t *testing.T, deb string) {
	root := scratchRoot(t)
	conf := filepath.Join(root, conffile)
	if err := os.MkdirAll(filepath.Dir(conf), 0o755); err != nil {
		t.Fatal(err)
	}
	bad := "gateway:\n  id: box-1\n  listen: 127.0.0.1:9273\n  shutdown_timeout: -1s\n"
	if err := os.WriteFile(conf, []byte(bad), 0o644); err != nil {
		t.Fatal(err)
	}
	out := dpkgRoot(t, root, nil, "--force-confold", "-i", deb)
	for _, s := range []string{"enabled but not started: 'envgate check -c " + conffile + "' failed:", "shutdown_timeout"} {
		if !strings.Contains(out, s) {
			t.Errorf("install over an invalid config: output lacks %q:\n%s", s, out)
		}
	}
	if got := readFile(t, conf); got != bad {
		t.Errorf("install replaced the operator's config")
	}
	if _, err := os.Lstat(filepath.Join(root, "/etc/systemd/system/multi-user.target.wants/envgate.service")); err != nil {
		t.Errorf("service not enabled: %v", err)
	}
}

// dpkgRoot runs dpkg on the scratch root with the maintainer scripts outside a chroot
// and returns its output; env is added to the environment.
func dpkgRoot(t *testing.T, root string, env []string, args ...string) string {
	t.Helper()
	args = append([]string{"--root=" + root, "--force-not-root", "--force-script-chrootless",
		"--force-depends", "--log=/dev/null"}, args...)
	cmd := exec.Command("dpkg", args...)
	cmd.Env = append(os.Environ(), env...)
	out, err := cmd.CombinedOutput()
	if err != nil {
		t.Fatalf("dpkg %s: %v\n%s", strings.Join(args, " "), err, out)
	}
	return string(out)
}

// checkContents checks the control fields, the conffiles, the maintainer scripts and
// the files of one package, and that its binary is built for arch.
func checkContents(t *testing.T, deb, arch string) {
	for field, want := range map[string]string{
		"Package": "envgate", "Version": v1, "Architecture": arch, "Depends": "systemd",
	} {
		if got := strings.TrimSpace(run(t, "dpkg-deb", "-f", deb, field)); got != want {
			t.Errorf("dpkg-deb -f %s %s = %q, want %q", filepath.Base(deb), field, got, want)
		}
	}
	info := run(t, "dpkg-deb", "-I", deb)
	for _, s := range []string{"conffiles", "postinst", "prerm", "postrm", "md5sums"} {
		if !regexp.MustCompile(`(?m)^\s+\d+ bytes,\s+\d+ lines\s+\*?\s+` + s + `\b`).MatchString(info) {
			t.Errorf("dpkg-deb -I %s: no %s in\n%s", filepath.Base(deb), s, info)
		}
	}
	if got := strings.TrimSpace(run(t, "dpkg-deb", "-I", deb, "conffiles")); got != conffile {
		t.Errorf("conffiles = %q, want %q", got, conffile)
	}

	// dpkg-deb -c lines: mode owner/group size date time ./path
	files := map[string]string{} // path → "mode owner"
	for line := range strings.Lines(run(t, "dpkg-deb", "-c", deb)) {
		f := strings.Fields(line)
		if len(f) < 6 {
			continue
		}
		files[strings.TrimPrefix(f[5], ".")] = f[0] + " " + f[1]
	}
	for path, want := range map[string]string{
		"/usr/bin/envgate":                                    "-rwxr-xr-x root/root",
		"/lib/systemd/system/envgate.service":                 "-rw-r--r-- root/root",
		conffile:                                              "-rw-r--r-- root/root",
		"/usr/share/envgate/envgate.yaml":                     "-rw-r--r-- root/root",
		"/usr/lib/sysusers.d/envgate.conf":                    "-rw-r--r-- root/root",
		"/usr/lib/tmpfiles.d/envgate.conf":                    "-rw-r--r-- root/root",
		"/usr/share/doc/envgate/copyright":                    "-rw-r--r-- root/root",
		"/usr/share/doc/envgate/install.md":                   "-rw-r--r-- root/root",
		"/usr/share/doc/envgate/README.md":                    "-rw-r--r-- root/root",
		"/usr/share/doc/envgate/examples/canal-district.yaml": "-rw-r--r-- root/root",
	} {
		if got, ok := files[path]; !ok {
			t.Errorf("%s: %s missing", filepath.Base(deb), path)
		} else if got != want {
			t.Errorf("%s: %s is %q, want %q", filepath.Base(deb), path, got, want)
		}
	}
	rules, _ := filepath.Glob("../systemd/*.rules")
	for _, r := range rules {
		p := "/usr/share/doc/envgate/examples/" + filepath.Base(r)
		if _, ok := files[p]; !ok {
			t.Errorf("%s: %s missing", filepath.Base(deb), p)
		}
	}
	if _, ok := files["/var/lib/envgate/"]; ok {
		t.Errorf("%s ships /var/lib/envgate; the postinst creates it, so that dpkg never removes the buffer", filepath.Base(deb))
	}

	bin := fileFromDeb(t, deb, "./usr/bin/envgate")
	f, err := elf.NewFile(bytes.NewReader(bin))
	if err != nil {
		t.Fatalf("%s: /usr/bin/envgate: %v", filepath.Base(deb), err)
	}
	want := map[string]elf.Machine{"amd64": elf.EM_X86_64, "arm64": elf.EM_AARCH64, "armhf": elf.EM_ARM}[arch]
	if f.Machine != want {
		t.Errorf("%s: /usr/bin/envgate is for %v, want %v", filepath.Base(deb), f.Machine, want)
	}
	if f.Section(".interp") != nil {
		t.Errorf("%s: /usr/bin/envgate is dynamically linked (built without CGO_ENABLED=0?)", filepath.Base(deb))
	}
	if f.Section(".symtab") != nil {
		t.Errorf("%s: /usr/bin/envgate has a symbol table (built without -s?)", filepath.Base(deb))
	}
}

// lifecycle installs deb into a scratch root, upgrades it to a repacked v2 whose
// default config differs after the installed config was edited, and purges it.
func lifecycle(t *testing.T, deb string) {
	root := scratchRoot(t)
	dpkg := func(env []string, args ...string) string {
		t.Helper()
		return dpkgRoot(t, root, env, args...)
	}
	in := func(p string) string { return filepath.Join(root, p) }

	// Install: user in dialout, state dir owned by it, enabled, not started.
	out := dpkg(nil, "-i", deb)
	if !strings.Contains(out, "enabled but not started: "+conffile+" is still the packaged default") {
		t.Errorf("install did not say why it did not start the service:\n%s", out)
	}
	uid, gid := account(t, root)
	if got := groupMembers(t, root, "dialout"); !slices.Contains(got, "envgate") {
		t.Errorf("group dialout has members %q, want envgate among them", got)
	}
	checkOwner(t, in("/var/lib/envgate"), uid, gid, 0o750)
	if dst, err := os.Readlink(in("/etc/systemd/system/multi-user.target.wants/envgate.service")); err != nil {
		t.Errorf("service not enabled: %v", err)
	} else if dst != "/lib/systemd/system/envgate.service" {
		t.Errorf("enable symlink points to %s", dst)
	}
	packaged, err := os.ReadFile("envgate.yaml")
	if err != nil {
		t.Fatal(err)
	}
	if got := readFile(t, in(conffile)); got != string(packaged) {
		t.Errorf("installed %s differs from packaging/envgate.yaml", conffile)
	}
	bin := in("/usr/bin/envgate")
	if got := run(t, bin, "version"); got != "envgate "+v1+"\n" {
		t.Errorf("envgate version = %q, want %q", got, "envgate "+v1)
	}
	if got := run(t, bin, "check", "-c", in(conffile)); !strings.Contains(got, ": ok (gateway envgate-box") {
		t.Errorf("envgate check on the installed config: %s", got)
	}
	checkCommentedExamples(t, bin, string(packaged))

	// Upgrade to a v2 whose packaged config changed, after the operator edited theirs:
	// dpkg keeps the edited file and puts v2's next to it (--force-confold answers the
	// prompt an operator sees, docs/install.md).
	edited := strings.Replace(string(packaged), "id: envgate-box", "id: canal-box-017", 1)
	if err := os.WriteFile(in(conffile), []byte(edited), 0o644); err != nil {
		t.Fatal(err)
	}
	buffered := in("/var/lib/envgate/buffer-survives")
	if err := os.WriteFile(buffered, []byte("readings"), 0o640); err != nil {
		t.Fatal(err)
	}
	deb2, newDefault := repack(t, deb, v2)
	out = dpkg(nil, "--force-confold", "-i", deb2)
	if !strings.Contains(out, "upgraded; not restarted because systemd is not running here") {
		t.Errorf("upgrade output does not say what happened to the service:\n%s", out)
	}
	if got := readFile(t, in(conffile)); got != edited {
		t.Errorf("upgrade replaced the edited %s:\n%s", conffile, got)
	}
	if got := readFile(t, in(conffile+".dpkg-dist")); got != newDefault {
		t.Errorf("%s.dpkg-dist is not v2's default:\n%s", conffile, got)
	}
	if got := run(t, bin, "version"); got != "envgate "+v2+"\n" {
		t.Errorf("after upgrade envgate version = %q, want %q", got, "envgate "+v2)
	}
	if got := run(t, bin, "check", "-c", in(conffile)); !strings.Contains(got, ": ok (gateway canal-box-017") {
		t.Errorf("envgate check on the kept config: %s", got)
	}
	if u, g := account(t, root); u != uid || g != gid {
		t.Errorf("upgrade changed the envgate account from %d:%d to %d:%d", uid, gid, u, g)
	}
	checkOwner(t, in("/var/lib/envgate"), uid, gid, 0o750)

	// Purge keeps the buffer and the user, removes the config and the enablement.
	out = dpkg(nil, "--purge", "envgate")
	for _, s := range []string{"kept /var/lib/envgate", "ENVGATE_PURGE_STATE=1", "kept the system user envgate"} {
		if !strings.Contains(out, s) {
			t.Errorf("purge output lacks %q:\n%s", s, out)
		}
	}
	if _, err := os.Stat(buffered); err != nil {
		t.Errorf("purge removed the buffer: %v", err)
	}
	for _, p := range []string{conffile, conffile + ".dpkg-dist", "/usr/bin/envgate",
		"/etc/systemd/system/multi-user.target.wants/envgate.service"} {
		if _, err := os.Lstat(in(p)); !errors.Is(err, os.ErrNotExist) {
			t.Errorf("after purge %s: %v, want it gone", p, err)
		}
	}
	if u, _ := account(t, root); u != uid {
		t.Errorf("purge changed the envgate user")
	}

	// Installing again reuses the account; purging with ENVGATE_PURGE_STATE=1 removes
	// the state directory too.
	dpkg(nil, "-i", deb)
	if u, g := account(t, root); u != uid || g != gid {
		t.Errorf("reinstall changed the envgate account from %d:%d to %d:%d", uid, gid, u, g)
	}
	out = dpkg([]string{"ENVGATE_PURGE_STATE=1"}, "--purge", "envgate")
	if !strings.Contains(out, "removed /var/lib/envgate") {
		t.Errorf("purge with ENVGATE_PURGE_STATE=1 does not say it removed the state:\n%s", out)
	}
	if _, err := os.Stat(in("/var/lib/envgate")); !errors.Is(err, os.ErrNotExist) {
		t.Errorf("after purge with ENVGATE_PURGE_STATE=1, /var/lib/envgate: %v, want it gone", err)
	}
}

// checkCommentedExamples uncomments the YAML examples of the default config (from
// its "# sinks:" on) and checks them, so that they stay valid as the schema changes.
func checkCommentedExamples(t *testing.T, bin, conf string) {
	t.Helper()
	dir := t.TempDir()
	token := filepath.Join(dir, "influx-token")
	if err := os.WriteFile(token, []byte("secret\n"), 0o600); err != nil {
		t.Fatal(err)
	}
	yamlLine := regexp.MustCompile(`^# ([a-z_]+:|  )`)
	var b strings.Builder
	on := false
	for line := range strings.Lines(conf) {
		on = on || strings.HasPrefix(line, "# sinks:")
		if on && yamlLine.MatchString(line) {
			line = line[2:]
		}
		b.WriteString(line)
	}
	uncommented := strings.ReplaceAll(b.String(), "/etc/envgate/influx-token", token)
	if uncommented == conf || !strings.Contains(uncommented, "\nbuses:\n") {
		t.Fatalf("found no commented examples to check in packaging/envgate.yaml")
	}
	path := filepath.Join(dir, "envgate.yaml")
	if err := os.WriteFile(path, []byte(uncommented), 0o644); err != nil {
		t.Fatal(err)
	}
	if got := run(t, bin, "check", "-c", path); !strings.Contains(got, ": ok (gateway envgate-box, 1 device(s), 1 sink(s))") {
		t.Errorf("the commented examples of packaging/envgate.yaml do not pass envgate check:\n%s\n%s", got, uncommented)
	}
}

// scratchRoot makes an empty root with a dpkg database and the accounts of a fresh
// Debian system that the package relies on (group dialout, gid 20).
func scratchRoot(t *testing.T) string {
	root := t.TempDir()
	for _, d := range []string{"var/lib/dpkg/info", "var/lib/dpkg/updates", "etc"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o755); err != nil {
			t.Fatal(err)
		}
	}
	for p, s := range map[string]string{
		"var/lib/dpkg/status": "",
		"etc/passwd":          "root:x:0:0:root:/root:/bin/sh\n",
		"etc/group":           "root:x:0:\ndialout:x:20:\n",
	} {
		if err := os.WriteFile(filepath.Join(root, p), []byte(s), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	return root
}

// repack turns deb into version v of the package whose default config has one more
// comment line, as a new release that changed it would; it returns the new package
// and its default config.
func repack(t *testing.T, deb, v string) (string, string) {
	dir := t.TempDir()
	tree := filepath.Join(dir, "tree")
	run(t, "dpkg-deb", "-R", deb, tree)
	conf := filepath.Join(tree, conffile)
	newDefault := readFile(t, conf) + "# added in " + v + "\n"
	if err := os.WriteFile(conf, []byte(newDefault), 0o644); err != nil {
		t.Fatal(err)
	}
	control := filepath.Join(tree, "DEBIAN/control")
	c := regexp.MustCompile(`(?m)^Version: .*$`).ReplaceAllString(readFile(t, control), "Version: "+v)
	if err := os.WriteFile(control, []byte(c), 0o644); err != nil {
		t.Fatal(err)
	}
	sum := md5.Sum([]byte(newDefault))
	md5sums := filepath.Join(tree, "DEBIAN/md5sums")
	m := regexp.MustCompile(`(?m)^[0-9a-f]{32}(  etc/envgate/envgate.yaml)$`).
		ReplaceAllString(readFile(t, md5sums), hex.EncodeToString(sum[:])+"$1")
	if err := os.WriteFile(md5sums, []byte(m), 0o644); err != nil {
		t.Fatal(err)
	}
	// The new binary reports the new version, as package.sh would build it.
	bin := filepath.Join(tree, "usr/bin/envgate")
	cmd := exec.Command("go", "build", "-trimpath", "-ldflags", "-s -w -X main.version="+v, "-o", bin, "../cmd/envgate")
	cmd.Env = append(os.Environ(), "CGO_ENABLED=0", "GOOS=linux", "GOARCH=amd64")
	if out, err := cmd.CombinedOutput(); err != nil {
		t.Fatalf("go build: %v\n%s", err, out)
	}
	out := filepath.Join(dir, fmt.Sprintf("envgate_%s_amd64.deb", v))
	run(t, "dpkg-deb", "--root-owner-group", "-b", tree, out)
	return out, newDefault
}

// account returns the uid and gid of the envgate user in root's /etc/passwd.
func account(t *testing.T, root string) (uid, gid int) {
	t.Helper()
	for line := range strings.Lines(readFile(t, filepath.Join(root, "etc/passwd"))) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) == 7 && f[0] == "envgate" {
			uid, _ = strconv.Atoi(f[2])
			gid, _ = strconv.Atoi(f[3])
			if uid == 0 || uid >= 1000 || f[6] != "/usr/sbin/nologin" {
				t.Errorf("envgate user %q: want a system uid (1-999) and no login shell", line)
			}
			return uid, gid
		}
	}
	t.Fatalf("no envgate user in %s/etc/passwd", root)
	return 0, 0
}

// groupMembers returns the members of group name in root's /etc/group.
func groupMembers(t *testing.T, root, name string) []string {
	t.Helper()
	for line := range strings.Lines(readFile(t, filepath.Join(root, "etc/group"))) {
		f := strings.Split(strings.TrimSpace(line), ":")
		if len(f) == 4 && f[0] == name {
			return strings.Split(f[3], ",")
		}
	}
	t.Fatalf("no group %s in %s/etc/group", name, root)
	return nil
}

func checkOwner(t *testing.T, path string, uid, gid int, mode os.FileMode) {
	t.Helper()
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	st := fi.Sys().(*syscall.Stat_t)
	if int(st.Uid) != uid || int(st.Gid) != gid || fi.Mode().Perm() != mode {
		t.Errorf("%s: owner %d:%d mode %v, want %d:%d %v", path, st.Uid, st.Gid, fi.Mode().Perm(), uid, gid, mode)
	}
}

// fileFromDeb returns the contents of one file of deb's data archive.
func fileFromDeb(t *testing.T, deb, name string) []byte {
	t.Helper()
	cmd := exec.Command("dpkg-deb", "--fsys-tarfile", deb)
	var stdout bytes.Buffer
	cmd.Stdout = &stdout
	if err := cmd.Run(); err != nil {
		t.Fatalf("dpkg-deb --fsys-tarfile %s: %v", deb, err)
	}
	tr := tar.NewReader(&stdout)
	for {
		h, err := tr.Next()
		if err != nil {
			t.Fatalf("%s: %s not found: %v", deb, name, err)
		}
		if h.Name == name {
			b, err := io.ReadAll(tr)
			if err != nil {
				t.Fatal(err)
			}
			return b
		}
	}
}

func readFile(t *testing.T, path string) string {
	t.Helper()
	b, err := os.ReadFile(path)
	if err != nil {
		t.Fatal(err)
	}
	return string(b)
}

// run runs a command and returns its standard output, failing the test on an error.
func run(t *testing.T, name string, args ...string) string {
	t.Helper()
	cmd := exec.Command(name, args...)
	var stderr bytes.Buffer
	cmd.Stderr = &stderr
	out, err := cmd.Output()
	if err != nil {
		t.Fatalf("%s %s: %v\n%s%s", name, strings.Join(args, " "), err, out, stderr.Bytes())
	}
	return string(out)
}
