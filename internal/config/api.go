package config

import (
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"
)

// Storage configures the result history behind the API and the status page:
// one file (history.db) in a data directory, trimmed by age and by size.
type Storage struct {
	// Path is the data directory. Empty: DefaultDataDir().
	Path string `yaml:"path"`
	// Retention is how long results are kept (speed tests excepted), as
	// per-hour summaries past minute_retention.
	Retention time.Duration `yaml:"retention"`
	// RawRetention is how long each run is kept as it was; older runs
	// live on in per-minute summaries (with their latency distribution).
	RawRetention time.Duration `yaml:"raw_retention"`
	// MinuteRetention is how long per-minute summaries are kept; older
	// ones live on in per-hour summaries, up to Retention.
	MinuteRetention time.Duration `yaml:"minute_retention"`
	// derived: raw and minute retention were not set but follow
	// retention, whose own problem is then the only one reported.
	derived bool
	// SpeedtestRetention is how long speed-test results are kept: they are
	// few and worth a long history.
	SpeedtestRetention time.Duration `yaml:"speedtest_retention"`
	// MaxSizeMB bounds the file: past it, the oldest results go first
	// (other results before speed tests).
	MaxSizeMB int `yaml:"max_size_mb"`
}

// API configures the JSON API under /api/v1 and the status page.
type API struct {
	// Token, when set, is required as "Authorization: Bearer <token>" on
	// mutating endpoints (run now). Without one, they are refused unless
	// the agent listens on loopback only.
	Token string `yaml:"token"`
	// TokenFile holds the token instead (trailing newline ignored), so the
	// config file can be shared without the secret.
	TokenFile string `yaml:"token_file"`
	// TokenProtectsReads requires the token on reads too (results,
	// targets, runs, events): for an agent on an open network, whose
	// history and target list are nobody else's business. The API's index
	// and OpenAPI document stay open.
	TokenProtectsReads bool `yaml:"token_protects_reads"`
	// TraceURL links a run to a trace UI; "{trace_id}" is replaced by the
	// run's trace id, e.g. http://localhost:3200/trace/{trace_id}.
	TraceURL string `yaml:"trace_url"`
	// SpeedtestMinInterval rate-limits on-demand speed tests: at most one
	// start per interval across all speed-test probes.
	SpeedtestMinInterval time.Duration `yaml:"speedtest_min_interval"`
}

// Log configures an optional log file, in addition to standard error,
// rotated by size.
type Log struct {
	// File is the log file's path; empty: no file.
	File string `yaml:"file"`
	// MaxSizeMB is the size at which the file is rotated.
	MaxSizeMB int `yaml:"max_size_mb"`
	// MaxBackups is how many rotated files are kept (at least 1; 0 in
	// the file is refused rather than read as the default).
	MaxBackups int `yaml:"max_backups"`
	// MaxAge removes rotated files older than this (0: never).
	MaxAge time.Duration `yaml:"max_age"`
}

// Defaults of the storage, API and log settings.
const (
	DefaultRetention            = 30 * 24 * time.Hour
	DefaultSpeedtestRetention   = 365 * 24 * time.Hour
	DefaultRawRetention         = 48 * time.Hour
	DefaultMinuteRetention      = 7 * 24 * time.Hour
	DefaultStorageMaxSizeMB     = 1024
	DefaultSpeedtestMinInterval = 5 * time.Minute
	DefaultLogMaxSizeMB         = 100
	DefaultLogMaxBackups        = 5
	// TraceIDPlaceholder is replaced by a run's trace id in API.TraceURL.
	TraceIDPlaceholder = "{trace_id}"
)

// DefaultDataDir is where history is kept when storage.path is empty:
// $XDG_STATE_HOME/netpulse, else ~/.local/state/netpulse (state that
// should survive restarts but is not configuration), else ./data when
// there is no home directory (a bare container).
func DefaultDataDir() string {
	if d := os.Getenv("XDG_STATE_HOME"); filepath.IsAbs(d) {
		return filepath.Join(d, "netpulse")
	}
	if home, err := os.UserHomeDir(); err == nil && home != "" && home != "/" {
		return filepath.Join(home, ".local", "state", "netpulse")
	}
	return "data"
}

// DataDir is the effective data directory.
func (s Storage) DataDir() string {
	if s.Path == "" {
		return DefaultDataDir()
	}
	return s.Path
}

