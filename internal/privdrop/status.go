package privdrop

import (
	"fmt"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"syscall"
)

// ThreadCreds are the credentials of one thread, from /proc/self/task/<tid>/status.
type ThreadCreds struct {
	TID int
	// UID and GID are the real IDs.
	UID, GID int
	// SameIDs is true when the effective, saved and filesystem IDs equal the real ones.
	SameIDs bool
	// Groups are the supplementary groups.
	Groups []int
	// Effective, Permitted, Inheritable, Ambient and Bounding are the
	// capability sets, one bit per capability.
	Effective, Permitted, Inheritable, Ambient, Bounding uint64
}

// Threads returns the credentials of every thread of the process.
func Threads() ([]ThreadCreds, error) {
	return threadsOf("/proc/self/task")
}

// ProcessThreads returns the credentials of every thread of process pid.
func ProcessThreads(pid int) ([]ThreadCreds, error) {
	return threadsOf("/proc/" + strconv.Itoa(pid) + "/task")
}

func threadsOf(dir string) ([]ThreadCreds, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	var out []ThreadCreds
	for _, e := range entries {
		tid, err := strconv.Atoi(e.Name())
		if err != nil {
			continue
		}
		b, err := os.ReadFile(filepath.Join(dir, e.Name(), "status"))
		if err != nil {
			if os.IsNotExist(err) || err == syscall.ESRCH {
				continue // the thread ended
			}
			return nil, err
		}
		tc, err := ParseStatus(string(b))
		if err != nil {
			return nil, fmt.Errorf("%s/%s/status: %w", dir, e.Name(), err)
		}
		tc.TID = tid
		out = append(out, tc)
	}
	return out, nil
}

// ParseStatus reads the credential lines of a /proc/<pid>/status file.
func ParseStatus(status string) (ThreadCreds, error) {
	var tc ThreadCreds
	seen := 0
	for _, line := range strings.Split(status, "\n") {
		key, val, ok := strings.Cut(line, ":")
		if !ok {
			continue
		}
		f := strings.Fields(val)
		var err error
		switch key {
		case "Uid", "Gid":
			if len(f) != 4 {
				return tc, fmt.Errorf("%s: want 4 IDs, got %q", key, val)
			}
			var ids [4]int
			for i := range f {
				if ids[i], err = strconv.Atoi(f[i]); err != nil {
					return tc, fmt.Errorf("%s: %w", key, err)
				}
			}
			same := ids[1] == ids[0] && ids[2] == ids[0] && ids[3] == ids[0]
			if key == "Uid" {
				tc.UID, tc.SameIDs = ids[0], same
			} else {
				tc.GID, tc.SameIDs = ids[0], tc.SameIDs && same
			}
			seen++
		case "Groups":
			for _, s := range f {
				g, err := strconv.Atoi(s)
				if err != nil {
					return tc, fmt.Errorf("Groups: %w", err)
				}
				tc.Groups = append(tc.Groups, g)
			}
		case "CapEff", "CapPrm", "CapInh", "CapAmb", "CapBnd":
			if len(f) != 1 {
				return tc, fmt.Errorf("%s: %q", key, val)
			}
			v, err := strconv.ParseUint(f[0], 16, 64)
			if err != nil {
				return tc, fmt.Errorf("%s: %w", key, err)
			}
			switch key {
			case "CapEff":
				tc.Effective = v
			case "CapPrm":
				tc.Permitted = v
			case "CapInh":
				tc.Inheritable = v
			case "CapAmb":
				tc.Ambient = v
			case "CapBnd":
				tc.Bounding = v
			}
			seen++
		}
	}
	if seen != 7 {
		return tc, fmt.Errorf("want the Uid, Gid and five Cap lines, found %d of them", seen)
	}
	return tc, nil
}
