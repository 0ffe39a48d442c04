package control

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"syscall"
	"time"
)

// maxResponse bounds the response line a client reads: a status of a few
// thousand sessions fits with room to spare.
const maxResponse = 64 << 20

// Do sends req to the process listening on addr and returns its response.
// A response that is not OK is returned as an *Error (with the response);
// nothing listening on addr is a *NotRunningError. ctx bounds the whole
// exchange.
func Do(ctx context.Context, addr string, req Request) (*Response, error) {
	if req.Version == 0 {
		req.Version = Version
	}
	var d net.Dialer
	c, err := d.DialContext(ctx, "unix", addr)
	if err != nil {
		if errors.Is(err, syscall.ECONNREFUSED) || errors.Is(err, syscall.ENOENT) {
			return nil, &NotRunningError{Addr: addr}
		}
		return nil, fmt.Errorf("connect to the control socket %s: %w", addr, err)
	}
	defer c.Close()
	if dl, ok := ctx.Deadline(); ok {
		c.SetDeadline(dl)
	}
	stop := context.AfterFunc(ctx, func() { c.SetDeadline(time.Now()) })
	defer stop()
	b, err := json.Marshal(req)
	if err != nil {
		return nil, err
	}
	_, werr := c.Write(append(b, '\n'))
	// A server that refuses us (permission_denied) answers and closes
	// without reading, so the write may fail while its answer waits to be
	// read: read it before reporting the write.
	line, err := bufio.NewReader(io.LimitReader(c, maxResponse)).ReadBytes('\n')
	if err != nil {
		switch {
		case ctx.Err() != nil:
			err = ctx.Err()
		case werr != nil:
			return nil, fmt.Errorf("send the request to %s: %w", addr, werr)
		}
		return nil, fmt.Errorf("read the response from %s: %w", addr, err)
	}
	var resp Response
	if err := json.Unmarshal(line, &resp); err != nil {
		return nil, fmt.Errorf("the response from %s is not JSON: %w", addr, err)
	}
	if resp.Version != Version {
		return &resp, &Error{Code: CodeVersion, Message: fmt.Sprintf(
			"the quictun on %s speaks control protocol version %d, this binary version %d: use the quictun binary the running process was started from", addr, resp.Version, Version)}
	}
	if !resp.OK {
		return &resp, &Error{Code: resp.Code, Message: resp.Error}
	}
	return &resp, nil
}

// GetStatus asks the process on addr for its status.
func GetStatus(ctx context.Context, addr string) (*Status, error) {
	resp, err := Do(ctx, addr, Request{Op: OpStatus})
	if err != nil {
		return nil, err
	}
	if resp.Status == nil {
		return nil, fmt.Errorf("the response from %s has no status", addr)
	}
	return resp.Status, nil
}

// Kick asks the server on addr to close the session of client name.
func Kick(ctx context.Context, addr, name string) error {
	_, err := Do(ctx, addr, Request{Op: OpKick, Name: name})
	return err
}

// Reload asks the process on addr to reload its configuration; the error
// says why it could not.
func Reload(ctx context.Context, addr string) error {
	_, err := Do(ctx, addr, Request{Op: OpReload})
	return err
}
