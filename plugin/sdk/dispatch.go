package sdk

import (
	"errors"
	"fmt"

	"github.com/kassehq/kasse/plugin/abi"
)

// dispatcher holds the reused state behind the exports: the input buffer the host writes into, the decoder
// (with its reused abi.Input) and the output buffer. It is ordinary Go so that it can be tested natively.
type dispatcher struct {
	handler HandlerFunc
	// version is the ABI version whose input encoding call accepts; 0 accepts both (Run).
	version int
	in      []byte
	dec     decoder
	bin     abi.Decoder
	out     []byte
	errOut  abi.Output
	errBody abi.Error
}

// input returns a buffer of at least size bytes for the next input. The buffer only changes when a larger
// size is asked for, so the host may keep writing into the last one it was given.
func (d *dispatcher) input(size int) []byte {
	if size < 1 {
		size = 1
	}
	if cap(d.in) < size {
		d.in = make([]byte, size)
	}
	return d.in[:cap(d.in)]
}

// call decodes the first size bytes of the input buffer, runs the handler and returns the encoded output.
// The returned slice aliases the dispatcher's output buffer and is valid until the next call.
func (d *dispatcher) call(size int) []byte {
	var out *abi.Output
	switch {
	case size < 0 || size > cap(d.in):
		out = d.fail(CodeInvalidInput, "input size out of range of the input buffer")
	case d.handler == nil:
		out = d.fail(CodeNoHandler, "the plugin did not call sdk.Handle")
	default:
		in, err := d.decode(d.in[:size])
		if err != nil {
			out = d.fail(CodeInvalidInput, err.Error())
		} else {
			out = d.run(in)
		}
	}
	d.out = appendOutput(d.out[:0], out)
	return d.out
}

// decode decodes an input in the dispatcher's encoding: binary when it starts with abi.BinaryMagic, JSON
// otherwise. The first byte tells them apart, so an input in the other version's encoding is refused by
// name instead of being read as garbage.
func (d *dispatcher) decode(data []byte) (*abi.Input, error) {
	switch {
	case abi.IsBinary(data):
		if d.version == abi.VersionJSON {
			return nil, errors.New("the input is in ABI version 2's binary encoding; this module implements version 1 (JSON)")
		}
		return d.bin.Decode(data)
	case d.version == abi.VersionBinary:
		return nil, errors.New("the input is not in ABI version 2's binary encoding (its first byte must be 0xb2)")
	}
	return d.dec.decode(data)
}

// run calls the handler, turning a panic or a nil output into an error output.
func (d *dispatcher) run(in *abi.Input) (out *abi.Output) {
	defer func() {
		if v := recover(); v != nil {
			out = d.fail(CodePanic, panicMessage(v))
		}
	}()
	out = d.handler(in)
	if out == nil {
		out = d.fail(CodeNilOutput, "the handler returned no output")
	}
	return out
}

// fail returns the dispatcher's reused error output.
func (d *dispatcher) fail(code, message string) *abi.Output {
	d.errBody = abi.Error{Code: code, Message: message}
	d.errOut = abi.Output{Error: &d.errBody}
	return &d.errOut
}

func panicMessage(v any) string {
	switch v := v.(type) {
	case string:
		return "panic: " + v
	case error:
		return "panic: " + v.Error()
	default:
		return fmt.Sprintf("panic: %v", v)
	}
}