// ResolveToken returns the API token from Token or TokenFile.
func (a API) ResolveToken() (string, error) {
	if a.TokenFile == "" {
		return a.Token, nil
	}
	b, err := os.ReadFile(a.TokenFile)
	if err != nil {
		return "", fmt.Errorf("api.token_file: %w", err)
	}
	// Surrounding white space (an editor's newline, an indented line) is
	// no part of the token: kept, it would lock out every client, since
	// nobody sends it. Inside the token it is refused, as api.token does.
	tok := strings.TrimSpace(string(b))
	if tok == "" {
		return "", fmt.Errorf("api.token_file: %s is empty", a.TokenFile)
	}
	if strings.ContainsAny(tok, " \t\r\n") {
		return "", fmt.Errorf("api.token_file: the token in %s must not contain white space", a.TokenFile)
	}
	return tok, nil
}

func (c *Config) applyAPIDefaults() {
	s := &c.Storage
	if s.Retention == 0 {
		s.Retention = DefaultRetention
	}
	if s.SpeedtestRetention == 0 {
		s.SpeedtestRetention = DefaultSpeedtestRetention
	}
	s.derived = s.MinuteRetention == 0 && s.RawRetention == 0
	if s.MinuteRetention == 0 {
		s.MinuteRetention = min(DefaultMinuteRetention, s.Retention)
	}
	if s.RawRetention == 0 {
		s.RawRetention = min(DefaultRawRetention, s.MinuteRetention)
	}
	if s.MaxSizeMB == 0 {
		s.MaxSizeMB = DefaultStorageMaxSizeMB
	}
	if c.API.SpeedtestMinInterval == 0 {
		c.API.SpeedtestMinInterval = DefaultSpeedtestMinInterval
	}
	if c.Log.MaxSizeMB == 0 {
		c.Log.MaxSizeMB = DefaultLogMaxSizeMB
	}
	if c.Log.MaxBackups == 0 {
		c.Log.MaxBackups = DefaultLogMaxBackups
	}
}

func (c *Config) validateAPI(p *Problems) {
	s := c.Storage
	if s.Retention < time.Hour {
		p.Add("storage.retention", "must be at least 1h, not %s", s.Retention)
	}
	if s.SpeedtestRetention < time.Hour {
		p.Add("storage.speedtest_retention", "must be at least 1h, not %s", s.SpeedtestRetention)
	}
	if !s.derived || s.Retention >= time.Hour { // else only retention's problem is news
		if s.RawRetention < time.Hour {
			p.Add("storage.raw_retention", "must be at least 1h, not %s", s.RawRetention)
		} else if s.RawRetention > s.MinuteRetention {
			p.Add("storage.raw_retention", "must not exceed storage.minute_retention (%s), not %s", s.MinuteRetention, s.RawRetention)
		}
		if s.MinuteRetention < time.Hour {
			p.Add("storage.minute_retention", "must be at least 1h, not %s", s.MinuteRetention)
		} else if s.MinuteRetention > s.Retention {
			p.Add("storage.minute_retention", "must not exceed storage.retention (%s), not %s", s.Retention, s.MinuteRetention)
		}
	}
	if s.MaxSizeMB < 1 {
		p.Add("storage.max_size_mb", "must be at least 1, not %d", s.MaxSizeMB)
	}
	a := c.API
	if a.Token != "" && a.TokenFile != "" {
		p.Add("api.token", "set token or token_file, not both")
	}
	if a.TokenProtectsReads && a.Token == "" && a.TokenFile == "" {
		p.Add("api.token_protects_reads", "needs api.token or api.token_file (the token reads must carry)")
	}
	if strings.ContainsAny(a.Token, " \t\r\n") {
		p.Add("api.token", "must not contain white space")
	}
	if u := a.TraceURL; u != "" {
		if !strings.HasPrefix(u, "http://") && !strings.HasPrefix(u, "https://") {
			p.Add("api.trace_url", "must be an http:// or https:// URL, not %q", u)
		}
		if !strings.Contains(u, TraceIDPlaceholder) {
			p.Add("api.trace_url", "must contain %s where the trace id goes, e.g. http://localhost:3200/trace/%s",
				TraceIDPlaceholder, TraceIDPlaceholder)
		}
	}
	if a.SpeedtestMinInterval < 0 {
		p.Add("api.speedtest_min_interval", "must not be negative, not %s", a.SpeedtestMinInterval)
	}
	l := c.Log
	if l.MaxSizeMB < 1 {
		p.Add("log.max_size_mb", "must be at least 1, not %d", l.MaxSizeMB)
	}
	if l.MaxBackups < 0 {
		p.Add("log.max_backups", "must not be negative, not %d", l.MaxBackups)
	}
	if l.MaxAge < 0 {
		p.Add("log.max_age", "must not be negative, not %s", l.MaxAge)
	}
	if l.File != "" && strings.HasSuffix(l.File, string(filepath.Separator)) {
		p.Add("log.file", "must be a file, not a directory: %q", l.File)
	}
}
