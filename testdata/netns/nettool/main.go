// Command nettool is the end-to-end tests' traffic helper. It runs inside
// the test's network namespaces (started with `ip netns exec`) and never
// talks to anything but the address it is given.
//
//	nettool recv -listen ADDR [-timeout D]
//	    accept one TCP connection, read it to EOF, hash it, send the report
//	    back to the sender and print it: "bytes=N sha256=HEX".
//	nettool send -to ADDR -bytes N [-timeout D]
//	    dial ADDR (retrying while it refuses, until the timeout), send N
//	    pseudo-random bytes, read the receiver's report, print its own
//	    report; exit 1 when the receiver got other bytes than were sent.
//	nettool hold-udp -listen ADDR [-timeout D]
//	    bind a UDP socket, print "ready", hold it until the timeout or a
//	    signal.
//	nettool ping [-count N] [-interval D] [-wait D] [-size N] ADDR
//	    send N ICMP echo requests (IPv4 or IPv6; raw socket, so root),
//	    print a line per reply and ping's summary ("N packets transmitted,
//	    M received, P% packet loss", "rtt min/avg/max = …"); exit 1 unless
//	    every request is answered. It ends (N-1)·interval + wait after it
//	    started at the latest.
//
// Every mode ends by its timeout, so a lost peer cannot hang a test. The
// demo pings with it, so that it needs no ping program on the machine.
package main

import (
	"bufio"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"errors"
	"flag"
	"fmt"
	"hash"
	"io"
	"math/rand/v2"
	"net"
	"os"
	"os/signal"
	"strings"
	"syscall"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: nettool recv|send|hold-udp|ping [flags]")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "recv":
		err = recvMain(os.Args[2:])
	case "send":
		err = sendMain(os.Args[2:])
	case "hold-udp":
		err = holdUDPMain(os.Args[2:])
	case "ping":
		err = pingMain(os.Args[2:])
	default:
		err = fmt.Errorf("unknown mode %q (want recv, send, hold-udp or ping)", os.Args[1])
	}
	if err != nil {
		fmt.Fprintf(os.Stderr, "nettool %s: %v\n", os.Args[1], err)
		os.Exit(1)
	}
}

// report is what both ends print and compare.
type report struct {
	bytes int64
	sum   string
}

func (r report) String() string { return fmt.Sprintf("bytes=%d sha256=%s", r.bytes, r.sum) }

func parseReport(line string) (report, error) {
	var r report
	if _, err := fmt.Sscanf(strings.TrimSpace(line), "bytes=%d sha256=%s", &r.bytes, &r.sum); err != nil {
		return report{}, fmt.Errorf("parse report %q: %w", line, err)
	}
	return r, nil
}

// countingHash hashes and counts what is written to it.
type countingHash struct {
	h hash.Hash
	n int64
}

func (c *countingHash) Write(p []byte) (int, error) {
	c.n += int64(len(p))
	return c.h.Write(p)
}

func (c *countingHash) report() report {
	return report{bytes: c.n, sum: hex.EncodeToString(c.h.Sum(nil))}
}

func recvMain(args []string) error {
	fs := flag.NewFlagSet("recv", flag.ExitOnError)
	listen := fs.String("listen", "", "TCP address to listen on")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)

	ln, err := net.Listen("tcp", *listen)
	if err != nil {
		return err
	}
	defer ln.Close()
	ln.(*net.TCPListener).SetDeadline(deadline)
	fmt.Fprintf(os.Stderr, "listening on %s\n", ln.Addr())
	c, err := ln.Accept()
	if err != nil {
		return fmt.Errorf("accept: %w", err)
	}
	defer c.Close()
	c.SetDeadline(deadline)
	start := time.Now()
	ch := &countingHash{h: sha256.New()}
	if _, err := io.CopyBuffer(ch, c, make([]byte, 256<<10)); err != nil {
		return fmt.Errorf("read after %d bytes: %w", ch.n, err)
	}
	r := ch.report()
	if _, err := fmt.Fprintln(c, r); err != nil {
		return fmt.Errorf("send report: %w", err)
	}
	c.(*net.TCPConn).CloseWrite()
	el := time.Since(start)
	fmt.Println(r)
	fmt.Fprintf(os.Stderr, "received %d bytes from %s in %v (%.1f Mbit/s)\n",
		r.bytes, c.RemoteAddr(), el.Round(time.Millisecond), float64(r.bytes)*8/el.Seconds()/1e6)
	// Wait for the sender to close, so it surely read the report.
	io.Copy(io.Discard, c)
	return nil
}

func sendMain(args []string) error {
	fs := flag.NewFlagSet("send", flag.ExitOnError)
	to := fs.String("to", "", "TCP address to send to")
	n := fs.Int64("bytes", 0, "how many bytes to send")
	timeout := fs.Duration("timeout", 60*time.Second, "give up after this long")
	fs.Parse(args)
	deadline := time.Now().Add(*timeout)

	var c net.Conn
	for {
		d := net.Dialer{Timeout: time.Until(deadline)}
		var err error
		c, err = d.Dial("tcp", *to)
		if err == nil {
			break
		}
		if !errors.Is(err, syscall.ECONNREFUSED) || time.Now().Add(100*time.Millisecond).After(deadline) {
			return fmt.Errorf("dial: %w", err)
		}
		time.Sleep(100 * time.Millisecond)
	}
	defer c.Close()
	c.SetDeadline(deadline)

	var seed [32]byte
	binary.LittleEndian.PutUint64(seed[:], uint64(time.Now().UnixNano()))
	binary.LittleEndian.PutUint64(seed[8:], uint64(os.Getpid()))
	src := rand.NewChaCha8(seed)
	ch := &countingHash{h: sha256.New()}
	buf := make([]byte, 64<<10)
	start := time.Now()
	for left := *n; left > 0; {
		b := buf[:min(int64(len(buf)), left)]
		src.Read(b)
		if _, err := c.Write(b); err != nil {
			return fmt.Errorf("write after %d bytes: %w", ch.n, err)
		}
		ch.Write(b)
		left -= int64(len(b))
	}
	if err := c.(*net.TCPConn).CloseWrite(); err != nil {
		return fmt.Errorf("close write: %w", err)
	}
	line, err := bufio.NewReader(c).ReadString('\n')
	if err != nil {
		return fmt.Errorf("read receiver's report after sending %d bytes: %w", ch.n, err)
	}
	el := time.Since(start)
	mine := ch.report()
	fmt.Println(mine)
	theirs, err := parseReport(line)
	if err != nil {
		return err
	}
	fmt.Fprintf(os.Stderr, "sent %d bytes to %s in %v (%.1f Mbit/s)\n",
		mine.bytes, *to, el.Round(time.Millisecond), float64(mine.bytes)*8/el.Seconds()/1e6)
	if theirs != mine {
		return fmt.Errorf("receiver got %v, sent %v", theirs, mine)
	}
	return nil
}

func holdUDPMain(args []string) error {
	fs := flag.NewFlagSet("hold-udp", flag.ExitOnError)
	listen := fs.String("listen", "", "UDP address to bind")
	timeout := fs.Duration("timeout", 120*time.Second, "release it after this long")
	fs.Parse(args)
	c, err := net.ListenPacket("udp", *listen)
	if err != nil {
		return err
	}
	defer c.Close()
	fmt.Println("ready", c.LocalAddr())
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, syscall.SIGTERM, syscall.SIGINT)
	select {
	case <-sig:
	case <-time.After(*timeout):
	}
	return nil
}
