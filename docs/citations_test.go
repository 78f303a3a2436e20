package docs

import (
	"bytes"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"
	"regexp"
	"strings"
	"testing"
)

// The in-repository references and where code may cite them.
var references = map[string]string{
	"standards":         "standards.md",
	"engineering-notes": "engineering-notes.md",
}

// outside are strings that point at documents a person who clones the repository does
// not have: the research notes the two references replaced, and the shared folder they
// lived in. They are split so that this file does not match itself.
var outside = []string{
	"tech" + "-notes",
	"shared" + "/reference",
	"../" + "shared",
}

// A citation of the standards reference by its short name or file name, possibly broken
// across a line and a comment marker (see TestCheckCatches). Group 1 is the path in front
// of it, which must be "docs/".
var standardsCite = regexp.MustCompile(`([\w./-]*)standards(?:\.md)?[ \t]*(?:\n[ \t]*(?://|#)?[ \t]*)?§`)

// A citation of an in-repository reference: group 1 the file, group 2 the section.
var refCite = regexp.MustCompile(`docs/(standards|engineering-notes)\.md[ \t]*(?:\n[ \t]*(?://|#)?[ \t]*)?§[ \t]*(\d+(?:\.\d+)*[a-z]?)`)

// A numbered heading: "## 0. Editions", "### 1.1 GB 3096", "### 2.9a Monthly".
var heading = regexp.MustCompile(`(?m)^#+ (\d+(?:\.\d+)*[a-z]?)[. ]`)

// sections returns the section numbers of a reference document.
func sections(text string) map[string]bool {
	s := map[string]bool{}
	for _, m := range heading.FindAllStringSubmatch(text, -1) {
		s[m[1]] = true
	}
	return s
}

// check returns the problems of one file's text: citations of documents outside the
// repository, and citations of a section the reference does not have.
func check(name, text string, secs map[string]map[string]bool) []string {
	var errs []string
	line := func(off int) int { return 1 + strings.Count(text[:off], "\n") }
	for _, o := range outside {
		for off := 0; ; {
			i := strings.Index(text[off:], o)
			if i < 0 {
				break
			}
			off += i
			errs = append(errs, fmt.Sprintf("%s:%d: cites %q, which is not in the repository", name, line(off), o))
			off += len(o)
		}
	}
	for _, m := range standardsCite.FindAllStringSubmatchIndex(text, -1) {
		if prefix := text[m[2]:m[3]]; prefix != "docs/" {
			errs = append(errs, fmt.Sprintf("%s:%d: %q: cite docs/standards.md §…", name, line(m[0]), text[m[0]:m[1]]))
		}
	}
	for _, m := range refCite.FindAllStringSubmatchIndex(text, -1) {
		ref, sec := text[m[2]:m[3]], text[m[4]:m[5]]
		if !secs[ref][sec] {
			errs = append(errs, fmt.Sprintf("%s:%d: docs/%s has no section %s", name, line(m[0]), references[ref], sec))
		}
	}
	return errs
}

func loadSections(t *testing.T) map[string]map[string]bool {
	t.Helper()
	secs := map[string]map[string]bool{}
	for key, file := range references {
		b, err := os.ReadFile(file)
		if err != nil {
			t.Fatal(err)
		}
		secs[key] = sections(string(b))
		if len(secs[key]) == 0 {
			t.Fatalf("%s: no numbered sections found", file)
		}
	}
	return secs
}

// TestCitationsStayInRepository reads every text file of the module and fails on a
// citation of a document outside the repository (the old research notes, the shared
// folder) or of a section the in-repository references do not have.
func TestCitationsStayInRepository(t *testing.T) {
	secs := loadSections(t)
	root, err := filepath.Abs("..")
	if err != nil {
		t.Fatal(err)
	}
	if _, err := os.Stat(filepath.Join(root, "go.mod")); err != nil {
		t.Fatalf("module root not found above docs/: %v", err)
	}
	files := 0
	err = filepath.WalkDir(root, func(path string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		if d.IsDir() {
			if n := d.Name(); path != root && (n == ".git" || n == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !d.Type().IsRegular() {
			return nil
		}
		info, err := d.Info()
		if err != nil || info.Size() > 4<<20 {
			return err
		}
		b, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		if bytes.IndexByte(b[:min(len(b), 8192)], 0) >= 0 { // binary
			return nil
		}
		rel, _ := filepath.Rel(root, path)
		files++
		for _, e := range check(filepath.ToSlash(rel), string(b), secs) {
			t.Error(e)
		}
		return nil
	})
	if err != nil {
		t.Fatal(err)
	}
	if files < 100 {
		t.Fatalf("only %d text files under %s: is this the module root?", files, root)
	}
}

// TestCheckCatches shows that check finds each kind of bad citation and accepts good ones.
func TestCheckCatches(t *testing.T) {
	secs := loadSections(t)
	bad := map[string]string{
		"short name":          "// the breakpoints (standards \u00a72.1)",
		"file name":           "// the breakpoints (standards.md \u00a72.1)",
		"across lines":        "// of the same pollutant (standards\n// \u00a72.1, \u00a72.10)",
		"YAML comment":        "# levels (standards\n# \u00a71.3)",
		"old notes":           "// the frame (" + outside[0] + " \u00a73.1)",
		"shared folder":       "see " + outside[2] + "/reference/x.md",
		"missing section":     "// docs/standards.md \u00a79.9",
		"missing section, ln": "// docs/engineering-notes.md\n// \u00a77",
		"wrong folder":        "// reference/standards.md \u00a72.1",
	}
	for name, text := range bad {
		if errs := check("x.go", text, secs); len(errs) == 0 {
			t.Errorf("%s: %q passes", name, text)
		}
	}
	good := []string{
		"// the breakpoints (docs/standards.md \u00a72.1, \u00a72.10)",
		"// (docs/standards.md\n// \u00a72.1)",
		"// docs/standards.md \u00a70 \"Implementation rule\"",
		"// docs/standards.md \u00a72.9a [U]",
		"// docs/standards.md \u00a72.8–2.9.",
		"// docs/engineering-notes.md \u00a74: float32",
		"// the standards do not fix the period",
		"// GB 3096-2008 \u00a73.2 and MQTT 3.1.1 \u00a74.7",
	}
	for _, text := range good {
		if errs := check("x.go", text, secs); len(errs) != 0 {
			t.Errorf("%q: %v", text, errs)
		}
	}
}
