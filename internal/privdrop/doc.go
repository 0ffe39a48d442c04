// Package privdrop lets a root process become another user and group while
// keeping a few capabilities (quictun keeps CAP_NET_ADMIN, to change its
// device's addresses and routes, and to size its sockets, after the drop).
//
// On Linux, user and group IDs and capabilities belong to each thread, not
// to the process, and a Go program runs on many threads. Go's
// syscall.Setgroups, Setresgid and Setresuid change every thread, but
// there is no such call for the two steps that keep capabilities across a
// change of user (prctl PR_SET_KEEPCAPS before it, capset after it) or for
// the bounding and ambient sets. Without cgo, syscall.AllThreadsSyscall
// runs them on every thread; in a binary that links cgo (the default
// `go build` on a machine with a C compiler, because the net package uses
// the C resolver) it refuses, so there a small C function signals each
// thread in /proc/self/task and has it make the call in a signal handler
// (allthreads_cgo_linux.go). Drop checks /proc/self/task afterwards: a
// thread left behind is an error, never a silent half-drop.
//
// Lookup of names works everywhere; Drop works on Linux only and returns
// errors.ErrUnsupported elsewhere.
package privdrop
