// Command dropper is the test subject of privdrop's TestDrop: it starts
// threads, drops to a user keeping CAP_NET_ADMIN, and prints as JSON what
// each thread and a child process can do afterwards.
package main

import (
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"os"
	"os/exec"
	"os/signal"
	"runtime"
	"sync"
	"syscall"

	"golang.org/x/sys/unix"

	"github.com/quictun/quictun/internal/privdrop"
)

// Report is what dropper prints.
type Report struct {
	DropErr  string
	Threads  []privdrop.ThreadCreds
	Locked   int      // threads that were locked to a goroutine
	ForceOK  int      // of them, how many could set SO_RCVBUFFORCE (CAP_NET_ADMIN) after the drop
	ForceErr []string // and why the others could not
	ChownErr string   // chown to root after the drop (needs CAP_CHOWN: must fail)
	Child    privdrop.ThreadCreds
	ChildErr string
}

func main() {
	user := flag.String("user", "nobody", "user to become")
	locked := flag.Int("threads", 8, "goroutines locked to their own threads")
	file := flag.String("chown", "", "a file of the user's to give to root (which must fail)")
	flag.Parse()
	uid, gid, err := privdrop.LookupUser(*user)
	if err != nil {
		fmt.Fprintln(os.Stderr, err)
		os.Exit(2)
	}
	// os/signal parks a thread with every signal blocked that nobody
	// asked for, as quictun's signal handling does.
	signal.Notify(make(chan os.Signal, 1), syscall.SIGHUP)
	r := Report{Locked: *locked}
	start, results := make(chan struct{}), make(chan error, *locked)
	var ready sync.WaitGroup
	for range *locked {
		ready.Add(1)
		go func() {
			runtime.LockOSThread() // never unlocked: this thread stays this goroutine's
			ready.Done()
			<-start
			results <- force()
		}()
	}
	ready.Wait()
	if err := privdrop.Drop(privdrop.Target{UID: uid, GID: gid, Keep: []privdrop.Capability{privdrop.CapNetAdmin}}); err != nil {
		r.DropErr = err.Error()
	}
	r.Threads, _ = privdrop.Threads()
	close(start)
	for range *locked {
		if err := <-results; err != nil {
			r.ForceErr = append(r.ForceErr, err.Error())
		} else {
			r.ForceOK++
		}
	}
	if err := os.Chown(*file, 0, 0); err != nil {
		r.ChownErr = err.Error()
		if errors.Is(err, unix.EPERM) {
			r.ChownErr = "EPERM"
		}
	}
	if out, err := exec.Command("cat", "/proc/self/status").Output(); err != nil {
		r.ChildErr = err.Error()
	} else if r.Child, err = privdrop.ParseStatus(string(out)); err != nil {
		r.ChildErr = err.Error()
	}
	json.NewEncoder(os.Stdout).Encode(r)
}

// force sets SO_RCVBUFFORCE on a new UDP socket, which needs CAP_NET_ADMIN
// in the calling thread.
func force() error {
	fd, err := unix.Socket(unix.AF_INET, unix.SOCK_DGRAM, 0)
	if err != nil {
		return err
	}
	defer unix.Close(fd)
	return unix.SetsockoptInt(fd, unix.SOL_SOCKET, unix.SO_RCVBUFFORCE, 1<<20)
}
