package plugins

import (
	"context"
	"errors"
	"fmt"

	"github.com/tetratelabs/wazero/api"
)

// Why the host puts its own deadline checks into the module
//
// wazero's WithCloseOnContextDone stops a guest at its deadline by leaving compiled code for Go at every
// loop header the guest executes (about 30-40 ns each), and Go's wasm code generator turns every taken
// branch into a jump to a loop header. Measured on the vipps-ecom plugin, that check was 85-90 % of a
// call: build_initiate took 135 µs with it and 15 µs without it.
//
// So Load rewrites the module instead (instrument): it adds one mutable i32 global, exported as
// deadlineExport, and at every loop header (and on entry to the functions terminate.go selects, which
// could run unbounded without a loop) the instructions
//
//	global.get $deadline
//	if
//	  unreachable
//	end
//
// which cost a load and a branch and never leave compiled code. Each call arms a watchdog
// (context.AfterFunc on the call's context) that sets the global to 1 once the deadline passes or the
// context is cancelled; the guest then traps at its next loop header or checked entry, and the host
// reports KindTimeout and discards the instance, as it did with wazero's check. An instance whose
// watchdog fired is never reused, whatever the call's result, since its global may be set.
//
// Rules that keep this sound: the module may not touch the added global (an index beyond its own globals
// was invalid before the rewrite, and the rewrite refuses it explicitly), may not export the name
// deadlineExport, and may not have a start section (it would run inside wazero's instantiation, before
// the host holds the instance and can arm a watchdog; reactors use _initialize, which the host calls as an
// export under a watchdog). wazero reloads a global at every loop header (the header has two predecessors,
// so no earlier load is reused), so a store by the watchdog is seen at the next iteration.

// deadlineExport names the global the rewrite adds.
const deadlineExport = "kasse_host_deadline"

// Section ids of the binary format, and their order (the tag section, 13, sits between memory and global).
var sectionRank = map[byte]int{1: 1, 2: 2, 3: 3, 4: 4, 5: 5, 13: 6, 6: 7, 7: 8, 8: 9, 9: 10, 12: 11, 10: 12, 11: 13}

func appendULEB(b []byte, v uint64) []byte {
	for {
		c := byte(v & 0x7f)
		v >>= 7
		if v != 0 {
			b = append(b, c|0x80)
			continue
		}
		return append(b, c)
	}
}

type section struct {
	id      byte
	payload []byte
}

