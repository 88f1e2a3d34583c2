// Command registry-htpasswd prints one htpasswd line "<user>:<bcrypt hash>" for the password
// read from standard input (one line; never from the command line, where ps would show it).
// The hash is golang.org/x/crypto/bcrypt at its default cost, the package and version the
// registry of this module checks passwords with.
//
//	printf '%s\n' "$password" | registry-htpasswd <user> >> htpasswd
package main

import (
	"bufio"
	"fmt"
	"os"
	"strings"

	"golang.org/x/crypto/bcrypt"
)

func main() {
	if len(os.Args) != 2 || os.Args[1] == "" || strings.ContainsAny(os.Args[1], ":\n") {
		fmt.Fprintln(os.Stderr, "usage: registry-htpasswd <user> (password on stdin; the user has no ':')")
		os.Exit(2)
	}
	line, err := bufio.NewReader(os.Stdin).ReadString('\n')
	if err != nil && line == "" {
		fmt.Fprintln(os.Stderr, "registry-htpasswd: no password on stdin")
		os.Exit(2)
	}
	password := strings.TrimRight(line, "\r\n")
	if len(password) < 12 || len(password) > 72 {
		fmt.Fprintln(os.Stderr, "registry-htpasswd: the password must have 12 to 72 bytes (bcrypt reads at most 72)")
		os.Exit(2)
	}
	hash, err := bcrypt.GenerateFromPassword([]byte(password), bcrypt.DefaultCost)
	if err != nil {
		fmt.Fprintln(os.Stderr, "registry-htpasswd:", err)
		os.Exit(1)
	}
	fmt.Printf("%s:%s\n", os.Args[1], hash)
}
