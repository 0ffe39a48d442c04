package main

import (
	"errors"
	"fmt"
	"log/slog"
	"net"
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
