package main

import (
	"bytes"
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"os/signal"
	"syscall"

	"github.com/urfave/cli/v2"
	"golang.org/x/term"

	qcrypto "github.com/quictun/quictun/crypto"
)

// Passphrases of encrypted private keys. Two flags, one per key, so that a
// command that touches two keys (cert issue --encrypt: the CA's and the
// new one) never mixes them up:
//
//	--passphrase-file FILE      the CA key's (cert ca --encrypt, cert issue and
//	                            every command that signs)
//	--key-passphrase-file FILE  the key of --key (listen, connect), and the new
//	                            key of cert issue --encrypt: the same file
//	                            serves both
//
// Without the flag the passphrase is asked on the terminal (standard input,
// no echo), and only when the key is encrypted.

const (
	caPassphraseFileFlag  = "passphrase-file"
	keyPassphraseFileFlag = "key-passphrase-file"
)

// caPassphraseFlag is --passphrase-file of the cert commands that sign
// (issue, and revoke and crl as they come): the passphrase of an encrypted
// <dir>/ca.key. openCA reads it.
func caPassphraseFlag() cli.Flag {
	return &cli.StringFlag{Name: caPassphraseFileFlag, EnvVars: certEnv(caPassphraseFileFlag), TakesFile: true,
		Usage: "read the passphrase of an encrypted <dir>/ca.key from the first line of `FILE` (default: ask on the terminal, only when ca.key is encrypted)"}
}

// keyPassphraseFlag is --key-passphrase-file of listen and connect.
func keyPassphraseFlag() cli.Flag {
	return &cli.StringFlag{Name: keyPassphraseFileFlag, EnvVars: env(keyPassphraseFileFlag), TakesFile: true,
		Usage: "read the passphrase of an encrypted --key from the first line of `FILE`, e.g. a systemd credential: --key-passphrase-file ${CREDENTIALS_DIRECTORY}/key.pass " +
			"(default: ask on the terminal, only when the key is encrypted)"}
}

// passphraseSource returns the passphrase of an existing encrypted key:
// read from the file that flag names, else asked on the terminal.
func passphraseSource(c *cli.Context, flag string) qcrypto.Passphrase {
	file := c.String(flag)
	return func(keyFile string) ([]byte, error) {
		if file != "" {
			return readPassphraseFile(c, flag, file)
		}
		if !stdinIsTerminal() {
			return nil, usageError{fmt.Errorf("%s is encrypted and standard input is not a terminal to ask its passphrase on: give it with --%s FILE", keyFile, flag)}
		}
		p, err := askPassphrase(fmt.Sprintf("Passphrase for %s: ", keyFile))
		if err != nil {
			return nil, err
		}
		if len(p) == 0 {
			return nil, usageError{fmt.Errorf("no passphrase given for %s", keyFile)}
		}
		return p, nil
	}
}

// newPassphrase returns the passphrase to encrypt the new key keyFile
// with: read from the file that flag names, else asked twice on the
// terminal. An empty passphrase is refused.
func newPassphrase(c *cli.Context, flag, keyFile string) ([]byte, error) {
	if file := c.String(flag); file != "" {
		return readPassphraseFile(c, flag, file)
	}
	if !stdinIsTerminal() {
		return nil, usageError{fmt.Errorf("encrypting %s needs a passphrase and standard input is not a terminal to ask it on: give it with --%s FILE", keyFile, flag)}
	}
	p, err := askPassphrase(fmt.Sprintf("New passphrase for %s: ", keyFile))
	if err != nil {
		return nil, err
	}
	if len(p) == 0 {
		return nil, usageError{fmt.Errorf("an empty passphrase does not protect %s: type one, or leave out --encrypt", keyFile)}
	}
	again, err := askPassphrase("Repeat the passphrase: ")
	if err != nil {
		return nil, err
	}
	if !bytes.Equal(p, again) {
		return nil, usageError{fmt.Errorf("the two passphrases for %s differ: nothing was written, run the command again", keyFile)}
	}
	return p, nil
}

// readPassphraseFile returns the first line of the passphrase file of
// flag, as OpenSSL's -passin file: reads it. A file open to others is
// warned about, like a key.
func readPassphraseFile(c *cli.Context, flag, file string) ([]byte, error) {
	data, err := os.ReadFile(file)
	switch {
	case errors.Is(err, fs.ErrNotExist):
		return nil, usageError{fmt.Errorf("--%s %s does not exist: give the file that holds the passphrase (its first line)", flag, file)}
	case err != nil:
		return nil, usageError{fmt.Errorf("--%s: %w", flag, err)}
	}
	if err := qcrypto.CheckKeyFileMode(file); err != nil {
		warnf(c, "the passphrase file --%s: %v", flag, err)
	}
	line, _, _ := bytes.Cut(data, []byte("\n"))
	line = bytes.TrimSuffix(line, []byte("\r"))
	if len(line) == 0 {
		return nil, usageError{fmt.Errorf("--%s %s: its first line is empty: write the passphrase on it", flag, file)}
	}
	return line, nil
}

// warnf prints a warning line of a command to its error writer.
func warnf(c *cli.Context, format string, args ...any) {
	fmt.Fprintf(c.App.ErrWriter, "quictun: warning: "+format+"\n", args...)
}

// terminal is where passphrases are asked: standard input, when it is a
// terminal. Tests put a pseudo-terminal (or a non-terminal) there.
var terminal = os.Stdin

// stdinIsTerminal reports whether passphrases can be asked on terminal.
func stdinIsTerminal() bool {
	return term.IsTerminal(int(terminal.Fd()))
}

// askPassphrase prints prompt on standard error and reads a line from the
// terminal on standard input without echo. golang.org/x/term does the
// terminal modes; an interrupt while it waits puts the echo back before
// the process ends, which the default signal handling would not.
func askPassphrase(prompt string) ([]byte, error) {
	fd := int(terminal.Fd())
	state, err := term.GetState(fd)
	if err != nil {
		return nil, fmt.Errorf("read the passphrase from the terminal: %w", err)
	}
	sig := make(chan os.Signal, 1)
	signal.Notify(sig, os.Interrupt, syscall.SIGTERM)
	done := make(chan struct{})
	go func() {
		select {
		case <-sig:
			term.Restore(fd, state)
			fmt.Fprintln(os.Stderr)
			os.Exit(130)
		case <-done:
		}
	}()
	defer func() {
		signal.Stop(sig)
		close(done)
	}()
	fmt.Fprint(os.Stderr, prompt)
	p, err := term.ReadPassword(fd)
	fmt.Fprintln(os.Stderr)
	if err != nil && !errors.Is(err, io.EOF) {
		return nil, fmt.Errorf("read the passphrase from the terminal: %w", err)
	}
	return p, nil
}
