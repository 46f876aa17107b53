// Command kasse is kasse built with the ShopKit example adapter: the built-in adapters and ShopKit are
// each one blank import; nothing else in kasse changes. This is how an integrator ships a new platform.
package main

import (
	"os"

	_ "github.com/kassehq/kasse/adapters/standard"
	_ "github.com/kassehq/kasse/examples/adapter-shopkit/shopkit"
	"github.com/kassehq/kasse/host/command"
)

func main() { os.Exit(command.Main(os.Args[1:])) }
