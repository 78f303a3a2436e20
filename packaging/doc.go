// Package packaging holds the Debian package of envgate: its nfpm description
// (nfpm.yaml), maintainer scripts, default config, sysusers.d and tmpfiles.d files,
// and the test that builds the packages with scripts/package.sh and installs them
// into a scratch root. docs/install.md describes what the package does.
package packaging
