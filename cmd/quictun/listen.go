package main

import (
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/quictun/quictun/third_party/quic-go"
	"github.com/urfave/cli/v2"

	qcrypto "github.com/quictun/quictun/crypto"
	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/internal/control"
	"github.com/quictun/quictun/metrics"
	"github.com/quictun/quictun/quictun"
)

// tlsFlags are the certificate flags of listen and connect.
func tlsFlags(whose string) []cli.Flag {
	return []cli.Flag{
		&cli.StringFlag{Name: "cert", EnvVars: env("cert"), TakesFile: true,
			Usage: "PEM certificate of this " + whose + " (from quictun cert issue, or OpenSSL/easy-rsa); required"},
		&cli.StringFlag{Name: "key", EnvVars: env("key"), TakesFile: true,
			Usage: "PEM private key of --cert (PKCS#1, PKCS#8 or SEC1, or encrypted PKCS#8: see --key-passphrase-file), mode 0600; required"},
		keyPassphraseFlag(),
		&cli.StringFlag{Name: "ca", EnvVars: env("ca"), TakesFile: true,
			Usage: "PEM certificate of the CA that signed the peers' certificates; required"},
	}
}

// tunnelFlags are the transport tuning flags of listen and connect.
func tunnelFlags() []cli.Flag {
	return []cli.Flag{
		&cli.IntFlag{Name: "mtu", EnvVars: env("mtu"),
			Usage: "lower the TUN device MTU (default: the largest that fits one datagram at --packet-size)"},
		&cli.IntFlag{Name: "packet-size", Value: quictun.DefaultPacketSize, EnvVars: env("packet-size"),
			Usage: "QUIC packet size in bytes (1200..9000); the path to the peer must carry UDP payloads this large. Lower it (e.g. 1280) if handshakes time out on links with a small MTU"},
		&cli.DurationFlag{Name: "keepalive", Value: quictun.DefaultKeepalive, EnvVars: env("keepalive"),
			Usage: "send a keepalive after this much silence (keep NAT mappings alive)"},
		&cli.DurationFlag{Name: "idle-timeout", Value: quictun.DefaultIdleTimeout, EnvVars: env("idle-timeout"),
			Usage: "consider the peer dead after this long without a packet from it"},
	}
}

func listenCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "listen", Value: ":4433", EnvVars: env("listen"),
			Usage: "UDP address and port to listen on. With no host (the default, :4433) one socket takes IPv4 and IPv6 clients on every address (IPv4 only where the host has no IPv6); 203.0.113.7:4433 or [2001:db8::7]:4433 listen on that address only. Open the port in the firewall: nft insert rule inet filter input udp dport 4433 accept"},
		&cli.StringFlag{Name: "mode", Value: "tun", EnvVars: env("mode"),
			Usage: "tun (route IP packets between clients and this host) or tap (bridge Ethernet frames: a learning switch)"},
		&cli.StringFlag{Name: "dev", EnvVars: env("dev"),
			Usage: "device name, at most 15 characters (default qt0 for tun, qtap0 for tap); an existing device is used and left in place on exit"},
		&cli.StringSliceFlag{Name: "ip", EnvVars: env("ip"),
			Usage: "the server's tunnel address with prefix, e.g. 10.77.0.1/24 (repeat for IPv6: fd77::1/64); client addresses get this prefix length. Required in tun mode"},
		&cli.StringSliceFlag{Name: "pool", EnvVars: env("pool"),
			Usage: "network to assign addresses from to clients whose certificate has none, e.g. 10.77.0.128/25 (repeatable, one per family); stable per client identity"},
		&cli.StringSliceFlag{Name: "route", EnvVars: env("route"),
			Usage: "network that clients should route through the tunnel, e.g. 192.168.10.0/24 (repeatable)"},
		&cli.StringFlag{Name: "bridge", EnvVars: env("bridge"),
			Usage: "tap mode: attach the TAP device to this existing Linux bridge"},
	}
	flags = append(flags, tlsFlags("server")...)
	flags = append(flags, tunnelFlags()...)
	flags = append(flags, procsFlag(), lowLatencyFlag(), metricsFlag())
	flags = append(flags, crlFlag())
	flags = append(flags, tapPolicyFlags()...)
	flags = append(flags, rulesFlags()...)
	flags = append(flags, configFlag())
	flags = append(flags, append(privFlags(), hookFlags()...)...)
	return &cli.Command{
		Name:  "listen",
		Usage: "run the server: a hub for many clients",
		Description: `Creates (or opens) the TUN or TAP device, sets its addresses and MTU, and
serves many clients at once. In tun mode each packet goes to the client that
owns its destination address (clients reach each other through the server),
and packets whose source is not the sending client's are dropped. In tap mode
the server is a learning switch between its device (usually in a bridge with
the LAN) and all clients. Stop it with Ctrl-C or SIGTERM: clients are told.

While it runs, quictun status, kick and reload reach it over its control
socket, the abstract Unix socket ` + control.Addr("<dev>") + ` of its network namespace
(root and the user it runs as only; docs/OPERATIONS.md).

Running unprivileged, with a script once it is up:
  quictun listen --cert pki/server.crt --key pki/server.key --ca pki/ca.crt --ip 10.77.0.1/24 \
    --user nobody --group nogroup --up 'nft add rule inet filter input iifname "$QUICTUN_DEV" accept'`,
		Flags:  flags,
		Before: withConfig(checkUsage("cert", "key", "ca")),
		Action: runListen,
	}
}

