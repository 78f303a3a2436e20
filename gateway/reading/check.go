package reading

import (
	"fmt"
	"strings"
)

// CheckQuantity reports why name cannot be the quantity of a source's reading: it is
// not in the catalog (the error suggests a close catalog name), or it is one of the
// gateway's own health quantities. The config package and drivers/mqttsub both use it,
// so that envgate check and the driver say the same.
func CheckQuantity(name string) error {
	q, ok := Lookup(name)
	switch {
	case !ok:
		return unknownQuantity(name)
	case q.Domain == Health:
		return fmt.Errorf("%q is one of the gateway's own health quantities, not a measurement", name)
	}
	return nil
}

// unknownQuantity explains an unknown quantity name, suggesting the closest catalog
// name within edit distance 2 (ignoring case), or listing them all.
func unknownQuantity(name string) error {
	var names []string
	best, bestDist := "", 3
	for _, q := range catalog {
		if q.Domain == Health {
			continue
		}
		names = append(names, q.Name)
		if d := EditDistance(strings.ToLower(name), q.Name, bestDist); d < bestDist {
			best, bestDist = q.Name, d
		}
	}
	if best != "" {
		return fmt.Errorf("unknown quantity %q (did you mean %q?)", name, best)
	}
	return fmt.Errorf("unknown quantity %q (known: %s; see docs/data-model.md)", name, strings.Join(names, ", "))
}

// EditDistance returns the Levenshtein distance between a and b, or limit when it is
// at least limit (long names are not compared in full): one row of the dynamic
// programme at a time. It backs the "did you mean" suggestions for quantities and
// config keys.
func EditDistance(a, b string, limit int) int {
	ra, rb := []rune(a), []rune(b)
	if abs := len(ra) - len(rb); abs >= limit || -abs >= limit {
		return limit
	}
	row := make([]int, len(rb)+1)
	for j := range row {
		row[j] = j
	}
	for i, ca := range ra {
		diag := row[0]
		row[0] = i + 1
		for j, cb := range rb {
			sub := diag
			if ca != cb {
				sub++
			}
			diag = row[j+1]
			row[j+1] = min(row[j+1]+1, row[j]+1, sub)
		}
	}
	return min(row[len(rb)], limit)
}
