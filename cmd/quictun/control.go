package main

// The control socket on both sides: listen and connect serve it (the
// handlers and the status they report, filled from the core's snapshots),
// status, kick and reload ask it (which process, and what their errors
// mean in this command line's words).

import (
	"crypto/x509"
	"errors"
	"fmt"
	"log/slog"
	"os"
	"strings"
	"sync"
	"time"

	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/internal/control"
	"github.com/quictun/quictun/quictun"
)

// controlSocketHelp says in --help where the commands meet the process.
var controlSocketHelp = `The running quictun (listen or connect) serves its control socket at the
abstract Unix socket ` + control.Addr("<dev>") + ` of its network namespace, e.g. ` + control.Addr("qt0") + `;
run the command in the same namespace (ip netns exec NS quictun ...). Only
root and the user quictun runs as are answered. The protocol and the JSON
schema are in docs/OPERATIONS.md.`

// controlDevFlag is --dev of status, kick and reload; byDefault says
// which processes they ask without it.
func controlDevFlag(byDefault string) cli.Flag {
	return &cli.StringFlag{Name: "dev", EnvVars: env("dev"),
		Usage: "the device of the quictun to ask, as given to its --dev (default: " + byDefault + ")"}
}

// checkNoArgs is the Before of a control command that takes no arguments.
func checkNoArgs(c *cli.Context) error {
	if c.Args().Present() {
		return usageError{fmt.Errorf("%s takes no arguments, got %q (flags go before any argument)", c.Command.Name, c.Args().Slice())}
	}
	return nil
}

// controlTargets returns the devices to ask: --dev, else every quictun
// that serves a control socket in this network namespace.
func controlTargets(c *cli.Context) ([]string, error) {
	if dev := c.String("dev"); dev != "" {
		if err := device.CheckName(dev); err != nil {
			return nil, usageError{fmt.Errorf("--dev: %w", err)}
		}
		return []string{dev}, nil
	}
	devs, err := control.Running()
	if err != nil {
		return nil, err
	}
	if len(devs) == 0 {
		return nil, fmt.Errorf("no quictun is running in this network namespace (none serves a control socket %s)", control.Addr("<dev>"))
	}
	return devs, nil
}

// controlTarget is controlTargets for a command that asks one process.
func controlTarget(c *cli.Context) (string, error) {
	devs, err := controlTargets(c)
	if err != nil {
		return "", err
	}
	if len(devs) > 1 {
		return "", usageError{fmt.Errorf("several quictun processes run in this network namespace (devices %s): choose one with --dev", strings.Join(devs, ", "))}
	}
	return devs[0], nil
}

// controlError says what an error from the control socket of dev means
// for the person who typed the command.
func controlError(dev string, err error) error {
	var nr *control.NotRunningError
	if errors.As(err, &nr) {
		return fmt.Errorf("no quictun running with --dev %s in this network namespace (nothing listens on %s)", dev, nr.Addr)
	}
	return fmt.Errorf("%s: %w", dev, err)
}

// startControl serves the control socket of device dev with h.
func startControl(dev string, h control.Handlers, log *slog.Logger) (*control.Server, error) {
	s, err := control.Listen(control.Addr(dev), h, log)
	if err != nil {
		var iu *control.InUseError
		if errors.As(err, &iu) {
			return nil, fmt.Errorf("%w: stop it, or give this one another --dev", err)
		}
		return nil, err
	}
	log.Debug("control socket listening", "addr", s.Addr())
	return s, nil
}

// reloadHandler is the control socket's reload: the same function SIGHUP
// calls, logged the same way.
func reloadHandler(log *slog.Logger, reload func() error) func() error {
	return func() error {
		log.Info("reload requested over the control socket")
		err := reload()
		logReload(log, "control socket", err)
		return err
	}
}

// startServerControl serves the control socket of a server on device dev.
func startServerControl(srv *quictun.Server, dev string, mode device.Kind, cert *x509.Certificate,
	reload func() error, log *slog.Logger) (*control.Server, error) {
	return startControl(dev, control.Handlers{
		Status: func() control.Status { return serverStatus(srv, dev, mode, cert) },
		Kick: func(name string) error {
			err := srv.Kick(name)
			var nse *quictun.NoSessionError
			if errors.As(err, &nse) {
				var names []string
				for _, si := range srv.Sessions() {
					names = append(names, si.Name)
				}
				connected := "none"
				if len(names) > 0 {
					connected = strings.Join(names, ", ")
				}
				return control.NotFound(fmt.Sprintf("%v (connected: %s)", err, connected))
			}
			return err
		},
		Reload: reloadHandler(log, reload),
	}, log)
}

// clientControl is the control socket of a client, started once its
// device name is known: at once when --dev or --mode says it, else when
// the first connection sets the device up.
type clientControl struct {
	cl     *quictun.Client // set before Run
	cert   *x509.Certificate
	reload func() error
	log    *slog.Logger

	mu   sync.Mutex
	srv  *control.Server // guarded by mu
	dev  string          // guarded by mu
	mode device.Kind     // guarded by mu; 0 until known
}

