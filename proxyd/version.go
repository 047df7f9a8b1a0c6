package main

import (
	"fmt"
	"runtime"
	"runtime/debug"
)

// version is set at build time with -ldflags "-X main.version=v1.2.3".
var version = ""

// versionString returns "proxyd VERSION (go1.x, vcs revision)".
func versionString() string {
	v := version
	rev := ""
	if info, ok := debug.ReadBuildInfo(); ok {
		if v == "" && info.Main.Version != "" && info.Main.Version != "(devel)" {
			v = info.Main.Version
		}
		for _, s := range info.Settings {
			if s.Key == "vcs.revision" {
				rev = s.Value
			}
		}
	}
	if v == "" {
		v = "devel"
	}
	if rev != "" {
		return fmt.Sprintf("proxyd %s (%s, revision %s)", v, runtime.Version(), rev)
	}
	return fmt.Sprintf("proxyd %s (%s)", v, runtime.Version())
}
