//go:build !kasse_abi1

package sdk

import "github.com/kassehq/kasse/plugin/abi"

// moduleVersion is the ABI version the module's kasse_abi_version answers, and so the input encoding its
// kasse_call accepts: version 2 (binary input) unless the module is built with the kasse_abi1 tag.
const moduleVersion = abi.VersionBinary
