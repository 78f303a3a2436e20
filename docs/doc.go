// Package docs holds envgate's documentation. It has no code: its test checks that the
// code and documents of the repository cite only documents inside it, and that every
// citation of docs/standards.md and docs/engineering-notes.md names a section that
// exists.
package docs
