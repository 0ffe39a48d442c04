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
// send, calls reload (which re-reads the --config file and logs what it
// changed) and logs its error; the tunnel keeps running either way. With
// reload nil (no --config file) SIGHUP is only logged: its default action
// would end the process without any cleanup. stop releases the signals.
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
				if reload == nil {
					log.Warn("SIGHUP received: there is no configuration file to reload (see --config); the tunnel keeps running")
				} else if err := reload(); err != nil {
					log.Error("SIGHUP received: configuration not reloaded; nothing was changed", "err", err)
				}
			}
		}
	}()
	return ctx, func() {
		signal.Stop(hup)
		cancel()
		<-done
	}
}
