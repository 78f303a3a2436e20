package dashboards

import (
	"os"
	"regexp"
	"slices"
	"strings"
	"testing"
)

// TestQueriedNamesDocumented checks, without any server, that every envgate metric the
// dashboards query is in docs/metrics.md and every InfluxDB field they select is in
// docs/data-model.md: a renamed metric or field fails here before it blanks a panel.
func TestQueriedNamesDocumented(t *testing.T) {
	read := func(p string) string {
		b, err := os.ReadFile(p)
		if err != nil {
			t.Fatal(err)
		}
		return string(b)
	}
	metricsDoc, modelDoc := read("../docs/metrics.md"), read("../docs/data-model.md")
	metric := regexp.MustCompile(`\benvgate_[a-z0-9_]+`)
	field := regexp.MustCompile(`"([a-z0-9_]+)"`)
	measurement := regexp.MustCompile(`FROM "([a-z]+)"`)
	// Names in InfluxQL double quotes that are not fields: tags, measurements, aliases.
	notFields := []string{"gateway", "site", "device"}
	checked := 0
	for file, b := range loadBoards(t) {
		for _, p := range flatPanels(b.Panels) {
			for _, tg := range p.Targets {
				for _, m := range metric.FindAllString(tg.Expr, -1) {
					name := strings.TrimSuffix(strings.TrimSuffix(strings.TrimSuffix(m, "_bucket"), "_sum"), "_count")
					checked++
					if !strings.Contains(metricsDoc, "`"+name+"`") {
						t.Errorf("%s: panel %q queries %s, not in docs/metrics.md", file, p.Title, m)
					}
				}
				if tg.Query == "" {
					continue
				}
				sel, _, _ := strings.Cut(tg.Query, " FROM ")
				aliases := regexp.MustCompile(`AS "([^"]+)"`).FindAllStringSubmatch(sel, -1)
				for _, m := range field.FindAllStringSubmatch(sel, -1) {
					f := m[1]
					if slices.Contains(notFields, f) || slices.ContainsFunc(aliases, func(a []string) bool { return a[1] == f }) {
						continue
					}
					checked++
					if !strings.Contains(modelDoc, "`"+f+"`") && !documentedPattern(modelDoc, f) {
						t.Errorf("%s: panel %q selects field %s, not in docs/data-model.md", file, p.Title, f)
					}
				}
				for _, m := range measurement.FindAllStringSubmatch(tg.Query, -1) {
					if !strings.Contains(modelDoc, "`"+m[1]+"`") {
						t.Errorf("%s: panel %q reads measurement %s, not in docs/data-model.md", file, p.Title, m[1])
					}
				}
			}
		}
	}
	if checked == 0 {
		t.Fatal("no names found in the dashboards' queries")
	}
}

// documentedPattern accepts the fields docs/data-model.md names by pattern:
// `<p>_1h`, `<p>_minutes_1h`, `<p>_mean` (listed as ph_mean, ...), `class_<param>`.
func documentedPattern(doc, f string) bool {
	for _, suffix := range []string{"_1h", "_minutes_1h", "_1d", "_24h"} {
		if p, ok := strings.CutSuffix(f, suffix); ok && strings.Contains(doc, "`"+p+"`") && strings.Contains(doc, "`<p>"+suffix+"`") {
			return true
		}
	}
	return false
}
