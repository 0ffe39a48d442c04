package privdrop

import (
	"fmt"
	"os"
	"strconv"
	"strings"
	"syscall"

	"golang.org/x/sys/unix"
)

// Supported reports whether Drop works on this system.
const Supported = true

// Drop makes every thread of the process t.UID and t.GID, keeping only the
// capabilities t.Keep when the user changes from root. The steps, each on
// every thread: drop all other capabilities from the bounding set (so that
// no program started later, setuid-root or with file capabilities, can
// regain them), set PR_SET_KEEPCAPS, change the groups and then the user,
// set the permitted, effective and inheritable sets to t.Keep (the change
// of user emptied the effective set), raise t.Keep into the ambient set,
// clear PR_SET_KEEPCAPS. Then it checks every thread in /proc/self/task.
//
// A process that is not root can only "change" to the IDs it has. On
// error the process may be left half-changed: do not go on running.
func Drop(t Target) error {
	euid, egid := os.Geteuid(), os.Getegid()
	changeUser := t.UID >= 0 && t.UID != euid
	changeGroup := t.GID >= 0 && t.GID != egid
	if (changeUser || changeGroup) && euid != 0 {
		return fmt.Errorf("only root can change its user or group, and this process runs as uid %d gid %d", euid, egid)
	}
	var keep uint64
	for _, c := range t.Keep {
		keep |= 1 << uint(c)
	}
	if changeUser {
		last, err := lastCap()
		if err != nil {
			return err
		}
		for c := 0; c <= last; c++ {
			if keep&(1<<uint(c)) != 0 {
				continue
			}
			if err := allThreadsPrctl(unix.PR_CAPBSET_DROP, uintptr(c), 0); err != nil {
				return fmt.Errorf("drop capability %d from the bounding set: %w", c, err)
			}
		}
		if err := allThreadsPrctl(unix.PR_SET_KEEPCAPS, 1, 0); err != nil {
			return fmt.Errorf("keep capabilities across the change of user: %w", err)
		}
	}
	// Only root sets groups: setgroups needs CAP_SETGID even to keep the
	// list, and a process that is not root may only name its own group
	// (checked above), which it has already.
	if t.GID >= 0 && euid == 0 {
		if err := syscall.Setgroups([]int{t.GID}); err != nil {
			return fmt.Errorf("set supplementary groups to %d: %w", t.GID, err)
		}
		if err := syscall.Setresgid(t.GID, t.GID, t.GID); err != nil {
			return fmt.Errorf("set group %d: %w", t.GID, err)
		}
	}
	if changeUser {
		if err := syscall.Setresuid(t.UID, t.UID, t.UID); err != nil {
			return fmt.Errorf("set user %d: %w", t.UID, err)
		}
		if err := allThreadsCapset(keep, keep, keep); err != nil {
			return fmt.Errorf("set capabilities %#x: %w", keep, err)
		}
		for _, c := range t.Keep {
			if err := allThreadsPrctl(unix.PR_CAP_AMBIENT, unix.PR_CAP_AMBIENT_RAISE, uintptr(c)); err != nil {
				return fmt.Errorf("raise capability %d into the ambient set: %w", c, err)
			}
		}
		if err := allThreadsPrctl(unix.PR_SET_KEEPCAPS, 0, 0); err != nil {
			return fmt.Errorf("clear PR_SET_KEEPCAPS: %w", err)
		}
	}
	want := ThreadCreds{UID: euid, GID: egid}
	if t.UID >= 0 {
		want.UID = t.UID
	}
	if t.GID >= 0 {
		want.GID = t.GID
	}
	threads, err := Threads()
	if err != nil {
		return fmt.Errorf("check the threads after the change: %w", err)
	}
	for _, th := range threads {
		bad := th.UID != want.UID || th.GID != want.GID || !th.SameIDs
		if changeUser && (th.Effective != keep || th.Permitted != keep) {
			bad = true
		}
		if bad {
			return fmt.Errorf("thread %d was left with uid %d gid %d effective capabilities %#x after the change to uid %d gid %d capabilities %#x",
				th.TID, th.UID, th.GID, th.Effective, want.UID, want.GID, keep)
		}
	}
	return nil
}

// lastCap returns the highest capability number the running kernel knows.
func lastCap() (int, error) {
	b, err := os.ReadFile("/proc/sys/kernel/cap_last_cap")
	if err != nil {
		return 0, fmt.Errorf("read the highest capability number: %w", err)
	}
	n, err := strconv.Atoi(strings.TrimSpace(string(b)))
	if err != nil {
		return 0, fmt.Errorf("/proc/sys/kernel/cap_last_cap: %w", err)
	}
	return min(n, 63), nil
}
