// Package version identifies the running build.
package version

import (
	"runtime"
	"runtime/debug"
)

// Version and Revision are set at build time:
//
//	go build -ldflags "-X github.com/netpulse/netpulse/internal/version.Version=v1.2.3"
var (
	Version  = "dev"
	Revision = ""
)

// Info describes the build.
type Info struct {
	Version, Revision, GoVersion string
}

// Get returns the build's description, taking the VCS revision from the Go
// build info when it was not set explicitly.
func Get() Info {
	i := Info{Version: Version, Revision: Revision, GoVersion: runtime.Version()}
	if bi, ok := debug.ReadBuildInfo(); ok {
		for _, s := range bi.Settings {
			if s.Key == "vcs.revision" && i.Revision == "" {
				i.Revision = s.Value
			}
		}
		if i.Version == "dev" && bi.Main.Version != "" && bi.Main.Version != "(devel)" {
			i.Version = bi.Main.Version
		}
	}
	return i
}

func (i Info) String() string {
	s := "netpulse " + i.Version
	if i.Revision != "" {
		s += " (" + i.Revision + ")"
	}
	return s + " " + i.GoVersion
}
