package control

import (
	"bufio"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"log/slog"
	"net"
	"os"
	"sync"
	"sync/atomic"
	"syscall"
	"time"
)

// Handlers answer the requests. The server calls them from the goroutine
// of each connection, so they may run at the same time.
type Handlers struct {
	// Status returns a snapshot of the process. Required.
	Status func() Status
	// Kick closes the session of the client with this identity; nil on a
	// process that has no sessions to kick (a client), which is then
	// answered not_supported. A name without a session should be an
	// error made by NotFound.
	Kick func(name string) error
	// Reload reloads the configuration; its error's text goes back to
	// the caller. nil: answered not_supported.
	Reload func() error
}

const (
	// ioTimeout bounds reading a request and writing its response; the
	// handler itself is not bounded (a reload reads files).
	ioTimeout = 5 * time.Second
	// maxConns is how many connections are served at once; more wait in
	// the listen backlog.
	maxConns = 16
)

// Server serves the control socket of one process.
type Server struct {
	ln  *net.UnixListener
	h   Handlers
	log *slog.Logger
	sem chan struct{}
	wg  sync.WaitGroup

	// lastRefusal is when a refused peer was last logged (UnixNano): one
	// line a second at most, whatever a local user tries.
	lastRefusal atomic.Int64

	mu     sync.Mutex
	conns  map[net.Conn]struct{} // open connections; guarded by mu
	closed bool                  // guarded by mu
}

// Listen listens on addr (see Addr) and serves requests with h until
// Close. A second process for the same address gets an *InUseError. log
// may be nil (no logging).
func Listen(addr string, h Handlers, log *slog.Logger) (*Server, error) {
	if h.Status == nil {
		return nil, errors.New("control: Handlers.Status is required")
	}
	if log == nil {
		log = slog.New(slog.DiscardHandler)
	}
	ln, err := listenUnix(addr)
	if err != nil {
		if errors.Is(err, syscall.EADDRINUSE) {
			return nil, &InUseError{Addr: addr}
		}
		return nil, fmt.Errorf("listen on the control socket %s: %w", addr, err)
	}
	s := &Server{ln: ln, h: h, log: log, sem: make(chan struct{}, maxConns), conns: make(map[net.Conn]struct{})}
	s.wg.Add(1)
	go s.serve()
	return s, nil
}

// Addr returns the address the server listens on.
func (s *Server) Addr() string { return s.ln.Addr().String() }

// Close stops listening, closes open connections and waits until every
// handler has returned.
func (s *Server) Close() error {
	s.mu.Lock()
	s.closed = true
	for c := range s.conns {
		c.Close()
	}
	s.mu.Unlock()
	err := s.ln.Close()
	s.wg.Wait()
	return err
}

func (s *Server) serve() {
	defer s.wg.Done()
	for {
		s.sem <- struct{}{}
		c, err := s.ln.AcceptUnix()
		if err != nil {
			<-s.sem
			if errors.Is(err, net.ErrClosed) {
				return
			}
			// EMFILE and the like: wait instead of spinning.
			s.log.Warn("control socket accept failed", "err", err)
			time.Sleep(100 * time.Millisecond)
			continue
		}
		if !s.track(c, true) {
			c.Close()
			<-s.sem
			return
		}
		s.wg.Add(1)
		go func() {
			defer s.wg.Done()
			defer func() { <-s.sem }()
			defer s.track(c, false)
			defer c.Close()
			s.handle(c)
		}()
	}
}

// track adds (or removes) c to the open connections; it reports false
// when the server is closed.
func (s *Server) track(c net.Conn, add bool) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	if !add {
		delete(s.conns, c)
		return true
	}
	if s.closed {
		return false
	}
	s.conns[c] = struct{}{}
	return true
}

// handle serves one connection: the peer's credentials, one request, one
// response.
func (s *Server) handle(c *net.UnixConn) {
	c.SetDeadline(time.Now().Add(ioTimeout))
	cred, err := peerCred(c)
	if err != nil {
		s.log.Warn("control socket: cannot read the peer's credentials; refused", "err", err)
		s.reply(c, Response{Code: CodePermission, Error: "cannot check who you are: " + err.Error()})
		return
	}
	self := uint32(os.Geteuid())
	if !allowed(cred.uid, self) {
		s.logRefusal(cred, self)
		s.reply(c, Response{Code: CodePermission, Error: refusal(cred.uid, self)})
		return
	}
	req, resp := readRequest(c)
	if resp == nil {
		c.SetDeadline(time.Time{}) // the handler may take its time
		s.log.Debug("control request", "op", req.Op, "name", req.Name, "uid", cred.uid, "pid", cred.pid)
		resp = s.answer(req)
		c.SetDeadline(time.Now().Add(ioTimeout))
	}
	s.reply(c, *resp)
}

