package main

import (
	"context"
	"crypto/tls"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net"
	"os"
	"os/signal"
	"strings"
	"sync"
	"syscall"
	"time"

	metricnoop "go.opentelemetry.io/otel/metric/noop"
	tracenoop "go.opentelemetry.io/otel/trace/noop"
	"golang.org/x/term"

	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/logging"
	"github.com/netpulse/netpulse/internal/network"
	"github.com/netpulse/netpulse/internal/probe"
	"github.com/netpulse/netpulse/internal/probe/speedtest"
	"github.com/netpulse/netpulse/internal/speedtestserver"
)

// speedtestCmd is `netpulse speedtest`: one speed test, with a live display
// on a terminal and a summary (or JSON) at the end. It uses no data budget.
type speedtestCmd struct {
	Server        string        `default:"auto" help:"auto (the closest speedtest.net server), a speedtest.net server id, or the URL of a speed test server (http://host:8080, e.g. netpulse speedtest-server)."`
	JSON          bool          `name:"json" help:"Print the result as JSON (base units: bytes, bytes per second, seconds)."`
	Duration      time.Duration `default:"10s" help:"How long each direction transfers (1s-1m)."`
	Connections   int           `default:"4" help:"Parallel connections per direction (1-32)."`
	MaxBytes      string        `name:"max-bytes" default:"1GB" help:"Stop a direction after this many bytes (500MB, 2GB)."`
	PacketLoss    bool          `name:"packet-loss" default:"true" negatable:"" help:"Measure packet loss when the server supports it."`
	Resolver      string        `help:"DNS server (host:port) for the server's name; empty: the system's."`
	TCPCongestion string        `name:"tcp-congestion" help:"TCP congestion control of the client's connections (cubic, bbr, ...); empty: the system's default."`
}

// speedtestServerCmd is `netpulse speedtest-server`.
type speedtestServerCmd struct {
	Listen        string        `default:":8080" help:"TCP address (HTTP and the control protocol); UDP on the same port for packet loss."`
	MaxConns      int           `name:"max-conns" default:"64" help:"Simultaneous connections; more are closed at once (a client uses about connections+2)."`
	MaxUpload     string        `name:"max-upload" default:"64MB" help:"Largest upload request body."`
	StallTimeout  time.Duration `name:"stall-timeout" default:"10s" help:"Cut a transfer that moves less than --min-progress, or a control connection that says nothing, for this long."`
	MinProgress   string        `name:"min-progress" default:"16KiB" help:"Bytes a transfer must move in every --stall-timeout."`
	PerClient     int           `name:"max-conns-per-client" default:"40" help:"Simultaneous connections of one client address (a probe at 32 connections uses ~34)."`
	Lifetime      time.Duration `name:"max-conn-lifetime" default:"5m" help:"Close any connection this long after it opened."`
	TCPCongestion string        `name:"tcp-congestion" help:"TCP congestion control of the server's connections, i.e. of downloads (cubic, bbr, ...); empty: the system's default."`
	TLSCertFile   string        `name:"tls-cert-file" help:"Also serve HTTPS (and HTTP/2) on the same port with this certificate (PEM), as RPM clients need."`
	TLSKeyFile    string        `name:"tls-key-file" help:"The certificate's private key (PEM)."`
}

func (c *cli) speedtest(stdout, stderr io.Writer) error {
	s := c.Speedtest
	maxBytes, err := config.ParseByteSize(s.MaxBytes)
	switch {
	case err != nil:
		return fmt.Errorf("--max-bytes: %w", err)
	case maxBytes < 1e6:
		return fmt.Errorf("--max-bytes: must be at least 1MB, not %s", maxBytes)
	case !speedtest.ValidServer(s.Server):
		return fmt.Errorf("--server: must be auto, a speedtest.net server id or an http(s):// URL, not %q", s.Server)
	case s.Duration < time.Second || s.Duration > time.Minute:
		return fmt.Errorf("--duration: must be between 1s and 1m, not %s", s.Duration)
	case s.Connections < 1 || s.Connections > 32:
		return fmt.Errorf("--connections: must be between 1 and 32, not %d", s.Connections)
	}
	logger, err := logging.New(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		return err
	}
	cfg := speedtest.Config{Settings: network.Settings{IPVersion: network.IPAuto}, Duration: s.Duration,
		MaxBytes: maxBytes, Connections: s.Connections, LatencyInterval: speedtest.DefaultSpeedtestLatencyInterval,
		PacketLoss: &s.PacketLoss, TCPCongestion: s.TCPCongestion}
	var disp *display
	opts := speedtest.Options{}
	if f, ok := stderr.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		disp = &display{w: stderr}
		opts.Progress = disp.update
	}
	tp := tracenoop.NewTracerProvider()
	p, err := speedtest.New("cli", cfg, probe.Deps{Meters: metricnoop.NewMeterProvider(), Tracers: tp, Logger: logger,
		Net: network.New(network.NewResolver(s.Resolver), tp)}, opts)
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	ctx, cancel := context.WithTimeout(ctx, 2*s.Duration+time.Minute)
	defer cancel()
	t := probe.NewTarget(config.Probe{Name: "cli", Type: speedtest.TypeName}, config.Target{Name: s.Server, Host: s.Server})
	r, err := p.Measure(ctx, t)
	if disp != nil {
		disp.clear()
	}
	if err != nil {
		errType := probe.ErrorType(ctx, err)
		if s.JSON {
			// Scripts read stdout: a failure is JSON too (and the exit status is 1).
			_ = json.NewEncoder(stdout).Encode(map[string]string{"error": err.Error(), "error_type": errType})
		}
		return fmt.Errorf("speed test failed (%s): %w", errType, err)
	}
	if s.JSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(r)
	}
	printSummary(stdout, r)
	return nil
}

