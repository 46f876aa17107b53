// Command kasse runs the kasse checkout service: `kasse serve` (the default), `kasse version`,
// `kasse config check FILE` and `kasse plugin ...`; `kasse help` lists them (package host/command). See
// README.md for the configuration and the API.
package main

import (
	"os"

	"github.com/kassehq/kasse/host/command"

	// The built-in platform adapters register themselves; an integrator's adapter is added the same way.
	_ "github.com/kassehq/kasse/adapters/standard"
)

func main() { os.Exit(command.Main(os.Args[1:])) }
