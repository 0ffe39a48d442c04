package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net/netip"
	"time"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/device"
	"github.com/quictun/quictun/internal/control"
	"github.com/quictun/quictun/metrics"
	"github.com/quictun/quictun/quictun"
)

func connectCommand() *cli.Command {
	flags := []cli.Flag{
		&cli.StringFlag{Name: "server", EnvVars: env("server"),
			Usage: "the server's host:port, e.g. vpn.example.com:4433; required"},
		&cli.StringFlag{Name: "server-name", EnvVars: env("server-name"),
			Usage: "name to expect in the server's certificate (default: the host of --server)"},
		&cli.StringFlag{Name: "mode", EnvVars: env("mode"),
			Usage: "tun or tap: insist on this mode (default: whatever the server runs); a mismatch is an error"},
		&cli.StringFlag{Name: "dev", EnvVars: env("dev"),
			Usage: "device name, at most 15 characters (default qt0 for tun, qtap0 for tap)"},
		&cli.StringFlag{Name: "bridge", EnvVars: env("bridge"),
			Usage: "tap mode: attach the TAP device to this existing Linux bridge (then no address is set on it)"},
		&cli.IntFlag{Name: "max-retries", EnvVars: env("max-retries"),
			Usage: "give up after this many failed connection attempts in a row (default 0: never)"},
	}
	flags = append(flags, tlsFlags("client")...)
	flags = append(flags, tunnelFlags()...)
	flags = append(flags, procsFlag(), lowLatencyFlag(), metricsFlag())
	flags = append(flags, configFlag())
	flags = append(flags, append(privFlags(), hookFlags()...)...)
	return &cli.Command{
		Name:  "connect",
		Usage: "run a client: connect to a server and carry traffic",
		Description: `Dials the server, learns over the control stream what it needs (mode,
its addresses, MTU, routes), creates and configures its device, and carries
packets. When the connection is lost it keeps its device and redials. It
exits non-zero only for errors a retry cannot fix (certificates, bad files,
a refused mode), with a message that says what to do.

When the server changes the routes it pushes, the client adds and removes
them on its device: at once while connected, else when it reconnects.

While it runs, quictun status and reload reach it over its control socket,
the abstract Unix socket ` + control.Addr("<dev>") + ` of its network namespace (root and
the user it runs as only; docs/OPERATIONS.md), from the start when --dev or
--mode names the device, else once the first connection has set it up.

Running unprivileged once the device is up, with one more route (hooks keep
CAP_NET_ADMIN, so ip and nft work in them):
  quictun connect --server vpn.example.com:4433 --cert pki/laptop1.crt --key pki/laptop1.key --ca pki/ca.crt \
    --user nobody --group nogroup --up 'ip route add 10.0.0.0/8 dev "$QUICTUN_DEV"'`,
		Flags:  flags,
		Before: withConfig(checkUsage("server", "cert", "key", "ca")),
		Action: runConnect,
	}
}

func runConnect(c *cli.Context) error {
	if _, err := tuneRuntime(c, slog.Default()); err != nil {
		return err
	}
	var mode device.Kind
	if s := c.String("mode"); s != "" {
		m, err := device.ParseKind(s)
		if err != nil {
			return usageError{fmt.Errorf("--mode: %w", err)}
		}
		mode = m
	}
	if c.String("dev") != "" {
		if err := device.CheckName(c.String("dev")); err != nil {
			return usageError{fmt.Errorf("--dev: %w", err)}
		}
	}
	server := c.String("server")
	bridge := c.String("bridge")
	if bridge != "" && mode == device.TUN {
		return usageError{fmt.Errorf("--bridge needs tap mode (a TUN device carries no Ethernet frames)")}
	}
	priv, dropPriv, err := privTarget(c)
	if err != nil {
		return err
	}
	metricsAt, err := metricsAddr(c)
	if err != nil {
		return err
	}
	cert, tlsConf, err := loadTLS(c, false, c.String("server-name"))
	if err != nil {
		return err
	}
	log := slog.Default()
	mx := newLiveMetrics(log) // started once the client exists
	reload := oneAtATime(systemd.Reload(reloader(c, log, nil, mx)))
	ctl := &clientControl{cert: cert.Leaf, reload: reload, log: log}
	defer ctl.close()
	hk := newHooks(c, log)
	var upEnv hookEnv

	var undo func() error
	var routes *device.RouteSet // the pushed routes that change while connected
	setup := func(a quictun.Assignment) (device.Device, error) {
		name, err := devFlag(c, a.Mode)
		if err != nil {
			return nil, err
		}
		if err := ctl.start(name, a.Mode); err != nil {
			return nil, err
		}
		if bridge != "" && a.Mode != device.TAP {
			return nil, fmt.Errorf("--bridge needs tap mode but the server runs in %s mode", a.Mode)
		}
		lc := device.LinkConfig{MTU: a.MTU, Bridge: bridge, Routes: a.Routes,
			MAC: tapMAC(a.Mode, "client:"+cert.Leaf.Subject.CommonName+":"+name)}
		if bridge == "" {
			lc.Addrs = a.Addresses
		}
		dev, u, err := openDevice(a.Mode, name, lc)
		if err != nil {
			return nil, err
		}
		undo, routes = u, device.NewRouteSet(dev.Name())
		if dropPriv {
			if err := dropPrivileges(c, priv, log); err != nil {
				cleanupDevice(dev, u, log)
				return nil, err
			}
		}
		upEnv = hookEnv{dev: dev.Name(), mode: a.Mode.String(), addresses: lc.Addrs, routes: a.Routes, gateways: a.Gateways,
			identity: cert.Leaf.Subject.CommonName, server: server, mtu: a.MTU}
		return dev, nil
	}
	cl, err := quictun.NewClient(quictun.ClientConfig{
		Server: server, TLS: tlsConf, Mode: mode, MTU: c.Int("mtu"), PacketSize: c.Int("packet-size"),
		Keepalive: c.Duration("keepalive"), IdleTimeout: c.Duration("idle-timeout"),
		MaxRetries: c.Int("max-retries"), SetupDevice: setup, Logger: log,
		CACerts:      caCerts(c, log),
		UpdateRoutes: func(add, remove []netip.Prefix) error { return routes.Update(add, remove) },
		OnUp:         func(quictun.Assignment) { hk.Up(upEnv) },
		StateChanged: systemd.ClientState(server),
	})
	if err != nil {
		return advise(err)
	}
	err = mx.start(metricsAt, metrics.NewClientCollector(cl, metrics.Options{CertificateExpiry: cert.Leaf.NotAfter}))
	if err != nil {
		return err
	}
	defer mx.Close()
	ctl.cl = cl
	if name, ok := knownClientDev(c, mode); ok {
		if err := ctl.start(name, mode); err != nil {
			return err
		}
	}
	ctx, stop := runContext(log, reload)
	defer stop()
	systemd.StoppingWhenDone(ctx)
	log.Info("connecting", "server", server)
	rerr := cl.Run(ctx)
	ctl.close()
	if dev := cl.Device(); dev != nil {
		hk.Down()
		cleanupDevice(dev, func() error { return errors.Join(routes.Undo(), undo()) }, log)
		waitBounded(cl.Wait, 5*time.Second)
	}
	if rerr != nil {
		return advise(rerr)
	}
	log.Info("client stopped", "counters", cl.Counters.Snapshot())
	return nil
}
