// Command webload helps bench/tcp-http-load.sh compare the tcp and http
// probes with blackbox_exporter on loopback.
//
//	webload serve --dir D    a TCP service and an HTTPS server (HTTP/1.1 and
//	                         HTTP/2) on 127.0.0.1; writes D/tcp.addr,
//	                         D/https.url and D/ca.pem, serves until killed
//	webload drive --url U --rate R --duration T
//	                         GETs U (a blackbox_exporter /probe URL) R times
//	                         a second for T, and prints the requests made, how
//	                         many answered probe_success 1 and their mean
//	                         probe_http_duration_seconds per phase
package main

import (
	"context"
	"encoding/pem"
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"net/http"
	"net/http/httptest"
	"os"
	"os/signal"
	"path/filepath"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

func main() {
	if len(os.Args) < 2 {
		fmt.Fprintln(os.Stderr, "usage: webload serve|drive ...")
		os.Exit(2)
	}
	var err error
	switch os.Args[1] {
	case "serve":
		err = serve(os.Args[2:])
	case "drive":
		err = drive(os.Args[2:])
	default:
		err = fmt.Errorf("unknown command %q", os.Args[1])
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "webload:", err)
		os.Exit(1)
	}
}

func serve(args []string) error {
	fs := flag.NewFlagSet("serve", flag.ExitOnError)
	dir := fs.String("dir", ".", "where to write tcp.addr, https.url and ca.pem")
	fs.Parse(args)

	ln, err := net.Listen("tcp", "127.0.0.1:0")
	if err != nil {
		return err
	}
	go func() {
		for {
			c, err := ln.Accept()
			if err != nil {
				return
			}
			go func() { io.Copy(io.Discard, c); c.Close() }() // until the prober closes
		}
	}()
	srv := httptest.NewUnstartedServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		io.WriteString(w, "ok\n")
	}))
	srv.EnableHTTP2 = true
	srv.Config.ErrorLog = log.New(io.Discard, "", 0) // handshakes cut by a stopped prober are expected
	srv.StartTLS()
	defer srv.Close()
	ca := pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: srv.Certificate().Raw})
	for name, data := range map[string][]byte{"tcp.addr": []byte(ln.Addr().String()), "https.url": []byte(srv.URL + "/"),
		"ca.pem": ca} {
		if err := os.WriteFile(filepath.Join(*dir, name), data, 0o644); err != nil {
			return err
		}
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, os.Kill)
	defer stop()
	<-ctx.Done()
	return nil
}

func drive(args []string) error {
	fs := flag.NewFlagSet("drive", flag.ExitOnError)
	u := fs.String("url", "", "blackbox_exporter /probe URL")
	rate := fs.Float64("rate", 100, "requests per second")
	dur := fs.Duration("duration", 30*time.Second, "how long")
	fs.Parse(args)

	client := &http.Client{Transport: &http.Transport{MaxIdleConnsPerHost: 512}, Timeout: 5 * time.Second}
	var sent, ok atomic.Int64
	var mu sync.Mutex
	phases := map[string]float64{} // sums of blackbox's phase durations over successful probes
	var wg sync.WaitGroup
	tick := time.NewTicker(time.Duration(float64(time.Second) / *rate))
	defer tick.Stop()
	end := time.Now().Add(*dur)
	for now := range tick.C {
		if now.After(end) {
			break
		}
		sent.Add(1)
		wg.Add(1)
		go func() {
			defer wg.Done()
			resp, err := client.Get(*u)
			if err != nil {
				return
			}
			body, _ := io.ReadAll(resp.Body)
			resp.Body.Close()
			if !strings.Contains(string(body), "\nprobe_success 1") {
				return
			}
			ok.Add(1)
			mu.Lock()
			defer mu.Unlock()
			for _, line := range strings.Split(string(body), "\n") {
				// probe_http_duration_seconds{phase="connect"} 0.0001
				if rest, found := strings.CutPrefix(line, `probe_http_duration_seconds{phase="`); found {
					name, val, _ := strings.Cut(rest, `"} `)
					var v float64
					fmt.Sscan(val, &v)
					phases[name] += v
				}
			}
		}()
	}
	wg.Wait()
	fmt.Printf("%d %d", sent.Load(), ok.Load())
	for _, ph := range []string{"resolve", "connect", "tls", "processing", "transfer"} {
		if v, found := phases[ph]; found && ok.Load() > 0 {
			fmt.Printf(" %s=%.3fms", ph, v*1000/float64(ok.Load()))
		}
	}
	fmt.Println()
	return nil
}
