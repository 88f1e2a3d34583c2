// Command nodeimage is the one static program of the real node's local images.
//
//	nodeimage pause                 the pod sandbox: sleeps until SIGTERM/SIGINT, reaps orphans (PID 1)
//	nodeimage serve ADDR TEXT       HTTP server answering TEXT on every path
//	nodeimage get URL [SECONDS]     HTTP GET, body on stdout; retries until SECONDS (default 20) pass; exit 1 on failure
//	nodeimage lookup NAME           resolve NAME with the pod's resolv.conf, the addresses on stdout; exit 1 on failure
//	nodeimage fail CODE MESSAGE     MESSAGE on stderr, exit CODE
//	nodeimage cat FILE              FILE's content on stdout; exit 1 on failure
//	nodeimage write FILE TEXT       create FILE holding TEXT; exit 1 on failure (a read-only mount)
package main

import (
	"context"
	"fmt"
	"io"
	"net"
	"net/http"
	"os"
	"os/signal"
	"strconv"
	"syscall"
	"time"
)

func usage() {
	fmt.Fprintln(os.Stderr, "usage: nodeimage pause | serve ADDR TEXT | get URL [SECONDS] | lookup NAME | fail CODE MESSAGE | cat FILE | write FILE TEXT")
	os.Exit(2)
}

func pause() {
	sigs := make(chan os.Signal, 1)
	signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
	children := make(chan os.Signal, 1)
	signal.Notify(children, syscall.SIGCHLD)
	for {
		select {
		case <-sigs:
			os.Exit(0)
		case <-children:
			for {
				var ws syscall.WaitStatus
				pid, err := syscall.Wait4(-1, &ws, syscall.WNOHANG, nil)
				if pid <= 0 || err != nil {
					break
				}
			}
		}
	}
}

func get(url string, seconds int) {
	deadline := time.Now().Add(time.Duration(seconds) * time.Second)
	client := &http.Client{Timeout: 3 * time.Second}
	var last error
	for {
		resp, err := client.Get(url)
		if err == nil {
			body, rerr := io.ReadAll(resp.Body)
			resp.Body.Close()
			if rerr == nil && resp.StatusCode == http.StatusOK {
				os.Stdout.Write(body)
				return
			}
			last = fmt.Errorf("HTTP %d %v", resp.StatusCode, rerr)
		} else {
			last = err
		}
		if time.Now().After(deadline) {
			fmt.Fprintf(os.Stderr, "get %s: %v\n", url, last)
			os.Exit(1)
		}
		time.Sleep(500 * time.Millisecond)
	}
}

func main() {
	if len(os.Args) < 2 {
		usage()
	}
	args := os.Args[2:]
	switch os.Args[1] {
	case "pause":
		pause()
	case "serve":
		if len(args) != 2 {
			usage()
		}
		text := args[1]
		srv := &http.Server{Addr: args[0], Handler: http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
			fmt.Fprintln(w, text)
		})}
		go func() {
			sigs := make(chan os.Signal, 1)
			signal.Notify(sigs, syscall.SIGTERM, syscall.SIGINT)
			<-sigs
			srv.Shutdown(context.Background())
		}()
		if err := srv.ListenAndServe(); err != nil && err != http.ErrServerClosed {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	case "get":
		seconds := 20
		if len(args) == 2 {
			n, err := strconv.Atoi(args[1])
			if err != nil {
				usage()
			}
			seconds = n
		} else if len(args) != 1 {
			usage()
		}
		get(args[0], seconds)
	case "lookup":
		if len(args) != 1 {
			usage()
		}
		addrs, err := net.LookupHost(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		for _, a := range addrs {
			fmt.Println(a)
		}
	case "fail":
		if len(args) != 2 {
			usage()
		}
		code, err := strconv.Atoi(args[0])
		if err != nil {
			usage()
		}
		fmt.Fprintln(os.Stderr, args[1])
		os.Exit(code)
	case "cat":
		if len(args) != 1 {
			usage()
		}
		data, err := os.ReadFile(args[0])
		if err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
		os.Stdout.Write(data)
	case "write":
		if len(args) != 2 {
			usage()
		}
		if err := os.WriteFile(args[0], []byte(args[1]), 0o644); err != nil {
			fmt.Fprintln(os.Stderr, err)
			os.Exit(1)
		}
	default:
		usage()
	}
}
