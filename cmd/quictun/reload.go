package main

import (
	"log/slog"
	"net/netip"
	"slices"
	"strings"

	"github.com/urfave/cli/v2"

	"github.com/quictun/quictun/config"
	"github.com/quictun/quictun/quictun"
)

// liveServer is what a reload changes in a running server without
// dropping a tunnel: the routes pushed to the clients (sent to those
// connected over their control streams), the address pools for clients
// that connect from now on, and the TAP switch's policy. Each call takes
// the whole new list (or both settings) and either applies it or returns
// an error and changes nothing. listen passes its *quictun.Server.
type liveServer interface {
	SetRoutes([]netip.Prefix) error
	SetPools([]netip.Prefix) error
	// SetTAPPolicy takes isolate-clients and pin-macs (tappolicy.go).
	SetTAPPolicy(isolateClients, pinMACs bool) error
	// SetRules and Rules: the access rules (--rule, --client-to-client).
	SetRules([]quictun.Rule, quictun.RuleAction) error
	Rules() ([]quictun.Rule, quictun.RuleAction)
}

// reloader returns the function that SIGHUP (and `quictun reload`) calls
// to re-read the --config file of the command in c; noConfigFile when it
// was started without one. server, if not nil, takes changed routes and pools
// live; with nil, a change to them needs a restart like every other
// setting but the log level.
func reloader(c *cli.Context, log *slog.Logger, server liveServer, mx *liveMetrics) func() error {
	lc := loadedConfigOf(c)
	if lc == nil {
		return noConfigFile
	}
	r := &configReloader{cfg: lc, server: server, metrics: mx, log: log, running: lc.file, flags: c}
	r.crl = serverCRLOf(c)
	return r.reload
}

// configReloader re-reads a --config file and applies what changed.
type configReloader struct {
	cfg     *loadedConfig
	server  liveServer   // nil: routes, pools and the TAP policy need a restart
	metrics *liveMetrics // nil: the metrics address needs a restart
	crl     *serverCRL   // nil: no CRL (connect)
	log     *slog.Logger
	flags   *cli.Context // the command's, for the values of fixed keys

	// running holds the file's values in effect: those read at start,
	// with the keys applied by later reloads. A change that needs a
	// restart stays out of it, so every reload names it again until the
	// process restarts. Reloads never overlap: listen and connect run
	// them through oneAtATime.
	running *config.File
}

// reload reads the file again and compares it with the values in effect.
// A file that cannot be read or has an error changes nothing: the error
// names the file, line and key. Otherwise the live settings that changed
// are applied (those the server may refuse first, so that a refusal
// changes nothing either), and one log line names each change that was
// left as it was: those that need a restart, and those that a flag or
// QUICTUN_* variable overrides.
func (r *configReloader) reload() error {
	f, err := config.Load(r.cfg.file.Path, r.cfg.schema)
	if err != nil {
		return err
	}
	var live, restart, overridden []string
	for _, key := range config.Diff(r.running, f) {
		switch {
		case r.cfg.fixed[key]:
			overridden = append(overridden, key)
		case r.isLive(key):
			live = append(live, key)
		default:
			restart = append(restart, key)
		}
	}
	if err := r.apply(f, live); err != nil {
		return err
	}
	r.running = withValues(r.running, f, live)

	if len(live)+len(restart)+len(overridden) == 0 {
		r.log.Info("configuration reloaded; nothing changed", "file", f.Path)
		return nil
	}
	if len(live) > 0 {
		attrs := []any{"file", f.Path}
		for _, key := range live {
			attrs = append(attrs, key, strings.Join(r.text(f, key), ","))
		}
		r.log.Info("configuration reloaded", attrs...)
	}
	if len(restart)+len(overridden) > 0 {
		attrs := []any{"file", f.Path}
		if len(restart) > 0 {
			attrs = append(attrs, "need_restart", strings.Join(restart, ","))
		}
		if len(overridden) > 0 {
			attrs = append(attrs, "overridden_by_flag_or_env", strings.Join(overridden, ","))
		}
		r.log.Warn("configuration reloaded; some changes were left as they were", attrs...)
	}
	return nil
}

