// Command kasse runs the kasse checkout service. See README.md for the configuration and the API.
package main

import "github.com/kassehq/kasse/host"

func main() { host.Main() }