// allowed reports whether a peer with this uid may use the socket of a
// process running as self: root, and the process's own user (after a
// privilege drop, that user and root).
func allowed(peer, self uint32) bool { return peer == 0 || peer == self }

// refusal says to a refused peer why, and what to do.
func refusal(peer, self uint32) string {
	if self == 0 {
		return fmt.Sprintf("permission denied: this quictun (pid %d) answers only root, and you are uid %d: run the command as root (sudo)", os.Getpid(), peer)
	}
	return fmt.Sprintf("permission denied: this quictun (pid %d) answers only root and uid %d, and you are uid %d: run the command as root (sudo) or as uid %d", os.Getpid(), self, peer, self)
}

func (s *Server) logRefusal(cred ucred, self uint32) {
	now := time.Now().UnixNano()
	last := s.lastRefusal.Load()
	if now-last < int64(time.Second) || !s.lastRefusal.CompareAndSwap(last, now) {
		return
	}
	s.log.Warn("control request refused: the peer is neither root nor this process's user",
		"uid", cred.uid, "pid", cred.pid, "our_uid", self)
}

// readRequest reads and checks one request line; a non-nil Response is
// the error to send instead of an answer.
func readRequest(c net.Conn) (Request, *Response) {
	line, err := bufio.NewReader(io.LimitReader(c, MaxRequest)).ReadBytes('\n')
	switch {
	case err == io.EOF && len(line) == MaxRequest:
		return Request{}, &Response{Code: CodeBadRequest, Error: fmt.Sprintf("request longer than %d bytes", MaxRequest)}
	case err != nil:
		return Request{}, &Response{Code: CodeBadRequest, Error: "the request must be one JSON object on one line, ending in a newline: " + err.Error()}
	}
	return parseRequest(line)
}

// parseRequest decodes and checks a request line.
func parseRequest(line []byte) (Request, *Response) {
	var req Request
	if err := json.Unmarshal(line, &req); err != nil {
		return req, &Response{Code: CodeBadRequest, Error: "the request is not a JSON object: " + err.Error()}
	}
	switch {
	case req.Version == 0:
		return req, &Response{Code: CodeBadRequest, Error: `the request has no "version"`}
	case req.Version != Version:
		return req, &Response{Code: CodeVersion, Error: fmt.Sprintf(
			"this quictun speaks control protocol version %d, the request is version %d: use the quictun binary the running process was started from", Version, req.Version)}
	case req.Op == "":
		return req, &Response{Code: CodeBadRequest, Error: `the request has no "op"`}
	}
	return req, nil
}

// answer runs the handler a request names.
func (s *Server) answer(req Request) *Response {
	switch req.Op {
	case OpStatus:
		st := s.h.Status()
		return &Response{OK: true, Status: &st}
	case OpKick:
		if s.h.Kick == nil {
			return &Response{Code: CodeNotSupported, Error: "kick closes a client's session on a server; this quictun is not a server"}
		}
		if req.Name == "" {
			return &Response{Code: CodeBadRequest, Error: `kick needs a "name"`}
		}
		return result(s.h.Kick(req.Name))
	case OpReload:
		if s.h.Reload == nil {
			return &Response{Code: CodeNotSupported, Error: "this quictun cannot reload"}
		}
		return result(s.h.Reload())
	}
	return &Response{Code: CodeUnknownOp, Error: fmt.Sprintf("unknown op %q: want %s, %s or %s", req.Op, OpStatus, OpKick, OpReload)}
}

// result turns a handler's error into a response.
func result(err error) *Response {
	if err == nil {
		return &Response{OK: true}
	}
	var ce *Error
	if errors.As(err, &ce) {
		return &Response{Code: ce.Code, Error: ce.Message}
	}
	return &Response{Code: CodeFailed, Error: err.Error()}
}

// reply writes one response line. A peer that has gone away is not
// worth a log line.
func (s *Server) reply(c net.Conn, r Response) {
	r.Version = Version
	b, err := json.Marshal(r)
	if err != nil {
		// Only a Status with values JSON cannot hold; say so instead.
		b, _ = json.Marshal(Response{Version: Version, Code: CodeFailed, Error: "encode the response: " + err.Error()})
	}
	if _, err := c.Write(append(b, '\n')); err != nil {
		s.log.Debug("control socket: could not write the response", "err", err)
	}
}
