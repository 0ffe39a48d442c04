package metrics

import (
	"context"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/prometheus/client_golang/prometheus"
	"github.com/prometheus/client_golang/prometheus/promhttp"
)

// Path is where the endpoint serves the metrics.
const Path = "/metrics"

// Timeouts of the endpoint's HTTP server: a scrape is one small request,
// so a client that takes longer than this is not Prometheus.
const (
	readHeaderTimeout = 5 * time.Second
	writeTimeout      = 10 * time.Second
	idleTimeout       = time.Minute
	shutdownTimeout   = 2 * time.Second
)

// CheckAddr reports whether addr is a TCP address to listen on: host:port
// with a port number (0 picks a free port), the host an IP address, a
// name, or empty for every address.
func CheckAddr(addr string) error {
	host, port, err := net.SplitHostPort(addr)
	if err != nil {
		return fmt.Errorf("%q: want host:port, e.g. 127.0.0.1:9477", addr)
	}
	if _, err := strconv.ParseUint(port, 10, 16); err != nil {
		return fmt.Errorf("%q: the port %q is not a number from 0 to 65535", addr, port)
	}
	if strings.ContainsAny(host, " /") {
		return fmt.Errorf("%q: %q is not a host name or IP address", addr, host)
	}
	return nil
}

// Endpoint is the HTTP server that serves the metrics at Path.
type Endpoint struct {
	ln  net.Listener
	srv *http.Server
	log *slog.Logger

	started atomic.Bool
	done    chan struct{} // closed when the serving goroutine has ended
}

// Listen binds addr at once, so that an address in use is found before
// anything else is set up, and returns the endpoint serving g. Call Start
// to serve.
func Listen(addr string, g prometheus.Gatherer, log *slog.Logger) (*Endpoint, error) {
	if err := CheckAddr(addr); err != nil {
		return nil, err
	}
	if log == nil {
		log = slog.Default()
	}
	ln, err := net.Listen("tcp", addr)
	if err != nil {
		return nil, err
	}
	mux := http.NewServeMux()
	mux.Handle(Path, promhttp.HandlerFor(g, promhttp.HandlerOpts{
		ErrorLog:      errorLog{log},
		ErrorHandling: promhttp.ContinueOnError,
		Timeout:       writeTimeout / 2,
	}))
	mux.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/" {
			http.NotFound(w, r)
			return
		}
		fmt.Fprintf(w, "quictun: metrics at %s\n", Path)
	})
	return &Endpoint{
		ln: ln,
		srv: &http.Server{Handler: mux, ReadHeaderTimeout: readHeaderTimeout, WriteTimeout: writeTimeout,
			IdleTimeout: idleTimeout, ErrorLog: slog.NewLogLogger(log.Handler(), slog.LevelDebug)},
		done: make(chan struct{}),
		log:  log,
	}, nil
}

// Addr returns the address the endpoint listens on.
func (e *Endpoint) Addr() string { return e.ln.Addr().String() }

// Start serves in a goroutine until Close. A failure of the server (not
// of one request) is logged.
func (e *Endpoint) Start() {
	e.log.Info("serving metrics", "addr", "http://"+e.Addr()+Path)
	e.started.Store(true)
	go func() {
		defer close(e.done)
		if err := e.srv.Serve(e.ln); err != nil && !errors.Is(err, http.ErrServerClosed) {
			e.log.Error("metrics endpoint failed", "addr", e.Addr(), "err", err)
		}
	}()
}

// Close stops the endpoint: it lets a scrape in progress finish for a
// short while, then closes every connection.
func (e *Endpoint) Close() error {
	ctx, cancel := context.WithTimeout(context.Background(), shutdownTimeout)
	defer cancel()
	err := e.srv.Shutdown(ctx)
	if errors.Is(err, context.DeadlineExceeded) {
		err = e.srv.Close()
	}
	if e.started.Load() {
		<-e.done
	} else {
		// Shutdown closes only the listeners given to Serve.
		e.ln.Close()
	}
	return err
}

// errorLog passes promhttp's errors (a collector that failed) to slog.
type errorLog struct{ log *slog.Logger }

// Println implements promhttp.Logger.
func (l errorLog) Println(v ...any) { l.log.Warn("metrics scrape failed", "err", fmt.Sprint(v...)) }