func runListen(c *cli.Context) error {
	procs, err := tuneRuntime(c, slog.Default())
	if err != nil {
		return err
	}
	var sessionsChanged func(int) // one Go processor per client with --procs 0
	if procs != nil {
		sessionsChanged = procs.connections
	}
	// Everything is read and checked before the system is touched: the
	// flags here, the files next, the rest by the core's own Validate
	// (NewServer), whose errors advise turns back into flag advice.
	mode, err := device.ParseKind(c.String("mode"))
	if err != nil {
		return usageError{fmt.Errorf("--mode: %w", err)}
	}
	devName, err := devFlag(c, mode)
	if err != nil {
		return err
	}
	ips, err := prefixesFlag(c, "ip", false)
	if err != nil {
		return err
	}
	pools, err := prefixesFlag(c, "pool", true)
	if err != nil {
		return err
	}
	routes, err := prefixesFlag(c, "route", true)
	if err != nil {
		return err
	}
	rules, c2c, err := rulesFromFlags(c)
	if err != nil {
		return err
	}
	bridge := c.String("bridge")
	if bridge != "" && mode != device.TAP {
		return usageError{fmt.Errorf("--bridge needs --mode tap (a TUN device carries no Ethernet frames)")}
	}
	priv, dropPriv, err := privTarget(c)
	if err != nil {
		return err
	}
	metricsAt, err := metricsAddr(c)
	if err != nil {
		return err
	}
	cert, tlsConf, err := loadTLS(c, true, "")
	if err != nil {
		return err
	}
	resetKey, err := qcrypto.DeriveKey(cert.PrivateKey, "quictun stateless reset")
	if err != nil {
		return fmt.Errorf("derive stateless reset key: %w", err)
	}
	ticketKey, err := qcrypto.DeriveKey(cert.PrivateKey, "quictun session tickets")
	if err != nil {
		return fmt.Errorf("derive session ticket key: %w", err)
	}
	tlsConf.SetSessionTicketKeys([][32]byte{ticketKey})
	crl, err := setupServerCRL(c, slog.Default())
	if err != nil {
		return err
	}
	srk := quic.StatelessResetKey(resetKey)

	isolateClients, pinMACs := tapPolicy(c)
	log := slog.Default()
	srv, err := quictun.NewServer(quictun.ServerConfig{
		IsolateClients: isolateClients, PinMACs: pinMACs,
		Mode: mode, TLS: tlsConf, Listen: c.String("listen"),
		Networks: ips, Pools: pools, Routes: routes, MTU: c.Int("mtu"), PacketSize: c.Int("packet-size"),
		Keepalive: c.Duration("keepalive"), IdleTimeout: c.Duration("idle-timeout"),
		StatelessResetKey: &srk, Logger: log,
		SessionsChanged: sessionsChanged,
		Revocations:     crl.Revocations(),
		CACerts:         caCerts(c, log),
		Rules:           rules, ClientToClient: c2c,
		AddRoutes: func(r []netip.Prefix) (func() error, error) { return device.AddRoutes(devName, r) },
	})
	if err != nil {
		return advise(err)
	}
	stopCRL := crl.Watch()
	defer stopCRL()
	mx := newLiveMetrics(log)
	err = mx.start(metricsAt, metrics.NewServerCollector(srv, metrics.Options{CertificateExpiry: cert.Leaf.NotAfter}))
	if err != nil {
		srv.Close()
		return err
	}
	defer mx.Close()
	devAddrs := ips
	if bridge != "" && len(ips) > 0 {
		// A bridge port carries no addresses of its own; the bridge does.
		log.Warn("--ip is not set on a TAP that is a bridge port; put the address on the bridge instead",
			"bridge", bridge, "ip", c.StringSlice("ip"))
		devAddrs = nil
	}
	reload := oneAtATime(systemd.Reload(crl.withReload(reloader(c, log, srv, mx))))
	ctl, err := startServerControl(srv, devName, mode, cert.Leaf, reload, log)
	if err != nil {
		srv.Close()
		return err
	}
	dev, undo, err := openDevice(mode, devName, device.LinkConfig{
		Addrs: devAddrs, MTU: srv.MTU(), Bridge: bridge,
		MAC: tapMAC(mode, "server:"+cert.Leaf.Subject.CommonName+":"+devName),
	})
	if err != nil {
		ctl.Close()
		srv.Close()
		return err
	}
	if dropPriv {
		if err := dropPrivileges(c, priv, log); err != nil {
			ctl.Close()
			cleanupDevice(dev, undo, log)
			srv.Close()
			return err
		}
	}
	hk := newHooks(c, log)
	hk.Up(hookEnv{dev: dev.Name(), mode: mode.String(), addresses: devAddrs, routes: routes,
		identity: cert.Leaf.Subject.CommonName, mtu: srv.MTU()})
	ctx, stop := runContext(log, reload)
	defer stop()
	systemd.StoppingWhenDone(ctx)
	systemd.Ready("listening on " + srv.Addr() + ", device " + dev.Name())
	serr := srv.Serve(ctx, dev)
	hk.Down()
	ctl.Close()
	cleanupDevice(dev, undo, log)
	waitBounded(srv.Wait, 5*time.Second)
	if serr != nil {
		return advise(serr)
	}
	log.Info("server stopped", "counters", srv.Counters.Snapshot())
	return nil
}

