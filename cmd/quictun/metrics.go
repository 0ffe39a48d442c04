package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
	"sync"
	"syscall"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/metrics"
)

// metricsFlag is --metrics of listen and connect.
func metricsFlag() cli.Flag {
	return &cli.StringFlag{Name: "metrics", EnvVars: env("metrics"),
		Usage: "serve Prometheus metrics over HTTP on this TCP address, e.g. 127.0.0.1:9477 " +
			"(then: curl http://127.0.0.1:9477" + metrics.Path + "; names in docs/OPERATIONS.md). " +
			"Off by default. The metrics name every client: keep the address on loopback or a management network"}
}

// metricsAddr returns --metrics ("" when off), checked: a malformed
// address is a usage error.
func metricsAddr(c *cli.Context) (string, error) {
	addr := c.String("metrics")
	if addr == "" {
		return "", nil
	}
	if err := metrics.CheckAddr(addr); err != nil {
		return "", usageError{fmt.Errorf("--metrics %w", err)}
	}
	return addr, nil
}

// serveMetrics binds addr (checked by metricsAddr; "" does nothing) and
// serves col there with the Go and process metrics. It is called before
// any device is touched, so a port in use fails first. stop ends the
// endpoint.
func serveMetrics(addr string, col prometheus.Collector, log *slog.Logger) (stop func(), err error) {
	if addr == "" {
		return func() {}, nil
	}
	ep, err := metrics.Listen(addr, metrics.NewRegistry(col), log)
	if err != nil {
		var dns *net.DNSError
		switch {
		case errors.As(err, &dns):
			return nil, usageError{fmt.Errorf("--metrics %s: %w", addr, err)}
		case errors.Is(err, syscall.EADDRINUSE):
			return nil, fmt.Errorf("--metrics %s: %w: another process holds the port; choose another address or stop that process", addr, err)
		}
		return nil, fmt.Errorf("--metrics %s: %w", addr, err)
	}
	ep.Start()
	return func() {
		if err := ep.Close(); err != nil {
			log.Warn("could not stop the metrics endpoint", "err", err)
		}
	}, nil
}

// liveMetrics is the --metrics endpoint of a running process, which a
// reload may start, move or stop (the metrics key of a --config file).
type liveMetrics struct {
	log *slog.Logger

	mu   sync.Mutex
	col  prometheus.Collector // set by start
	addr string               // "" when off
	stop func()
}

// newLiveMetrics returns an endpoint that serves nothing until start.
func newLiveMetrics(log *slog.Logger) *liveMetrics {
	return &liveMetrics{log: log, stop: func() {}}
}

// start serves col at addr ("" does nothing), as serveMetrics does.
func (m *liveMetrics) start(addr string, col prometheus.Collector) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.col = col
	stop, err := serveMetrics(addr, col, m.log)
	if err != nil {
		return err
	}
	m.addr, m.stop = addr, stop
	return nil
}

// Set moves the endpoint to addr ("" stops it). The new address is bound
// before the old one is given up, so a failure leaves the endpoint as it
// was; only when the new address needs the old one's port (the same port
// on an overlapping address) is the old endpoint closed first, and opened
// again if the new one still fails.
func (m *liveMetrics) Set(addr string) error {
	m.mu.Lock()
	defer m.mu.Unlock()
	if addr == m.addr {
		return nil
	}
	if m.col == nil {
		return errors.New("the metrics endpoint is not set up yet")
	}
	if addr != "" {
		if err := metrics.CheckAddr(addr); err != nil {
			return err
		}
	}
	stop, err := serveMetrics(addr, m.col, m.log)
	if err != nil && errors.Is(err, syscall.EADDRINUSE) && m.addr != "" {
		m.stop()
		if stop, err = serveMetrics(addr, m.col, m.log); err != nil {
			if back, berr := serveMetrics(m.addr, m.col, m.log); berr == nil {
				m.stop = back
			} else {
				m.addr, m.stop = "", func() {}
				m.log.Error("the metrics endpoint is off: neither the new nor the old address could be bound", "err", berr)
			}
			return err
		}
	} else if err != nil {
		return err
	} else {
		m.stop()
	}
	if addr == "" {
		m.log.Info("metrics endpoint stopped", "was", m.addr)
	}
	m.addr, m.stop = addr, stop
	return nil
}

// Close stops the endpoint.
func (m *liveMetrics) Close() {
	m.mu.Lock()
	defer m.mu.Unlock()
	m.stop()
	m.addr, m.stop = "", func() {}
}
