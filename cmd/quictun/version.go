package main

import (
	"fmt"
	"io"
	"regexp"
	"runtime"
	"runtime/debug"
	"strings"
	"time"

	"github.com/urfave/cli/v2"

	quic "github.com/quictun/quictun/third_party/quic-go"
)

// buildVersion is what `quictun version` reports about the binary.
type buildVersion struct {
	// Version is the module version when it is a release (go install
	// …@v1.2.0, or a build of a clean checkout at that tag); "devel"
	// otherwise.
	Version string
	// Commit is the full commit hash, "" when the build recorded none.
	Commit string
	// Time is the commit's time; zero when unknown.
	Time time.Time
	// Modified reports uncommitted changes in the checkout it was built from.
	Modified bool
	// Go is the Go toolchain and platform, e.g. "go1.26.8 linux/amd64".
	Go string
	// QUICGo and PatchSHA256 describe the vendored quic-go.
	QUICGo, PatchSHA256 string
}

// pseudoVersion matches a Go module pseudo-version (vX.0.0-yyyymmddhhmmss-
// abcdef123456, or vX.Y.Z-pre.0.yyyymmddhhmmss-…): `go install …@commit`
// and, since Go 1.24, `go build` in a checkout that is not at a tag
// stamp one. Groups: time, short commit.
var pseudoVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+-(?:.*\.)?([0-9]{14})-([0-9a-f]{12})(?:\+.*)?$`)

// releaseVersion matches a release tag as a module version: no
// pre-release counter built from a commit, no +dirty.
var releaseVersion = regexp.MustCompile(`^v[0-9]+\.[0-9]+\.[0-9]+(-[0-9A-Za-z.-]+)?$`)

// Set with -ldflags -X by the Makefile, from git, for the builds the go
// command stamps no VCS information into although they come from a
// checkout: a git worktree (the go command looks for a .git directory,
// and a worktree has a .git file) and GOFLAGS=-buildvcs=false. They are
// used only when the build info has no vcs.revision.
var (
	ldCommit   string // full commit hash
	ldTime     string // commit time, RFC 3339
	ldModified string // "true" if the checkout had uncommitted changes
)

// readBuildVersion reads bi, the binary's build info (nil when it has
// none). A build from a git checkout (go build with VCS stamping, the
// default outside this repository's CI) records vcs.revision, vcs.time and
// vcs.modified; a build of a module version (go install …@v1.2.0 or
// …@commit) records only that version; go run and -buildvcs=false builds
// record neither, and then the commit is unknown.
func readBuildVersion(bi *debug.BuildInfo) buildVersion {
	v := buildVersion{
		Version:     "devel",
		Go:          runtime.Version() + " " + runtime.GOOS + "/" + runtime.GOARCH,
		QUICGo:      quic.UpstreamVersion,
		PatchSHA256: quic.PatchSHA256,
	}
	if bi == nil {
		bi = &debug.BuildInfo{}
	}
	if bi.GoVersion != "" {
		v.Go = bi.GoVersion + " " + runtime.GOOS + "/" + runtime.GOARCH
	}
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			v.Commit = s.Value
		case "vcs.time":
			v.Time, _ = time.Parse(time.RFC3339, s.Value)
		case "vcs.modified":
			v.Modified = s.Value == "true"
		}
	}
	if v.Commit == "" && ldCommit != "" {
		v.Commit, v.Modified = ldCommit, ldModified == "true"
		v.Time, _ = time.Parse(time.RFC3339, ldTime)
	}
	mv := bi.Main.Version
	if m := pseudoVersion.FindStringSubmatch(mv); m != nil {
		// The pseudo-version names the commit even where no vcs.*
		// setting does (go install …@commit).
		if v.Commit == "" {
			v.Commit = m[2]
		}
		if v.Time.IsZero() {
			v.Time, _ = time.Parse("20060102150405", m[1])
		}
	} else if releaseVersion.MatchString(mv) {
		v.Version = mv
	}
	if strings.HasSuffix(mv, "+dirty") {
		v.Modified = true
	}
	return v
}

// shortCommit is the first 12 hex digits of a commit, as pseudo-versions
// write it.
func shortCommit(c string) string {
	if len(c) > 12 {
		return c[:12]
	}
	return c
}

// Short is the one-line version: "v1.2.0", "devel 0123456789ab",
// "devel 0123456789ab+modified", or "devel" when the commit is unknown.
func (v buildVersion) Short() string {
	s := v.Version
	if v.Version == "devel" && v.Commit != "" {
		s += " " + shortCommit(v.Commit)
		if v.Modified {
			s += "+modified"
		}
	}
	return s
}

// write prints the report of `quictun version` and `quictun --version`.
func (v buildVersion) write(w io.Writer) {
	fmt.Fprintf(w, "quictun %s\n", v.Short())
	switch {
	case v.Commit == "":
		fmt.Fprintln(w, "  commit:  unknown (built without VCS information: go run, -buildvcs=false, or not from a git checkout)")
	default:
		line := "  commit:  " + v.Commit
		if !v.Time.IsZero() {
			line += " (" + v.Time.UTC().Format(time.RFC3339) + ")"
		}
		if v.Modified {
			line += ", with uncommitted changes"
		}
		fmt.Fprintln(w, line)
	}
	fmt.Fprintf(w, "  go:      %s\n", v.Go)
	fmt.Fprintf(w, "  quic-go: %s + third_party/quic-go.patch (sha256 %s)\n", v.QUICGo, v.PatchSHA256)
}

// thisVersion is the version of the running binary.
func thisVersion() buildVersion {
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		bi = nil
	}
	return readBuildVersion(bi)
}

func init() {
	// The App's Version turns on --version (-v); this printer makes it
	// print the same report as `quictun version`.
	cli.VersionPrinter = func(c *cli.Context) { thisVersion().write(c.App.Writer) }
}

func versionCommand() *cli.Command {
	return &cli.Command{
		Name:  "version",
		Usage: "print the version, commit, Go version and quic-go version of this binary",
		Description: `Prints what this binary was built from, as quictun --version does: the
release version (or "devel" and the commit for a build that is not a
release), the commit and its date, whether the checkout had uncommitted
changes, the Go toolchain, and the upstream quic-go release with the
SHA-256 of third_party/quic-go.patch applied to it. A binary built with go
run or -buildvcs=false has no commit to report.`,
		Action: func(c *cli.Context) error {
			if c.Args().Present() {
				return usageError{fmt.Errorf("version takes no arguments, got %q", c.Args().Slice())}
			}
			thisVersion().write(c.App.Writer)
			return nil
		},
	}
}
