// Command notjson implements the ABI exports itself, without the SDK, and answers every call with bytes
// that are not JSON.
package main

import (
	"unsafe"
)

var (
	in  = make([]byte, 1<<16)
	out = []byte("this is not JSON")
)

//go:wasmexport kasse_abi_version
func abiVersion() int32 { return 1 }

//go:wasmexport kasse_input
func input(size int32) int32 {
	if int(size) > len(in) {
		in = make([]byte, size)
	}
	return int32(uintptr(unsafe.Pointer(&in[0])))
}

//go:wasmexport kasse_call
func call(size int32) int64 {
	return int64(uint64(uintptr(unsafe.Pointer(&out[0])))<<32 | uint64(len(out)))
}

//go:wasmexport kasse_yield
func yield() {}

func main() {}