func mbps(bytesPerSecond float64) string { return fmt.Sprintf("%.2f Mbit/s", bytesPerSecond*8/1e6) }

func ms(seconds float64) string { return fmt.Sprintf("%.2f ms", seconds*1e3) }

func megabytes(n int64) string { return fmt.Sprintf("%.1f MB", float64(n)/1e6) }

func printSummary(w io.Writer, r *speedtest.Result) {
	name := r.Server.Host
	if r.Server.Sponsor != "" && r.Server.Sponsor != "?" {
		name = fmt.Sprintf("%s, %s (%s, id %s, %.0f km)", r.Server.Sponsor, r.Server.Name, r.Server.Host, r.Server.ID,
			r.Server.DistanceKm)
	}
	fmt.Fprintf(w, "Server:    %s\n", name)
	idle := fmt.Sprintf("%s idle, jitter %s", ms(r.Idle.Mean), ms(r.Idle.Jitter))
	if r.PacketLoss != nil {
		idle += fmt.Sprintf(", packet loss %.1f %%", *r.PacketLoss*100)
	}
	fmt.Fprintf(w, "Latency:   %s\n", idle)
	for _, d := range []*speedtest.Direction{r.Download, r.Upload} {
		line := fmt.Sprintf("%-10s %s  (%s", strings.ToUpper(d.Name[:1])+d.Name[1:]+":", mbps(d.Rate), megabytes(d.Bytes))
		if d.Capped {
			line += ", stopped at --max-bytes"
		}
		line += ")"
		if d.Loaded.Samples > 0 {
			line += fmt.Sprintf("  loaded latency %s (+%s)", ms(d.Loaded.Mean), ms(d.LatencyIncrease))
		}
		if rp := d.Responsiveness; rp.RPM > 0 {
			line += fmt.Sprintf(", responsiveness %.0f RPM (95 %%: %.0f-%.0f; foreign %.0f, loaded %.0f)",
				rp.RPM, rp.Low, rp.High, rp.ForeignRPM, rp.LoadedRPM)
		}
		if d.TCPCongestion != "" {
			line += ", sent with " + d.TCPCongestion
		}
		fmt.Fprintln(w, line)
	}
}

// display redraws one status line on a terminal.
type display struct {
	w    io.Writer
	mu   sync.Mutex
	last time.Time
}

func (d *display) update(p speedtest.Progress) {
	d.mu.Lock()
	defer d.mu.Unlock()
	if time.Since(d.last) < 100*time.Millisecond {
		return
	}
	d.last = time.Now()
	var line string
	switch p.Phase {
	case speedtest.Download, speedtest.Upload:
		line = fmt.Sprintf("%-9s %14s  %5.1fs  %s", p.Phase, mbps(p.Rate), p.Elapsed.Seconds(), megabytes(p.Bytes))
	case "latency":
		line = fmt.Sprintf("%-9s %14s", p.Phase, ms(p.RTT.Seconds()))
	default:
		line = "selecting a server..."
	}
	if p.Server != "" {
		line += "  " + p.Server
	}
	fmt.Fprint(d.w, "\r\033[K"+line)
}

func (d *display) clear() {
	d.mu.Lock()
	fmt.Fprint(d.w, "\r\033[K")
	d.mu.Unlock()
}

func (c *cli) speedtestServer(stdout, stderr io.Writer) error {
	s := c.SpeedtestServer
	maxUpload, err := config.ParseByteSize(s.MaxUpload)
	if err != nil {
		return fmt.Errorf("--max-upload: %w", err)
	}
	minProgress, err := config.ParseByteSize(s.MinProgress)
	if err != nil {
		return fmt.Errorf("--min-progress: %w", err)
	}
	logger, err := logging.New(stderr, c.LogLevel, c.LogFormat)
	if err != nil {
		return err
	}
	var tlsConfig *tls.Config
	switch {
	case (s.TLSCertFile == "") != (s.TLSKeyFile == ""):
		return errors.New("--tls-cert-file and --tls-key-file go together")
	case s.TLSCertFile != "":
		cert, err := tls.LoadX509KeyPair(s.TLSCertFile, s.TLSKeyFile)
		if err != nil {
			return fmt.Errorf("--tls-cert-file, --tls-key-file: %w", err)
		}
		tlsConfig = &tls.Config{Certificates: []tls.Certificate{cert}, MinVersion: tls.VersionTLS12}
	}
	srv, err := speedtestserver.Listen(s.Listen, speedtestserver.Options{MaxConns: s.MaxConns,
		MaxUploadBytes: int64(maxUpload), StallTimeout: s.StallTimeout, MinProgress: int64(minProgress),
		MaxConnsPerClient: s.PerClient, MaxConnLifetime: s.Lifetime, TCPCongestion: s.TCPCongestion, TLS: tlsConfig, Logger: logger})
	if err != nil {
		return err
	}
	ctx, stop := signal.NotifyContext(context.Background(), os.Interrupt, syscall.SIGTERM)
	defer stop()
	logger.Info("speed test server listening", "address", srv.Addr().String(), "max_conns", s.MaxConns)
	fmt.Fprintf(stdout, "netpulse speed test server on %s (test it: netpulse speedtest --server http://HOST:%d)\n",
		srv.Addr(), srv.Addr().(*net.TCPAddr).Port)
	err = srv.Serve(ctx)
	st := srv.Stats()
	logger.Info("speed test server stopped", "bytes_sent", st.BytesSent, "bytes_received", st.BytesReceived,
		"downloads", st.Downloads, "uploads", st.Uploads, "refused", st.Refused)
	return err
}