// start serves the socket for device dev (once; later calls only record
// the mode).
func (cc *clientControl) start(dev string, mode device.Kind) error {
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if mode != 0 {
		cc.mode = mode
	}
	if cc.srv != nil {
		return nil
	}
	srv, err := startControl(dev, control.Handlers{Status: cc.status, Reload: reloadHandler(cc.log, cc.reload)}, cc.log)
	if err != nil {
		return err
	}
	cc.srv, cc.dev = srv, dev
	return nil
}

// close stops serving the socket, if it was started.
func (cc *clientControl) close() {
	cc.mu.Lock()
	srv := cc.srv
	cc.srv = nil
	cc.mu.Unlock()
	if srv != nil {
		srv.Close()
	}
}

func (cc *clientControl) status() control.Status {
	cc.mu.Lock()
	dev, mode := cc.dev, cc.mode
	cc.mu.Unlock()
	return clientStatus(cc.cl, dev, mode, cc.cert)
}

// knownClientDev returns the client's device name if the flags fix it
// before the server has said which mode it runs: --dev, or the default
// name of --mode.
func knownClientDev(c *cli.Context, mode device.Kind) (string, bool) {
	if c.String("dev") == "" && mode == 0 {
		return "", false
	}
	name, err := devFlag(c, mode)
	return name, err == nil
}

// certificateOf describes a certificate for the status at now.
func certificateOf(cert *x509.Certificate, now time.Time) control.Certificate {
	if cert == nil {
		return control.Certificate{}
	}
	return control.Certificate{Name: cert.Subject.CommonName, Fingerprint: qcrypto.Fingerprint(cert), NotAfter: cert.NotAfter,
		ExpiresSoon: quictun.ExpiresSoon(cert.NotAfter, now)}
}

// casOf describes the CAs among a snapshot's certificates at now.
func casOf(certs []quictun.CertificateInfo, now time.Time) []control.Certificate {
	var out []control.Certificate
	for _, c := range certs {
		if c.Kind == quictun.CertCA {
			out = append(out, control.Certificate{Name: c.Name, Fingerprint: c.Fingerprint, NotAfter: c.NotAfter,
				ExpiresSoon: quictun.ExpiresSoon(c.NotAfter, now)})
		}
	}
	return out
}

// serverStatus fills the control socket's schema from the server's
// snapshots.
func serverStatus(srv *quictun.Server, dev string, mode device.Kind, cert *x509.Certificate) control.Status {
	now := time.Now()
	list := srv.Sessions()
	ss := &control.ServerStatus{Listen: srv.Addr(), Sessions: make([]control.Session, 0, len(list)),
		Drops: quictun.DropCounts(srv.Counters.Drops()).NonZero()}
	for _, si := range list {
		ss.Sessions = append(ss.Sessions, sessionOf(si, now))
	}
	return control.Status{Role: "server", PID: os.Getpid(), Device: dev, Mode: mode.String(), Time: now,
		Certificate: certificateOf(cert, now), CAs: casOf(srv.Status().Certificates, now), Server: ss}
}

// clientStatus fills the control socket's schema from the client's
// snapshot; mode is 0 before the first connection.
func clientStatus(cl *quictun.Client, dev string, mode device.Kind, cert *x509.Certificate) control.Status {
	now := time.Now()
	cs := cl.Status()
	st := control.Status{Role: "client", PID: os.Getpid(), Device: dev, Time: now, Certificate: certificateOf(cert, now),
		CAs:    casOf(cs.Certificates, now),
		Client: &control.ClientStatus{Server: cs.Server, State: cs.State.String(), Since: cs.Since, LastError: cs.LastError}}
	if mode != 0 {
		st.Mode = mode.String()
	}
	if !cs.Session.ConnectedAt.IsZero() {
		s := sessionOf(cs.Session, now)
		st.Client.Session = &s
	}
	return st
}

// sessionOf converts one session's snapshot, taken at now.
func sessionOf(si quictun.SessionInfo, now time.Time) control.Session {
	return control.Session{
		Name: si.Name, Fingerprint: si.Fingerprint, PeerNotAfter: si.NotAfter,
		PeerExpiresSoon: quictun.ExpiresSoon(si.NotAfter, now),
		Addresses:       stringsOf(si.Addresses), Routes: stringsOf(si.Routes),
		Remote: si.Remote, RemoteChanges: si.RemoteChanges, ConnectedAt: si.ConnectedAt,
		RTTMillis:  float64(si.RTT.Microseconds()) / 1000,
		PacketSize: si.PacketSize,
		TxPackets:  si.TxPackets, TxBytes: si.TxBytes, RxPackets: si.RxPackets, RxBytes: si.RxBytes,
		Drops: si.Drops.NonZero(),
	}
}

// stringsOf returns the String of each of xs (never nil: the JSON of the
// status has a list, not null).
func stringsOf[T fmt.Stringer](xs []T) []string {
	out := make([]string, len(xs))
	for i, x := range xs {
		out[i] = x.String()
	}
	return out
}
