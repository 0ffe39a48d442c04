package main

import (
	"context"
	"log/slog"
	"sync"

	"github.com/quictun/quictun/quictun"
)

// systemd tells the service manager, for a Type=notify unit
// (contrib/systemd), where listen and connect are: READY=1 once the server
// listens with its device up, or once the client's tunnel is up; STATUS=
// lines that `systemctl status` shows; STOPPING=1 when a shutdown begins;
// RELOADING=1 and READY=1 around a reload. One per process, as
// $NOTIFY_SOCKET is. Outside systemd every call does nothing.
var systemd = &systemdNotifier{}

// systemdNotifier sends sd_notify messages and logs a failure once.
type systemdNotifier struct {
	mu     sync.Mutex // one message at a time
	warned bool       // a failure logged; guarded by mu
	status string     // the last status line set; guarded by mu
}

// send sends state, logging the first failure: a Type=notify unit whose
// READY=1 never arrives fails its start after TimeoutStartSec=.
func (n *systemdNotifier) send(state string) {
	n.mu.Lock()
	defer n.mu.Unlock()
	if _, err := sdNotify(state); err != nil && !n.warned {
		n.warned = true
		slog.Warn("could not notify systemd; a Type=notify unit will not see the service start or stop", "err", err)
	}
}

// Ready reports that the service is up (READY=1; systemd ignores it after
// the first) with a status line.
func (n *systemdNotifier) Ready(status string) { n.setStatus("READY=1\n", status) }

// Status sets the status line `systemctl status` shows.
func (n *systemdNotifier) Status(status string) { n.setStatus("", status) }

func (n *systemdNotifier) setStatus(prefix, status string) {
	n.mu.Lock()
	n.status = status
	n.mu.Unlock()
	n.send(prefix + "STATUS=" + status)
}

// Reload returns fn (a reload: SIGHUP, quictun reload) wrapped in
// RELOADING=1 before and READY=1 after, which ends the unit's "reloading"
// state; the status line is then the one from before the reload, or says
// that the reload failed.
func (n *systemdNotifier) Reload(fn func() error) func() error {
	return func() error {
		n.send("RELOADING=1\nMONOTONIC_USEC=" + monotonicUsec() + "\nSTATUS=reloading")
		err := fn()
		n.mu.Lock()
		status := n.status
		n.mu.Unlock()
		if err != nil {
			status = "reload failed: " + err.Error() + "; " + status
		}
		n.send("READY=1\nSTATUS=" + status)
		return err
	}
}

// Stopping reports that a shutdown has begun.
func (n *systemdNotifier) Stopping() { n.send("STOPPING=1\nSTATUS=stopping") }

// StoppingWhenDone sends STOPPING=1 as soon as ctx (the run context that
// SIGTERM and SIGINT end) is done, while the device and routes are being
// removed.
func (n *systemdNotifier) StoppingWhenDone(ctx context.Context) {
	context.AfterFunc(ctx, n.Stopping)
}

// ClientState returns a quictun.ClientConfig.StateChanged for a client of
// server: READY=1 when the tunnel first comes up (the device is configured
// by then), and a status line at every change.
func (n *systemdNotifier) ClientState(server string) func(quictun.ClientState, error) {
	return func(s quictun.ClientState, err error) {
		switch s {
		case quictun.StateConnecting:
			n.Status("connecting to " + server)
		case quictun.StateUp:
			n.Ready("tunnel up to " + server)
		case quictun.StateReconnecting:
			msg := "reconnecting to " + server
			if err != nil {
				msg += ": " + err.Error()
			}
			n.Status(msg)
		}
	}
}
