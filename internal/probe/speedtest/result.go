package speedtest

// Result is everything one speed test measured, in base units (bytes,
// bytes per second, seconds). Fields of phases that did not run are zero or
// nil. It is the `netpulse speedtest --json` output.
type Result struct {
	Server Server `json:"server"`
	// Idle is speedtest-go's HTTP ping: round trips on a warm connection.
	Idle Latency `json:"idle_latency"`
	// PacketLoss is the share of UDP datagrams lost (0-1), nil when the
	// server does not support the test.
	PacketLoss *float64   `json:"packet_loss,omitempty"`
	Download   *Direction `json:"download,omitempty"`
	Upload     *Direction `json:"upload,omitempty"`
	// Bytes is everything the run's TCP connections carried, both ways,
	// with their IP and TCP headers (what the budget counts; the UDP
	// packet-loss test's few kB are not counted).
	Bytes int64 `json:"bytes"`
}

// Server is the server a run used.
type Server struct {
	ID         string  `json:"id"` // "Custom" for a URL
	Name       string  `json:"name"`
	Sponsor    string  `json:"sponsor,omitempty"`
	Country    string  `json:"country,omitempty"`
	URL        string  `json:"url"`
	Host       string  `json:"host"`
	DistanceKm float64 `json:"distance_km,omitempty"`
}

// Direction is one direction's transfer.
type Direction struct {
	Name string `json:"-"`
	// Rate is the steady-state throughput in bytes per second.
	Rate float64 `json:"bytes_per_second"`
	// Bytes the application moved in this direction (download: received,
	// upload: sent), HTTP headers included: at most max_bytes.
	Bytes int64 `json:"bytes"`
	// Capped is true when max_bytes stopped the transfer.
	Capped bool `json:"capped"`
	// TCPCongestion is the congestion control of the sending end: the
	// client's for an upload, the server's for a download (known from
	// netpulse's server only); empty when unknown.
	TCPCongestion string `json:"tcp_congestion,omitempty"`
	// Loaded is the latency measured while transferring.
	Loaded Latency `json:"loaded_latency"`
	// LatencyIncrease is Loaded.Mean minus the idle mean, at least 0.
	LatencyIncrease float64 `json:"latency_increase_seconds"`
	// RPM is Responsiveness.RPM: round trips per minute under load.
	RPM float64 `json:"responsiveness_rpm"`
	// Responsiveness is RPM per draft-ietf-ippm-responsiveness-09, its
	// components, sample counts and 95 % bounds.
	Responsiveness Responsiveness `json:"responsiveness"`
}

// Values flattens r for logs, the API and history; keys carry their unit.
func (r *Result) Values() map[string]float64 {
	if r == nil {
		return nil
	}
	v := map[string]float64{"bytes": float64(r.Bytes)}
	if r.Idle.Samples > 0 {
		v["latency_idle_seconds"] = r.Idle.Mean
		v["jitter_idle_seconds"] = r.Idle.Jitter
	}
	if r.PacketLoss != nil {
		v["packet_loss_ratio"] = *r.PacketLoss
	}
	for _, d := range []*Direction{r.Download, r.Upload} {
		if d == nil {
			continue
		}
		v[d.Name+"_bytes_per_second"] = d.Rate
		v[d.Name+"_bytes"] = float64(d.Bytes)
		if d.Loaded.Samples > 0 {
			v["latency_"+d.Name+"_seconds"] = d.Loaded.Mean
			v["jitter_"+d.Name+"_seconds"] = d.Loaded.Jitter
			v["latency_increase_"+d.Name+"_seconds"] = d.LatencyIncrease
		}
		if r := d.Responsiveness; r.RPM > 0 {
			v["responsiveness_"+d.Name+"_rpm"] = r.RPM
			v["responsiveness_"+d.Name+"_rpm_low"] = r.Low
			v["responsiveness_"+d.Name+"_rpm_high"] = r.High
			if r.ForeignRPM > 0 {
				v["responsiveness_"+d.Name+"_foreign_rpm"] = r.ForeignRPM
			}
			if r.LoadedRPM > 0 {
				v["responsiveness_"+d.Name+"_loaded_rpm"] = r.LoadedRPM
			}
		}
	}
	return v
}
