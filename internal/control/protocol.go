package control

import "fmt"

// Version is the version of the control protocol this package speaks.
const Version = 1

// MaxRequest is the largest request line the server reads, newline
// included. Requests are a few dozen bytes; the bound keeps a stuck or
// hostile client from making the server buffer without end.
const MaxRequest = 64 << 10

// The operations a request names (Request.Op).
const (
	// OpStatus asks for the process's Status.
	OpStatus = "status"
	// OpKick asks a server to close the session of Request.Name now.
	OpKick = "kick"
	// OpReload asks the process to reload its configuration.
	OpReload = "reload"
)

// The codes of a failed response (Response.Code, Error.Code).
const (
	// CodeBadRequest: the request was not one JSON object on one line, or
	// lacked a member it needs.
	CodeBadRequest = "bad_request"
	// CodeVersion: the request's version is not the server's (or, seen by
	// a client, the response's is not the client's).
	CodeVersion = "unsupported_version"
	// CodeUnknownOp: the server does not know the operation.
	CodeUnknownOp = "unknown_op"
	// CodePermission: the peer is neither root nor the server's user.
	CodePermission = "permission_denied"
	// CodeNotFound: kick named a client that has no session.
	CodeNotFound = "not_found"
	// CodeNotSupported: this process does not do that (kick on a client).
	CodeNotSupported = "not_supported"
	// CodeFailed: the operation ran and failed (a reload that could not
	// apply its file); the error says why.
	CodeFailed = "failed"
)

// Request is one request line.
type Request struct {
	// Version is the protocol version of the request: Version.
	Version int `json:"version"`
	// Op is one of OpStatus, OpKick, OpReload.
	Op string `json:"op"`
	// Name is the client identity to kick (OpKick only).
	Name string `json:"name,omitempty"`
}

// Response is one response line.
type Response struct {
	// Version is the server's protocol version.
	Version int `json:"version"`
	// OK says whether the operation succeeded.
	OK bool `json:"ok"`
	// Code and Error say why it did not (absent when OK).
	Code  string `json:"code,omitempty"`
	Error string `json:"error,omitempty"`
	// Status is the answer to OpStatus.
	Status *Status `json:"status,omitempty"`
}

// Error is a failed response as an error: the client returns it, and a
// handler may return one to choose the code (any other error a handler
// returns is sent with CodeFailed).
type Error struct {
	Code    string
	Message string
}

// Error implements error.
func (e *Error) Error() string { return e.Message }

// NotFound returns the error a Kick handler returns for a name without a
// session; msg says so for a person.
func NotFound(msg string) *Error { return &Error{Code: CodeNotFound, Message: msg} }

// Addr returns the address of the control socket of the quictun process
// serving device dev: the abstract Unix socket "@quictun/<dev>", which
// exists only in the process's network namespace.
func Addr(dev string) string { return addrPrefix + dev }

// addrPrefix starts every control socket address; Running looks for it.
const addrPrefix = "@quictun/"

// NotRunningError is returned by the client when nothing listens on the
// address: no quictun serves that device in this network namespace.
type NotRunningError struct {
	Addr string
}

// Error implements error.
func (e *NotRunningError) Error() string {
	return fmt.Sprintf("nothing listens on %s", e.Addr)
}

// InUseError is returned by Listen when another process already listens
// on the address: a quictun for the same device runs in this network
// namespace.
type InUseError struct {
	Addr string
}

// Error implements error.
func (e *InUseError) Error() string {
	return fmt.Sprintf("the control socket %s is in use: another quictun process for this device runs in this network namespace", e.Addr)
}
