// Command kasse runs the kasse checkout service. See README.md for the configuration and the API.
// `kasse plugin ...` packages, signs, verifies and inspects payment plugins instead (see host/upgrade/cli).
package main

import (
	"os"

	"github.com/kassehq/kasse/host"
	"github.com/kassehq/kasse/host/upgrade/cli"

	// The built-in platform adapters register themselves; an integrator's adapter is added the same way.
	_ "github.com/kassehq/kasse/adapters/standard"
)

func main() {
	if len(os.Args) > 1 && os.Args[1] == "plugin" {
		os.Exit(cli.Main(os.Args[2:], os.Stdout, os.Stderr))
	}
	host.Main()
}