// instrument returns wasm with the deadline global and its checks (see above). checked marks, by function
// index (imports included), the functions that get a check on entry.
func instrument(wasm []byte, checked []bool) ([]byte, error) {
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm module")
	}
	r := &wasmReader{b: wasm, off: 8}
	var sections []section
	var importedGlobals, definedGlobals, importedFuncs, memories uint32
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		body, err := r.vecBytes()
		if err != nil {
			return nil, err
		}
		sections = append(sections, section{id, body})
		s := &wasmReader{b: body}
		switch id {
		case 2:
			if importedFuncs, importedGlobals, err = countImports(s); err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
		case 5:
			if memories, err = s.u32(); err != nil {
				return nil, err
			}
		case 6:
			if definedGlobals, err = s.u32(); err != nil {
				return nil, err
			}
		case 7:
			if err := refuseExportName(s); err != nil {
				return nil, err
			}
		case 8:
			return nil, errors.New("a start section is not allowed (a reactor exports _initialize)")
		}
	}
	global := importedGlobals + definedGlobals        // $deadline; $tick is the next one
	check := appendULEB([]byte{0x23}, uint64(global)) // global.get $deadline
	check = append(check, 0x04, 0x40, 0x00, 0x0B)     // if unreachable end
	if memories > 0 {
		// $tick += 1; every 4096th time, memory.grow 0 (no effect), which leaves compiled code for Go and
		// so lets the Go scheduler preempt the goroutine: the watchdog needs a P to run on, and a guest in
		// compiled code cannot be preempted otherwise.
		tick := uint64(global + 1)
		check = appendULEB(append(check, 0x23), tick)                   // global.get $tick
		check = append(check, 0x41, 0x01, 0x6A)                         // i32.const 1, i32.add
		check = appendULEB(append(check, 0x24), tick)                   // global.set $tick
		check = appendULEB(append(check, 0x23), tick)                   // global.get $tick
		check = append(check, 0x41, 0xFF, 0x1F, 0x71, 0x45)             // i32.const 4095, i32.and, i32.eqz
		check = append(check, 0x04, 0x40, 0x41, 0x00, 0x40, 0x00, 0x1A) // if i32.const 0 memory.grow drop
		check = append(check, 0x0B)                                     // end
	}

	out := append([]byte(nil), wasm[:8]...)
	emit := func(id byte, payload []byte) {
		out = append(out, id)
		out = appendULEB(out, uint64(len(payload)))
		out = append(out, payload...)
	}
	newGlobal := []byte{0x7F, 0x01, 0x41, 0x00, 0x0B} // i32, mutable, i32.const 0, end: $deadline
	newGlobal = append(newGlobal, newGlobal...)       // and $tick
	newExport := appendULEB(nil, uint64(len(deadlineExport)))
	newExport = append(newExport, deadlineExport...)
	newExport = appendULEB(append(newExport, 0x03), uint64(global)) // a global export
	addedGlobal, addedExport := false, false
	// Sections the module lacks are added where the binary format's order puts them.
	addMissing := func(before byte) {
		rank, ok := sectionRank[before]
		if !ok {
			rank = len(sectionRank) + 1
		}
		if !addedGlobal && rank > sectionRank[6] {
			emit(6, append(appendULEB(nil, 2), newGlobal...))
			addedGlobal = true
		}
		if !addedExport && rank > sectionRank[7] {
			emit(7, append(appendULEB(nil, 1), newExport...))
			addedExport = true
		}
	}
	for _, sec := range sections {
		if sec.id != 0 {
			addMissing(sec.id)
		}
		switch sec.id {
		case 6:
			p, err := appendToVector(sec.payload, 2, newGlobal)
			if err != nil {
				return nil, fmt.Errorf("global section: %w", err)
			}
			emit(6, p)
			addedGlobal = true
		case 7:
			p, err := appendToVector(sec.payload, 1, newExport)
			if err != nil {
				return nil, fmt.Errorf("export section: %w", err)
			}
			emit(7, p)
			addedExport = true
		case 10:
			p, err := instrumentCode(sec.payload, check, global, importedFuncs, checked)
			if err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
			emit(10, p)
		default:
			emit(sec.id, sec.payload)
		}
	}
	addMissing(0xFF) // after every section: what is still missing goes at the end
	return out, nil
}

// appendToVector adds count entries, encoded in entries, to a section that is a vector of entries.
func appendToVector(payload []byte, count uint64, entries []byte) ([]byte, error) {
	s := &wasmReader{b: payload}
	n, err := s.u32()
	if err != nil {
		return nil, err
	}
	out := appendULEB(nil, uint64(n)+count)
	out = append(out, payload[s.off:]...)
	return append(out, entries...), nil
}

// countImports counts the imported functions and globals.
func countImports(s *wasmReader) (funcs, globals uint32, err error) {
	n, err := s.u32()
	if err != nil {
		return 0, 0, err
	}
	for range n {
		if _, err := s.vecBytes(); err != nil {
			return 0, 0, err
		}
		if _, err := s.vecBytes(); err != nil {
			return 0, 0, err
		}
		kind, err := s.byte()
		if err != nil {
			return 0, 0, err
		}
		switch kind {
		case 0:
			funcs++
			if _, err := s.u32(); err != nil {
				return 0, 0, err
			}
		case 1:
			if _, err := s.byte(); err != nil {
				return 0, 0, err
			}
			if err := skipLimits(s); err != nil {
				return 0, 0, err
			}
		case 2:
			if err := skipLimits(s); err != nil {
				return 0, 0, err
			}
		case 3:
			globals++
			if _, err := s.bytes(2); err != nil {
				return 0, 0, err
			}
		default:
			return 0, 0, fmt.Errorf("import kind %#x not supported", kind)
		}
	}
	return funcs, globals, nil
}

