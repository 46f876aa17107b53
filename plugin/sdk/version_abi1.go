//go:build kasse_abi1

package sdk

import "github.com/kassehq/kasse/plugin/abi"

// moduleVersion is the ABI version the module's kasse_abi_version answers: built with the kasse_abi1 tag,
// a module implements ABI version 1 (JSON input), which hosts that predate version 2 load, and which
// the host's tests use to prove version 1 modules still load and serve.
const moduleVersion = abi.VersionJSON
