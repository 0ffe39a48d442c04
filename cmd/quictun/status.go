package main

import (
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"maps"
	"slices"
	"strings"
	"text/tabwriter"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/internal/control"
	"github.com/quictun/quictun/quictun"
)

// statusTimeout bounds asking one process for its status.
const statusTimeout = 5 * time.Second

func statusCommand() *cli.Command {
	return &cli.Command{
		Name:      "status",
		Usage:     "show the running quictun's sessions: addresses, peers, traffic, drops",
		ArgsUsage: " ",
		Description: `Asks the running quictun for its state and prints it, like wg show. On a
server: its listen address and own drops, then one block per connected client
(identity, certificate fingerprint and expiry, tunnel addresses, underlay
address and how often it changed, uptime, RTT, packet size, traffic each way,
drops by reason). On a client: the server, the state (up, or reconnecting
since when and why), and the same figures for its tunnel. Both show their
own certificate and the CAs (--ca) with their expiry; a certificate that
expires within 30 days is marked "WARNING: expires in N days" (the log
warns about it once a day too). "sent" is what
this end sent to the peer, "received" what it got from it and delivered.
Without --dev it shows every quictun of this network namespace.

--json prints the same as one JSON object for scripts (the schema is in
docs/OPERATIONS.md): counters are exact, times RFC 3339.

` + controlSocketHelp + `

Examples:
  quictun status
  quictun status --dev qt0 --json | jq '.server.sessions[] | {name, rx_bytes}'
  ip netns exec vpn quictun status`,
		Flags: []cli.Flag{
			controlDevFlag("every quictun running in this network namespace"),
			&cli.BoolFlag{Name: "json", Usage: "print the status as JSON (schema: docs/OPERATIONS.md)"},
		},
		Before: checkNoArgs,
		Action: runStatus,
	}
}

func runStatus(c *cli.Context) error {
	devs, err := controlTargets(c)
	if err != nil {
		return err
	}
	if c.Bool("json") && len(devs) > 1 {
		return usageError{fmt.Errorf("several quictun processes run in this network namespace (devices %s): choose one with --dev for --json", strings.Join(devs, ", "))}
	}
	var errs []error
	for i, dev := range devs {
		ctx, cancel := context.WithTimeout(c.Context, statusTimeout)
		st, err := control.GetStatus(ctx, control.Addr(dev))
		cancel()
		if err != nil {
			errs = append(errs, controlError(dev, err))
			continue
		}
		if c.Bool("json") {
			b, err := json.MarshalIndent(st, "", "  ")
			if err != nil {
				return err
			}
			fmt.Fprintf(c.App.Writer, "%s\n", b)
			continue
		}
		if i > 0 {
			fmt.Fprintln(c.App.Writer)
		}
		if err := writeStatus(c.App.Writer, st); err != nil {
			return err
		}
	}
	return errors.Join(errs...)
}

// writeStatus prints st for a person: a header block for the process,
// then a block per session, keys aligned.
func writeStatus(w io.Writer, st *control.Status) error {
	tw := tabwriter.NewWriter(w, 0, 4, 1, ' ', 0)
	now := st.Time
	switch {
	case st.Server != nil:
		s := st.Server
		fmt.Fprintf(tw, "server %s (%s), listening on %s, pid %d\n", st.Device, st.Mode, s.Listen, st.PID)
		field(tw, "certificate", certLine(st.Certificate.Name, st.Certificate, now))
		writeCAs(tw, st.CAs, now)
		field(tw, "sessions", fmt.Sprint(len(s.Sessions)))
		if len(s.Drops) > 0 {
			field(tw, "drops", dropsLine(s.Drops))
		}
		for _, ss := range s.Sessions {
			fmt.Fprintf(tw, "\nsession %s\n", ss.Name)
			field(tw, "fingerprint", shortFingerprint(ss.Fingerprint))
			writeSession(tw, ss, now)
			field(tw, "up", fmt.Sprintf("%s (since %s)", humanDuration(now.Sub(ss.ConnectedAt)), localTime(ss.ConnectedAt)))
			field(tw, "cert expires", expiry(ss.PeerNotAfter, now))
		}
	case st.Client != nil:
		cs := st.Client
		mode := st.Mode
		if mode == "" {
			mode = "mode not known yet"
		}
		fmt.Fprintf(tw, "client %s (%s), server %s, pid %d\n", st.Device, mode, cs.Server, st.PID)
		field(tw, "state", fmt.Sprintf("%s since %s (%s)", cs.State, localTime(cs.Since), humanDuration(now.Sub(cs.Since))))
		if cs.LastError != "" {
			field(tw, "last error", cs.LastError)
		}
		field(tw, "certificate", certLine(st.Certificate.Name, st.Certificate, now))
		writeCAs(tw, st.CAs, now)
		if ss := cs.Session; ss != nil {
			fmt.Fprintf(tw, "\ntunnel to %s (the server knows us as %s)\n", ss.Remote, ss.Name)
			field(tw, "server fingerprint", shortFingerprint(ss.Fingerprint))
			writeSession(tw, *ss, now)
			label := "connected"
			if cs.State != "up" {
				label = "last connected"
			}
			field(tw, label, fmt.Sprintf("%s (%s ago)", localTime(ss.ConnectedAt), humanDuration(now.Sub(ss.ConnectedAt))))
			field(tw, "server cert expires", expiry(ss.PeerNotAfter, now))
		}
	default:
		fmt.Fprintf(tw, "%s %s, pid %d: no status for this role\n", st.Role, st.Device, st.PID)
	}
	return tw.Flush()
}