// isLive reports whether a change to key can be applied without a
// restart.
func (r *configReloader) isLive(key string) bool {
	switch key {
	case "log-level":
		return true
	case "route", "pool", "isolate-clients", "pin-macs", "rule", "client-to-client":
		return r.server != nil
	case "metrics":
		return r.metrics != nil
	case "crl":
		return r.crl != nil
	}
	return false
}

// text returns the value of key in f, or the flag's default when f does
// not set it.
func (r *configReloader) text(f *config.File, key string) []string {
	if v, ok := f.Lookup(key); ok {
		return v.Text
	}
	return r.cfg.defaults[key]
}

// apply sets the live keys to their values in f. The server's settings go
// first and are put back if a later one is refused; the log level, which
// cannot fail, goes last, so that the reload's own log lines follow it.
func (r *configReloader) apply(f *config.File, keys []string) error {
	var undo []func() error
	fail := func(key string, err error) error {
		for i := len(undo) - 1; i >= 0; i-- {
			if uerr := undo[i](); uerr != nil {
				r.log.Error("could not put a setting back after a failed reload", "err", uerr)
			}
		}
		v, _ := f.Lookup(key)
		return &config.Error{File: f.Path, Line: v.Line, Key: key, Err: err}
	}
	for _, key := range []string{"route", "pool"} {
		if !slices.Contains(keys, key) {
			continue
		}
		var set func([]netip.Prefix) error
		switch key {
		case "route":
			set = r.server.SetRoutes
		case "pool":
			set = r.server.SetPools
		}
		// Both lists passed the key's check when they were loaded.
		now, err := parsePrefixes(r.text(f, key), true)
		if err != nil {
			return fail(key, err)
		}
		before, err := parsePrefixes(r.text(r.running, key), true)
		if err != nil {
			return fail(key, err)
		}
		if err := set(now); err != nil {
			return fail(key, err)
		}
		undo = append(undo, func() error { return set(before) })
	}
	if slices.Contains(keys, "crl") {
		before := r.crl.Path()
		if err := r.crl.SetPath(firstOf(r.text(f, "crl"))); err != nil {
			return fail("crl", err)
		}
		undo = append(undo, func() error { return r.crl.SetPath(before) })
	}
	if slices.Contains(keys, "isolate-clients") || slices.Contains(keys, "pin-macs") {
		// One call for both: pin-macs left unset follows isolate-clients.
		key := "isolate-clients"
		if !slices.Contains(keys, key) {
			key = "pin-macs"
		}
		isolate, pin := liveTAPPolicy(r.flags, r.cfg.fixed, f)
		wasIsolated, wasPinned := liveTAPPolicy(r.flags, r.cfg.fixed, r.running)
		if err := r.server.SetTAPPolicy(isolate, pin); err != nil {
			return fail(key, err)
		}
		undo = append(undo, func() error { return r.server.SetTAPPolicy(wasIsolated, wasPinned) })
	}
	if slices.Contains(keys, "rule") || slices.Contains(keys, "client-to-client") {
		key := "rule"
		if !slices.Contains(keys, key) {
			key = "client-to-client"
		}
		u, err := r.setRules(func(k string) []string { return r.text(f, k) })
		if err != nil {
			return fail(key, err)
		}
		undo = append(undo, u)
	}
	if slices.Contains(keys, "metrics") {
		now, before := firstOf(r.text(f, "metrics")), firstOf(r.text(r.running, "metrics"))
		if err := r.metrics.Set(now); err != nil {
			return fail("metrics", err)
		}
		undo = append(undo, func() error { return r.metrics.Set(before) })
	}
	if slices.Contains(keys, "log-level") {
		level, err := parseLevel(r.text(f, "log-level")[0])
		if err != nil {
			return fail("log-level", err)
		}
		logLevel.Set(level)
	}
	return nil
}

// withValues returns base with the values of keys replaced by those in
// from (or removed, where from does not set them).
func withValues(base, from *config.File, keys []string) *config.File {
	out := &config.File{Path: from.Path}
	for _, v := range base.Values {
		if !slices.Contains(keys, v.Key) {
			out.Values = append(out.Values, v)
		}
	}
	for _, key := range keys {
		if v, ok := from.Lookup(key); ok {
			out.Values = append(out.Values, v)
		}
	}
	return out
}

// firstOf returns the first of a single-valued key's texts, "" if none.
func firstOf(ss []string) string {
	if len(ss) == 0 {
		return ""
	}
	return ss[0]
}
