// Command kasse runs the kasse checkout service. See README.md for the configuration and the API.
package main

import (
	"github.com/kassehq/kasse/host"

	// The built-in platform adapters register themselves; an integrator's adapter is added the same way.
	_ "github.com/kassehq/kasse/adapters/standard"
)

func main() { host.Main() }
