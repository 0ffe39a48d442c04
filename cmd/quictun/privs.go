package main

import (
	"errors"
	"fmt"
	"log/slog"
	"os"
	"os/user"
	"strconv"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/internal/privdrop"
)

// privFlags are --user and --group of listen and connect.
func privFlags() []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "user", EnvVars: env("user"),
			Usage: "once the device and the UDP socket are set up, run as this user (a name or number, e.g. nobody or a system user made for quictun), " +
				"keeping CAP_NET_ADMIN alone: enough to reconnect, install routes and remove the device on exit. " +
				"Needs root; Linux only. --up/--down commands then run as this user too, with CAP_NET_ADMIN (ip and nft work, root's files are out of reach). " +
				"Example: --user quictun --group quictun"},
		&cli.StringFlag{Name: "group", EnvVars: env("group"),
			Usage: "with --user: run as this group (default: the primary group of --user), also the only supplementary group. " +
				"Alone: change the group only, keeping root's user and capabilities"},
	}
}

// privTarget reads --user and --group. ok is false when neither is set.
// Names that do not exist, and a change of user the process cannot make
// (it is not root), are usage errors found before anything is touched.
func privTarget(c *cli.Context) (t privdrop.Target, ok bool, err error) {
	userName, groupName := c.String("user"), c.String("group")
	if userName == "" && groupName == "" {
		return privdrop.Target{}, false, nil
	}
	if !privdrop.Supported {
		return t, false, usageError{errors.New("--user and --group work on Linux only; here, start quictun as the user it should run as")}
	}
	t = privdrop.Target{UID: -1, GID: -1, Keep: []privdrop.Capability{privdrop.CapNetAdmin}}
	if userName != "" {
		uid, gid, err := privdrop.LookupUser(userName)
		if errors.Is(err, privdrop.ErrUnknown) {
			return t, false, usageError{fmt.Errorf("--user %q: no such user; name one from /etc/passwd (e.g. nobody), or make one: useradd --system --no-create-home --shell /usr/sbin/nologin quictun", userName)}
		}
		if err != nil {
			return t, false, usageError{fmt.Errorf("--user: %w", err)}
		}
		t.UID, t.GID = uid, gid
	}
	if groupName != "" {
		gid, err := privdrop.LookupGroup(groupName)
		if errors.Is(err, privdrop.ErrUnknown) {
			return t, false, usageError{fmt.Errorf("--group %q: no such group; name one from /etc/group (e.g. nogroup), or make one: groupadd --system quictun", groupName)}
		}
		if err != nil {
			return t, false, usageError{fmt.Errorf("--group: %w", err)}
		}
		t.GID = gid
	}
	euid := os.Geteuid()
	if euid != 0 && ((t.UID >= 0 && t.UID != euid) || (t.GID >= 0 && t.GID != os.Getegid())) {
		return t, false, usageError{fmt.Errorf("--user/--group: only root can change its user, and quictun runs as uid %d; "+
			"under systemd, User= and Group= with AmbientCapabilities=CAP_NET_ADMIN do the same: leave out --user and --group", euid)}
	}
	return t, true, nil
}

// dropPrivileges makes the process t.UID and t.GID with CAP_NET_ADMIN
// alone. The caller removes what it set up when this fails.
func dropPrivileges(c *cli.Context, t privdrop.Target, log *slog.Logger) error {
	if err := privdrop.Drop(t); err != nil {
		return fmt.Errorf("run as --user %q --group %q: %w", c.String("user"), c.String("group"), err)
	}
	attrs := []any{"uid", os.Getuid(), "gid", os.Getgid(), "kept", "CAP_NET_ADMIN"}
	if u, err := user.LookupId(strconv.Itoa(os.Getuid())); err == nil {
		attrs = append(attrs, "user", u.Username)
	}
	if g, err := user.LookupGroupId(strconv.Itoa(os.Getgid())); err == nil {
		attrs = append(attrs, "group", g.Name)
	}
	log.Info("dropped privileges", attrs...)
	return nil
}
