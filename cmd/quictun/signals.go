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
// send, calls reload — the function `quictun reload` reaches over the
// control socket too — and logs its result; the tunnel keeps running
// either way (the signal's default action would end the process without
// any cleanup). stop releases the signals.
func runContext(log *slog.Logger, reload func() error) (ctx context.Context, stop func()) {
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
				log.Info("SIGHUP received: reloading")
				logReload(log, "SIGHUP", reload())
			}
		}
	}()
	return ctx, func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