// refuseExportName fails when the module already exports deadlineExport.
func refuseExportName(s *wasmReader) error {
	n, err := s.u32()
	if err != nil {
		return err
	}
	for range n {
		name, err := s.vecBytes()
		if err != nil {
			return err
		}
		if string(name) == deadlineExport {
			return fmt.Errorf("export %s is reserved for the host", deadlineExport)
		}
		if _, err := s.byte(); err != nil {
			return err
		}
		if _, err := s.u32(); err != nil {
			return err
		}
	}
	return nil
}

// instrumentCode rewrites every function body of a code section.
func instrumentCode(payload, check []byte, global, importedFuncs uint32, checked []bool) ([]byte, error) {
	s := &wasmReader{b: payload}
	n, err := s.u32()
	if err != nil {
		return nil, err
	}
	out := appendULEB(make([]byte, 0, len(payload)+len(payload)/8), uint64(n))
	var body []byte
	for i := range n {
		src, err := s.vecBytes()
		if err != nil {
			return nil, err
		}
		fn := int(importedFuncs) + int(i)
		entry := fn < len(checked) && checked[fn]
		body, err = instrumentBody(body[:0], src, check, global, entry)
		if err != nil {
			return nil, fmt.Errorf("function %d: %w", fn, err)
		}
		out = appendULEB(out, uint64(len(body)))
		out = append(out, body...)
	}
	if s.off != len(payload) {
		return nil, errors.New("data after the last function body")
	}
	return out, nil
}

// instrumentBody appends src with the check after every loop header, and on entry when entry is set.
func instrumentBody(out, src, check []byte, global uint32, entry bool) ([]byte, error) {
	r := &wasmReader{b: src}
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return nil, err
		}
		if _, err := r.byte(); err != nil {
			return nil, err
		}
	}
	out = append(out, src[:r.off]...)
	if entry {
		out = append(out, check...)
	}
	depth, copied := 1, r.off
	for depth > 0 {
		op, err := r.byte()
		if err != nil {
			return nil, err
		}
		switch op {
		case 0x02, 0x03, 0x04: // block, loop, if
			if err := skipBlockType(r); err != nil {
				return nil, err
			}
			depth++
		case 0x0B: // end
			depth--
		case 0x10, 0x12: // call, return_call
			if _, err := r.u32(); err != nil {
				return nil, err
			}
		case 0x11, 0x13: // call_indirect, return_call_indirect
			if _, err := r.u32(); err != nil {
				return nil, err
			}
			if _, err := r.u32(); err != nil {
				return nil, err
			}
		case 0x23, 0x24: // global.get, global.set
			g, err := r.u32()
			if err != nil {
				return nil, err
			}
			if g >= global {
				return nil, fmt.Errorf("global %d out of range", g)
			}
		default:
			if err := skipImmediates(r, op); err != nil {
				return nil, err
			}
		}
		if op == 0x03 {
			out = append(out, src[copied:r.off]...)
			out = append(out, check...)
			copied = r.off
		}
	}
	if r.off != len(src) {
		return nil, errors.New("code after the end of the function body")
	}
	return append(out, src[copied:]...), nil
}

// watchdog arms the deadline check of one instance for one call: once ctx is done, it sets the instance's
// deadline global. disarm reports whether the watchdog never fired; if it did, the instance must not serve
// again (its global is or will be set).
type watchdog struct {
	stop func() bool
}

func arm(ctx context.Context, g api.MutableGlobal) watchdog {
	return watchdog{stop: context.AfterFunc(ctx, func() { g.Set(1) })}
}

func (w watchdog) disarm() bool { return w.stop() }