// writeSession prints the figures a server's session and a client's
// tunnel share.
func writeSession(tw io.Writer, s control.Session, now time.Time) {
	field(tw, "addresses", listOrNone(s.Addresses))
	if len(s.Routes) > 0 {
		field(tw, "routes", strings.Join(s.Routes, ", "))
	}
	remote := s.Remote
	switch s.RemoteChanges {
	case 0:
	case 1:
		remote += " (changed once)"
	default:
		remote += fmt.Sprintf(" (changed %d times)", s.RemoteChanges)
	}
	field(tw, "remote", remote)
	field(tw, "rtt", fmt.Sprintf("%.2f ms", s.RTTMillis))
	field(tw, "packet size", fmt.Sprint(s.PacketSize))
	field(tw, "sent", fmt.Sprintf("%s in %s", humanBytes(s.TxBytes), packets(s.TxPackets)))
	field(tw, "received", fmt.Sprintf("%s in %s", humanBytes(s.RxBytes), packets(s.RxPackets)))
	if len(s.Drops) > 0 {
		field(tw, "drops", dropsLine(s.Drops))
	}
}

// field prints one indented "key: value" line; tabwriter aligns the
// values of a block.
func field(w io.Writer, key, value string) {
	fmt.Fprintf(w, "  %s:\t%s\n", key, value)
}

func listOrNone(l []string) string {
	if len(l) == 0 {
		return "none"
	}
	return strings.Join(l, ", ")
}

// certLine describes this process's own certificate.
func certLine(name string, c control.Certificate, now time.Time) string {
	if c.Fingerprint == "" {
		return "unknown"
	}
	return fmt.Sprintf("%s (%s), expires %s", name, shortFingerprint(c.Fingerprint), expiry(c.NotAfter, now))
}

// writeCAs prints a line per CA certificate.
func writeCAs(tw io.Writer, cas []control.Certificate, now time.Time) {
	for _, ca := range cas {
		field(tw, "ca", certLine(ca.Name, ca, now))
	}
}

// shortFingerprint is the first 16 hex digits (64 bits) of a fingerprint:
// enough to tell certificates apart at a glance; --json has all of it.
func shortFingerprint(fp string) string {
	if len(fp) > 16 {
		return fp[:16]
	}
	return fp
}

// expiry renders a certificate's NotAfter with how far away it is, and a
// warning when that is less than quictun.ExpiryWarning (30 days): the
// process then warns about it in its log once a day.
func expiry(t, now time.Time) string {
	if t.IsZero() {
		return "unknown"
	}
	d := t.Sub(now)
	switch {
	case d < 0:
		return fmt.Sprintf("%s (EXPIRED %s ago)", t.Local().Format(time.DateOnly), humanDuration(-d))
	case d < 24*time.Hour:
		return fmt.Sprintf("%s (WARNING: expires in %s)", t.Local().Format(time.DateOnly), humanDuration(d))
	case quictun.ExpiresSoon(t, now):
		return fmt.Sprintf("%s (WARNING: expires in %d days)", t.Local().Format(time.DateOnly), quictun.DaysLeft(t, now))
	}
	return fmt.Sprintf("%s (in %s)", t.Local().Format(time.DateOnly), humanDuration(d))
}

// dropsLine renders non-zero drop counts by reason, sorted by name.
func dropsLine(drops map[string]uint64) string {
	var parts []string
	for _, k := range slices.Sorted(maps.Keys(drops)) {
		parts = append(parts, fmt.Sprintf("%s %d", k, drops[k]))
	}
	return strings.Join(parts, ", ")
}

func localTime(t time.Time) string {
	if t.IsZero() {
		return "never"
	}
	return t.Local().Format(time.DateTime)
}

// humanDuration rounds d to what a person wants to read: seconds under
// an hour, minutes under a day, hours beyond.
func humanDuration(d time.Duration) string {
	switch {
	case d < 0:
		d = 0
		fallthrough
	case d < time.Hour:
		return d.Round(time.Second).String()
	case d < 48*time.Hour:
		d = d.Round(time.Minute)
		return fmt.Sprintf("%dh%02dm", int(d.Hours()), int(d.Minutes())%60)
	}
	days := int(d.Hours()) / 24
	return fmt.Sprintf("%d days", days)
}

// humanBytes renders n bytes in IEC units (KiB, MiB, GiB, TiB).
func humanBytes(n uint64) string {
	if n < 1024 {
		return fmt.Sprintf("%d B", n)
	}
	v := float64(n)
	for _, u := range []string{"KiB", "MiB", "GiB", "TiB"} {
		v /= 1024
		if v < 1024 || u == "TiB" {
			return fmt.Sprintf("%.2f %s", v, u)
		}
	}
	panic("unreachable")
}

// packets renders a packet count with its noun.
func packets(n uint64) string {
	if n == 1 {
		return "1 packet"
	}
	return humanCount(n) + " packets"
}

// humanCount renders a packet count: exact below 100000, else with a
// k/M/G suffix.
func humanCount(n uint64) string {
	switch {
	case n < 100_000:
		return fmt.Sprint(n)
	case n < 1_000_000:
		return fmt.Sprintf("%.1fk", float64(n)/1e3)
	case n < 1_000_000_000:
		return fmt.Sprintf("%.1fM", float64(n)/1e6)
	}
	return fmt.Sprintf("%.1fG", float64(n)/1e9)
}
