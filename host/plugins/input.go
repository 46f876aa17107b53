package plugins

import (
	"encoding/json"

	"github.com/kassehq/kasse/plugin/abi"
)

// ConvertInput returns input (an abi.Input in either encoding) in the encoding of ABI version version: unchanged when it is in it already,
// else decoded and encoded again (JSON with encoding/json, binary with abi.AppendBinary). An input that
// does not decode is passed on unchanged, so that the guest answers it as the malformed input it is
// (invalid_input): the conformance vectors send such inputs on purpose. Conversion costs tens of
// microseconds; the hot path (host/checkout) encodes in the module's version and never converts.
func ConvertInput(input []byte, version int) []byte {
	binary := abi.IsBinary(input)
	switch {
	case version == abi.VersionBinary && !binary:
		var in abi.Input
		if err := json.Unmarshal(input, &in); err != nil {
			return input
		}
		return abi.AppendBinary(make([]byte, 0, len(input)), &in)
	case version == abi.VersionJSON && binary:
		var d abi.Decoder
		in, err := d.Decode(input)
		if err != nil {
			return input
		}
		out, err := json.Marshal(in)
		if err != nil { // a raw member that is not JSON
			return input
		}
		return out
	}
	return input
}