// tapMAC returns a stable MAC for a TAP device, so a bridge's MAC does not
// change at every restart; nil for TUN.
func tapMAC(mode device.Kind, seed string) []byte {
	if mode != device.TAP {
		return nil
	}
	return device.StableMAC(seed)
}

// openDevice opens and configures the device; on error nothing is left behind.
func openDevice(mode device.Kind, name string, lc device.LinkConfig) (device.Device, func() error, error) {
	dev, err := device.Open(mode, name)
	if err != nil {
		return nil, nil, err
	}
	undo, err := device.Configure(dev.Name(), lc)
	if err != nil {
		dev.Close()
		return nil, nil, err
	}
	return dev, undo, nil
}

// cleanupDevice removes what we configured and closes the device (which
// removes it if we created it).
func cleanupDevice(dev device.Device, undo func() error, log *slog.Logger) {
	if undo != nil {
		if err := undo(); err != nil {
			log.Warn("could not undo the device configuration", "device", dev.Name(), "err", err)
		}
	}
	if d, ok := dev.(interface{ Dropped() uint64 }); ok {
		if n := d.Dropped(); n > 0 {
			log.Warn("the device handed over frames with offloads quictun does not handle; they were dropped",
				"device", dev.Name(), "dropped", n)
		}
	}
	if err := dev.Close(); err != nil {
		log.Warn("could not close the device", "device", dev.Name(), "err", err)
	}
}

// waitBounded runs wait but gives up after d.
func waitBounded(wait func(), d time.Duration) {
	done := make(chan struct{})
	go func() {
		wait()
		close(done)
	}()
	select {
	case <-done:
	case <-time.After(d):
		slog.Warn("some goroutines did not stop in time", "waited", d)
	}
}
