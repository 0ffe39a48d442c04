package privdrop

import (
	"errors"
	"fmt"
	"os/user"
	"strconv"
)

// Capability is a Linux capability number (capabilities(7)).
type Capability int

// CapNetAdmin is CAP_NET_ADMIN: network configuration (netlink), and
// socket buffers beyond the sysctl limits.
const CapNetAdmin Capability = 12

// Target is what Drop makes of the process.
type Target struct {
	// UID is the user to become. -1: keep the current user.
	UID int
	// GID is the group to become; it is also the only supplementary
	// group left. -1: keep the current groups.
	GID int
	// Keep are the capabilities to keep once the user changes from root:
	// they stay in the permitted, effective, inheritable, ambient and
	// bounding sets, and every other capability leaves all five. Programs
	// the process starts (hooks) inherit them through the ambient set.
	// Nil: keep none. Unused when the user does not change.
	Keep []Capability
}

// ErrUnknown is wrapped by the errors of LookupUser and LookupGroup for a
// name or number that does not exist.
var ErrUnknown = errors.New("does not exist")

// LookupUser returns the user ID and primary group ID of name, a user name
// or a numeric user ID that exists.
func LookupUser(name string) (uid, gid int, err error) {
	u, err := user.Lookup(name)
	if err != nil {
		var unknown user.UnknownUserError
		if !errors.As(err, &unknown) {
			return 0, 0, fmt.Errorf("look up user %q: %w", name, err)
		}
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return 0, 0, fmt.Errorf("user %q %w", name, ErrUnknown)
		}
		if u, err = user.LookupId(name); err != nil {
			var unknownID user.UnknownUserIdError
			if errors.As(err, &unknownID) {
				return 0, 0, fmt.Errorf("user ID %s %w", name, ErrUnknown)
			}
			return 0, 0, fmt.Errorf("look up user ID %s: %w", name, err)
		}
	}
	uid, err = strconv.Atoi(u.Uid)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q has a non-numeric ID %q", name, u.Uid)
	}
	gid, err = strconv.Atoi(u.Gid)
	if err != nil {
		return 0, 0, fmt.Errorf("user %q has a non-numeric group ID %q", name, u.Gid)
	}
	return uid, gid, nil
}

// LookupGroup returns the group ID of name, a group name or a numeric
// group ID that exists.
func LookupGroup(name string) (gid int, err error) {
	g, err := user.LookupGroup(name)
	if err != nil {
		var unknown user.UnknownGroupError
		if !errors.As(err, &unknown) {
			return 0, fmt.Errorf("look up group %q: %w", name, err)
		}
		if _, nerr := strconv.Atoi(name); nerr != nil {
			return 0, fmt.Errorf("group %q %w", name, ErrUnknown)
		}
		if g, err = user.LookupGroupId(name); err != nil {
			var unknownID user.UnknownGroupIdError
			if errors.As(err, &unknownID) {
				return 0, fmt.Errorf("group ID %s %w", name, ErrUnknown)
			}
			return 0, fmt.Errorf("look up group ID %s: %w", name, err)
		}
	}
	gid, err = strconv.Atoi(g.Gid)
	if err != nil {
		return 0, fmt.Errorf("group %q has a non-numeric ID %q", name, g.Gid)
	}
	return gid, nil
}
