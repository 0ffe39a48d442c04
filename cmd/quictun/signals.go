package main

import (
	"context"
	"log/slog"
	"os"
	"os/signal"
	"syscall"
)

// runContext returns the context listen and connect run under: SIGINT and
// SIGTERM end it (a clean shutdown: the peers are told, the device and
// routes removed). SIGHUP, which systemd's ExecReload and `kill -HUP`
// send, will re-read the configuration once there is a configuration
// file; until then it is logged and the tunnel keeps running (its default
// action would end the process without any cleanup). stop releases the
// signals.
func runContext(log *slog.Logger) (ctx context.Context, stop func()) {
	ctx, cancel := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	hup := make(chan os.Signal, 1)
	signal.Notify(hup, syscall.SIGHUP)
	done := make(chan struct{})
	go func() {
		defer close(done)
		for {
			select {
			case <-ctx.Done():
				return
			case <-hup:
				log.Warn("SIGHUP received: there is no configuration file to reload yet; the tunnel keeps running")
			}
		}
	}()
	return ctx, func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
