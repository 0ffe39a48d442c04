// Package control is the local API of a running quictun process: the
// socket that `quictun status`, `quictun kick` and `quictun reload` talk
// to. It holds the protocol, the server side (which answers with handlers
// the caller gives it) and the client side the commands use.
//
// It knows nothing of the tunnel core: the status it carries is its own
// schema (Status and the types in it), which the command line fills from
// the core's snapshots, so that the JSON a script reads changes only when
// this package's Version does.
//
// # The socket
//
// A process serving device DEV listens on the abstract Unix socket
// "@quictun/DEV" (Addr). Abstract sockets belong to a network namespace,
// so two quictun processes in two namespaces with the same device name do
// not collide, and `quictun status` reaches the one of its own namespace;
// nothing is left behind in the file system when a process dies. An
// abstract socket has no file permissions, so the server checks the
// peer's credentials (SO_PEERCRED) on every connection: only root and
// the user the quictun process runs as are answered; anyone else gets a
// permission_denied response.
//
// # The protocol, version 1
//
// One request per connection: the client writes one JSON object on one
// line (at most MaxRequest bytes, ending in "\n"), the server writes one
// JSON object on one line and closes the connection.
//
//	→ {"version":1,"op":"status"}
//	← {"version":1,"ok":true,"status":{...}}
//
//	→ {"version":1,"op":"kick","name":"laptop1"}
//	← {"version":1,"ok":true}
//
//	→ {"version":1,"op":"reload"}
//	← {"version":1,"ok":false,"code":"failed","error":"nothing to reload: ..."}
//
// Every response carries the server's version, "ok", and on failure a
// "code" (the Code* constants) and an "error" for a person. Receivers
// ignore members they do not know: later versions add members without
// changing Version, which changes only when a version 1 reader would
// misread a message. A server answers a request of another version with
// code unsupported_version; a client refuses a response of another
// version. docs/OPERATIONS.md documents the same for operators, with the
// schema of the status object.
package control
