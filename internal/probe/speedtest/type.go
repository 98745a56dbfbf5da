package speedtest

import (
	"github.com/netpulse/netpulse/internal/config"
	"github.com/netpulse/netpulse/internal/probe"
)

// TypeName is the speed-test probe type's name and the key of its block.
const TypeName = "speedtest"

// Type declares the speed-test probe type to the registry.
var Type = &probe.Type{
	Name:      TypeName,
	NewConfig: func() config.Block { return &Config{} },
	New: func(pc config.Probe, deps probe.Deps) (probe.Prober, error) {
		return New(pc.Name, *pc.Settings.(*Config), deps, Options{StateDir: deps.StateDir})
	},
	Policy: probe.Policy{
		// A run fills the link: other probes would measure its load.
		Exclusive: true,
		// Hourly or daily tests sample different times of day.
		StartJitter: 0.5,
		// Few rows, worth a year of history.
		LongRetention: true,
		// Each on-demand run moves up to 2 × max_bytes.
		OnDemandLimited: true,
	},
	View: probe.ViewThroughput,
	Values: []probe.Value{
		{Name: "download_bytes_per_second", Unit: "By/s", Label: "download", Role: probe.RoleDownload},
		{Name: "upload_bytes_per_second", Unit: "By/s", Label: "upload", Role: probe.RoleUpload},
		{Name: "latency_idle_seconds", Unit: "s", Label: "idle latency", Role: probe.RoleIdle},
		{Name: "latency_download_seconds", Unit: "s", Label: "latency while downloading", Role: probe.RoleLoadedDown},
		{Name: "latency_upload_seconds", Unit: "s", Label: "latency while uploading", Role: probe.RoleLoadedUp},
		{Name: "latency_increase_download_seconds", Unit: "s", Label: "bufferbloat (download)", Role: probe.RoleLoadedDelta},
		{Name: "latency_increase_upload_seconds", Unit: "s", Label: "bufferbloat (upload)"},
		{Name: "jitter_idle_seconds", Unit: "s", Label: "idle jitter"},
		{Name: "jitter_download_seconds", Unit: "s", Label: "jitter while downloading"},
		{Name: "jitter_upload_seconds", Unit: "s", Label: "jitter while uploading"},
		{Name: "responsiveness_download_rpm", Unit: "{round_trip}/min", Label: "responsiveness (download)"},
		{Name: "responsiveness_upload_rpm", Unit: "{round_trip}/min", Label: "responsiveness (upload)"},
		{Name: "responsiveness_download_foreign_rpm", Unit: "{round_trip}/min", Label: "RPM foreign part (download)"},
		{Name: "responsiveness_download_loaded_rpm", Unit: "{round_trip}/min", Label: "RPM loaded part (download)"},
		{Name: "responsiveness_download_rpm_low", Unit: "{round_trip}/min", Label: "RPM 95 % low (download)"},
		{Name: "responsiveness_download_rpm_high", Unit: "{round_trip}/min", Label: "RPM 95 % high (download)"},
		{Name: "responsiveness_upload_foreign_rpm", Unit: "{round_trip}/min", Label: "RPM foreign part (upload)"},
		{Name: "responsiveness_upload_loaded_rpm", Unit: "{round_trip}/min", Label: "RPM loaded part (upload)"},
		{Name: "responsiveness_upload_rpm_low", Unit: "{round_trip}/min", Label: "RPM 95 % low (upload)"},
		{Name: "responsiveness_upload_rpm_high", Unit: "{round_trip}/min", Label: "RPM 95 % high (upload)"},
		{Name: "packet_loss_ratio", Unit: "1", Label: "packet loss"},
		{Name: "download_bytes", Unit: "By", Label: "bytes downloaded"},
		{Name: "upload_bytes", Unit: "By", Label: "bytes uploaded"},
		{Name: "bytes", Unit: "By", Label: "bytes moved"},
	},
}
