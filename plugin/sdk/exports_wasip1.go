//go:build wasip1

package sdk

import (
	"runtime"
	"unsafe"
)

// The exports below are the module's ABI (plugin/ABI.md). go:wasmexport works from this non-main package:
// a plugin's main package only has to import the SDK.

//go:wasmexport kasse_abi_version
func kasseABIVersion() int32 {
	return moduleVersion
}

//go:wasmexport kasse_input
func kasseInput(size int32) int32 {
	if size < 0 {
		return 0
	}
	buf := guest.input(int(size))
	return int32(uintptr(unsafe.Pointer(unsafe.SliceData(buf))))
}

//go:wasmexport kasse_call
func kasseCall(size int32) int64 {
	out := guest.call(int(size))
	if len(out) == 0 {
		return 0
	}
	ptr := uint64(uintptr(unsafe.Pointer(unsafe.SliceData(out))))
	return int64(ptr<<32 | uint64(uint32(len(out))))
}

//go:wasmexport kasse_yield
func kasseYield() {
	runtime.Gosched()
}
