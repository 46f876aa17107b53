package plugins

import (
	"errors"
	"fmt"
	"math"
)

// Why some functions get a deadline check on entry (loop-free recursion)
//
// The host stops a guest at its deadline with a check at every loop header it executes (deadline.go; it
// replaced wazero's WithCloseOnContextDone, which checks at the same places). Code that never enters a loop
// is never checked:
// a module whose functions recurse through calls that sit outside any loop (the "recursion bomb": f calls
// f twice, no loop anywhere) runs for 2^depth calls and ignores its deadline, and so does a chain of
// loop-free functions each calling the next several times (f1 calls f2 twice, f2 calls f3 twice, ...).
// Such a call cannot be interrupted from outside, and refusing such modules outright would refuse every
// Go module: the Go toolchain emits loop-free functions that call through function pointers (method
// values, runtime.systemstack), so a static analysis cannot rule recursion out.
//
// What the runtime does instead. A call site is guarded when it lies inside a loop block of its function:
// to reach it, execution passed that loop's header, and so a deadline check. Load builds the graph of
// unguarded call sites (an indirect call may reach every function of its type) and gives a deadline check
// on entry (the same inline check as at loop headers, deadline.go) to
//   - every function on a cycle of that graph, and
//   - every function whose loop-free cost exceeds entryCheckCost, where the loop-free cost of f is its code
//     bytes outside loops plus the costs of its unguarded, unchecked callees (an indirect call costs its
//     most expensive possible callee).
//
// Without a back-edge (a loop header, so a check) no call site runs twice in one frame, and an unchecked
// callee runs at most entryCheckCost code bytes before it returns or reaches a check. The work between two
// checks is therefore bounded by the frames on the stack times their call sites times entryCheckCost:
// polynomial in the module's size instead of exponential. Go modules need the entry check on a few dozen
// functions (the echo test plugin: 72 of 2,152), mostly runtime functions for panics, scheduling and heap
// growth. The native stack reached by recursion is bounded by wazero, which traps with a stack overflow.

// entryCheckCost is the loop-free cost, in code bytes a function and its unchecked callees may execute,
// above which a function gets a deadline check on entry.
const entryCheckCost = 1 << 14

// checkedFunctions parses wasm's code and returns, indexed by function (imports included), the functions
// that need a deadline check on entry. It expects a module wazero already accepted; it still fails safely
// (with an error) on anything it cannot parse.
func checkedFunctions(wasm []byte) ([]bool, error) {
	g, err := parseCallGraph(wasm)
	if err != nil {
		return nil, fmt.Errorf("termination analysis: %w", err)
	}
	return g.checked(), nil
}

// callSite is one call instruction: a direct callee, or (indirect) a type index.
type callSite struct {
	target   uint32
	indirect bool
	guarded  bool
}

type funcInfo struct {
	typeIdx uint32
	// size counts the code bytes outside any loop: what one execution that enters no loop can run.
	size  int
	calls []callSite
	// imported functions are host code: they cost 1 and call nothing.
	imported bool
}

type callGraph struct {
	types [][2][]byte // params and results of each function type, as value-type bytes
	funcs []funcInfo
	names map[uint32]string
}

func (g *callGraph) name(i uint32) string {
	if n, ok := g.names[i]; ok {
		return fmt.Sprintf("function[%d] (%s)", i, n)
	}
	return fmt.Sprintf("function[%d]", i)
}

// checked computes the functions that need an entry check, as described above.
//
// Nodes 0..len(funcs)-1 are functions; node len(funcs)+k is a hub for the k-th distinct function type,
// with an edge to every function of that type, so that indirect calls add one edge each.
func (g *callGraph) checked() []bool {
	nf := len(g.funcs)
	typeKey := func(t uint32) string { return string(g.types[t][0]) + "\x00" + string(g.types[t][1]) }
	hubOf := map[string]int{}
	var hubMembers [][]int
	hub := func(t uint32) int {
		k := typeKey(t)
		h, ok := hubOf[k]
		if !ok {
			h = len(hubMembers)
			hubOf[k] = h
			hubMembers = append(hubMembers, nil)
		}
		return h
	}
	for i, f := range g.funcs {
		h := hub(f.typeIdx)
		hubMembers[h] = append(hubMembers[h], i)
	}
	// The hubs indirect calls can actually use: types of functions nobody calls indirectly need none.
	for _, f := range g.funcs {
		for _, c := range f.calls {
			if c.indirect {
				hub(c.target)
			}
		}
	}
	n := nf + len(hubMembers)
	edges := func(v int, each func(int)) {
		if v >= nf {
			for _, m := range hubMembers[v-nf] {
				each(m)
			}
			return
		}
		for _, c := range g.funcs[v].calls {
			if c.guarded {
				continue
			}
			if c.indirect {
				each(nf + hub(c.target))
			} else {
				each(int(c.target))
			}
		}
	}
	check := make([]bool, nf)
	// Functions on a cycle of unguarded calls (Tarjan's strongly connected components, iterative).
	for _, scc := range stronglyConnected(n, edges) {
		if len(scc) == 1 {
			v := scc[0]
			self := false
			edges(v, func(w int) { self = self || w == v })
			if !self {
				continue
			}
		}
		for _, v := range scc {
			if v < nf && !g.funcs[v].imported {
				check[v] = true
			}
		}
	}
	// Loop-free costs over the now acyclic graph of unchecked callees, in post-order.
	cost := make([]int64, n)
	state := make([]uint8, n) // 0 unvisited, 1 on stack, 2 done
	type frame struct {
		v     int
		calls []int
		next  int
	}
	costOf := func(w int) int64 {
		if w < nf && check[w] {
			return 0
		}
		return cost[w]
	}
	for root := range n {
		if state[root] != 0 {
			continue
		}
		stack := []frame{{v: root}}
		state[root] = 1
		for len(stack) > 0 {
			top := &stack[len(stack)-1]
			if top.calls == nil {
				top.calls = []int{}
				edges(top.v, func(w int) { top.calls = append(top.calls, w) })
			}
			if top.next < len(top.calls) {
				w := top.calls[top.next]
				top.next++
				if state[w] == 0 && !(w < nf && check[w]) {
					state[w] = 1
					stack = append(stack, frame{v: w})
				}
				continue
			}
			v := top.v
			var c int64
			if v >= nf {
				for _, w := range top.calls {
					c = max(c, costOf(w))
				}
			} else if g.funcs[v].imported {
				c = 1
			} else {
				c = int64(g.funcs[v].size)
				for _, w := range top.calls {
					c = satAdd(c, costOf(w))
				}
				if c > entryCheckCost {
					check[v] = true
				}
			}
			cost[v] = c
			state[v] = 2
			stack = stack[:len(stack)-1]
		}
	}
	return check
}

// stronglyConnected returns the strongly connected components of the graph with n nodes and the given
// edges (Tarjan's algorithm without recursion).
func stronglyConnected(n int, edges func(v int, each func(int))) [][]int {
	index := make([]int, n)
	low := make([]int, n)
	onStack := make([]bool, n)
	for i := range index {
		index[i] = -1
	}
	var (
		next  int
		stack []int
		sccs  [][]int
	)
	type frame struct {
		v     int
		succ  []int
		child int
	}
	for root := range n {
		if index[root] >= 0 {
			continue
		}
		call := []frame{{v: root}}
		for len(call) > 0 {
			f := &call[len(call)-1]
			if f.succ == nil {
				index[f.v], low[f.v] = next, next
				next++
				stack = append(stack, f.v)
				onStack[f.v] = true
				f.succ = []int{}
				edges(f.v, func(w int) { f.succ = append(f.succ, w) })
			}
			if f.child < len(f.succ) {
				w := f.succ[f.child]
				f.child++
				if index[w] < 0 {
					call = append(call, frame{v: w})
				} else if onStack[w] {
					low[f.v] = min(low[f.v], index[w])
				}
				continue
			}
			v := f.v
			if low[v] == index[v] {
				var scc []int
				for {
					w := stack[len(stack)-1]
					stack = stack[:len(stack)-1]
					onStack[w] = false
					scc = append(scc, w)
					if w == v {
						break
					}
				}
				sccs = append(sccs, scc)
			}
			call = call[:len(call)-1]
			if len(call) > 0 {
				p := &call[len(call)-1]
				low[p.v] = min(low[p.v], low[v])
			}
		}
	}
	return sccs
}

func satAdd(a, b int64) int64 {
	if a > math.MaxInt64-b {
		return math.MaxInt64
	}
	return a + b
}

// wasmReader reads the binary format.
type wasmReader struct {
	b   []byte
	off int
}

var errTruncated = errors.New("truncated module")

func (r *wasmReader) byte() (byte, error) {
	if r.off >= len(r.b) {
		return 0, errTruncated
	}
	c := r.b[r.off]
	r.off++
	return c, nil
}

func (r *wasmReader) bytes(n int) ([]byte, error) {
	if n < 0 || n > len(r.b)-r.off {
		return nil, errTruncated
	}
	s := r.b[r.off : r.off+n]
	r.off += n
	return s, nil
}

// uleb reads an unsigned LEB128 of at most bits bits.
func (r *wasmReader) uleb(bits int) (uint64, error) {
	var v uint64
	for shift := 0; ; shift += 7 {
		if shift >= bits+7 {
			return 0, errors.New("LEB128 too long")
		}
		c, err := r.byte()
		if err != nil {
			return 0, err
		}
		v |= uint64(c&0x7f) << shift
		if c&0x80 == 0 {
			return v, nil
		}
	}
}

func (r *wasmReader) u32() (uint32, error) {
	v, err := r.uleb(32)
	return uint32(v), err
}

// sleb skips a signed LEB128 of at most bits bits.
func (r *wasmReader) sleb(bits int) error {
	_, err := r.uleb(bits)
	return err
}

func (r *wasmReader) vecBytes() ([]byte, error) {
	n, err := r.u32()
	if err != nil {
		return nil, err
	}
	return r.bytes(int(n))
}

func parseCallGraph(wasm []byte) (*callGraph, error) {
	r := &wasmReader{b: wasm}
	if len(wasm) < 8 || string(wasm[:4]) != "\x00asm" {
		return nil, errors.New("not a wasm module")
	}
	r.off = 8
	g := &callGraph{names: map[uint32]string{}}
	var codeFuncs []uint32
	for r.off < len(r.b) {
		id, err := r.byte()
		if err != nil {
			return nil, err
		}
		body, err := r.vecBytes()
		if err != nil {
			return nil, err
		}
		s := &wasmReader{b: body}
		switch id {
		case 0:
			if err := g.parseNames(s); err != nil {
				return nil, fmt.Errorf("name section: %w", err)
			}
		case 1:
			if err := g.parseTypes(s); err != nil {
				return nil, fmt.Errorf("type section: %w", err)
			}
		case 2:
			if err := g.parseImports(s); err != nil {
				return nil, fmt.Errorf("import section: %w", err)
			}
		case 3:
			n, err := s.u32()
			if err != nil {
				return nil, err
			}
			for range n {
				t, err := s.u32()
				if err != nil {
					return nil, err
				}
				if int(t) >= len(g.types) {
					return nil, fmt.Errorf("function type %d out of range", t)
				}
				codeFuncs = append(codeFuncs, uint32(len(g.funcs)))
				g.funcs = append(g.funcs, funcInfo{typeIdx: t})
			}
		case 10:
			if err := g.parseCode(s, codeFuncs); err != nil {
				return nil, fmt.Errorf("code section: %w", err)
			}
		}
	}
	return g, nil
}

func (g *callGraph) parseTypes(s *wasmReader) error {
	n, err := s.u32()
	if err != nil {
		return err
	}
	for range n {
		form, err := s.byte()
		if err != nil {
			return err
		}
		if form != 0x60 {
			return fmt.Errorf("type form %#x not supported", form)
		}
		params, err := s.vecBytes()
		if err != nil {
			return err
		}
		results, err := s.vecBytes()
		if err != nil {
			return err
		}
		g.types = append(g.types, [2][]byte{params, results})
	}
	return nil
}

func (g *callGraph) parseImports(s *wasmReader) error {
	n, err := s.u32()
	if err != nil {
		return err
	}
	for range n {
		if _, err := s.vecBytes(); err != nil {
			return err
		}
		if _, err := s.vecBytes(); err != nil {
			return err
		}
		kind, err := s.byte()
		if err != nil {
			return err
		}
		switch kind {
		case 0: // function
			t, err := s.u32()
			if err != nil {
				return err
			}
			if int(t) >= len(g.types) {
				return fmt.Errorf("function type %d out of range", t)
			}
			g.funcs = append(g.funcs, funcInfo{typeIdx: t, imported: true})
		case 1: // table: reftype, limits
			if _, err := s.byte(); err != nil {
				return err
			}
			if err := skipLimits(s); err != nil {
				return err
			}
		case 2: // memory
			if err := skipLimits(s); err != nil {
				return err
			}
		case 3: // global: valtype, mut
			if _, err := s.bytes(2); err != nil {
				return err
			}
		default:
			return fmt.Errorf("import kind %#x not supported", kind)
		}
	}
	return nil
}

func skipLimits(s *wasmReader) error {
	flags, err := s.byte()
	if err != nil {
		return err
	}
	if _, err := s.u32(); err != nil {
		return err
	}
	if flags&1 != 0 {
		if _, err := s.u32(); err != nil {
			return err
		}
	}
	return nil
}

// parseNames reads function names from the name section, for error messages only; it ignores what it
// cannot read.
func (g *callGraph) parseNames(s *wasmReader) error {
	name, err := s.vecBytes()
	if err != nil || string(name) != "name" {
		return nil
	}
	for s.off < len(s.b) {
		id, err := s.byte()
		if err != nil {
			return nil
		}
		sub, err := s.vecBytes()
		if err != nil {
			return nil
		}
		if id != 1 {
			continue
		}
		ss := &wasmReader{b: sub}
		n, err := ss.u32()
		if err != nil {
			return nil
		}
		for range n {
			idx, err := ss.u32()
			if err != nil {
				return nil
			}
			nm, err := ss.vecBytes()
			if err != nil {
				return nil
			}
			g.names[idx] = string(nm)
		}
	}
	return nil
}

func (g *callGraph) parseCode(s *wasmReader, codeFuncs []uint32) error {
	n, err := s.u32()
	if err != nil {
		return err
	}
	if int(n) != len(codeFuncs) {
		return fmt.Errorf("%d bodies for %d functions", n, len(codeFuncs))
	}
	for _, fi := range codeFuncs {
		body, err := s.vecBytes()
		if err != nil {
			return err
		}
		f := &g.funcs[fi]
		if err := g.parseBody(&wasmReader{b: body}, f); err != nil {
			return fmt.Errorf("%s: %w", g.name(fi), err)
		}
	}
	return nil
}

func (g *callGraph) parseBody(r *wasmReader, f *funcInfo) error {
	// Locals.
	n, err := r.u32()
	if err != nil {
		return err
	}
	for range n {
		if _, err := r.u32(); err != nil {
			return err
		}
		if _, err := r.byte(); err != nil {
			return err
		}
	}
	// Control stack: true for a loop frame. The function body itself is the first frame.
	frames := []bool{false}
	loops := 0
	for len(frames) > 0 {
		start := r.off
		outside := loops == 0
		op, err := r.byte()
		if err != nil {
			return err
		}
		switch {
		case op == 0x02 || op == 0x03 || op == 0x04: // block, loop, if
			if err := skipBlockType(r); err != nil {
				return err
			}
			frames = append(frames, op == 0x03)
			if op == 0x03 {
				loops++
			}
		case op == 0x0B: // end
			if frames[len(frames)-1] {
				loops--
			}
			frames = frames[:len(frames)-1]
		case op == 0x10 || op == 0x12: // call, return_call
			x, err := r.u32()
			if err != nil {
				return err
			}
			if int(x) >= len(g.funcs) {
				return fmt.Errorf("call to function %d out of range", x)
			}
			f.calls = append(f.calls, callSite{target: x, guarded: loops > 0})
		case op == 0x11 || op == 0x13: // call_indirect, return_call_indirect
			t, err := r.u32()
			if err != nil {
				return err
			}
			if _, err := r.u32(); err != nil {
				return err
			}
			if int(t) >= len(g.types) {
				return fmt.Errorf("call_indirect type %d out of range", t)
			}
			f.calls = append(f.calls, callSite{target: t, indirect: true, guarded: loops > 0})
		default:
			if err := skipImmediates(r, op); err != nil {
				return err
			}
		}
		if outside {
			f.size += r.off - start
		}
	}
	if r.off != len(r.b) {
		return errors.New("code after the end of the function body")
	}
	return nil
}

func skipBlockType(r *wasmReader) error {
	if r.off >= len(r.b) {
		return errTruncated
	}
	switch r.b[r.off] {
	case 0x40, 0x7F, 0x7E, 0x7D, 0x7C, 0x7B, 0x70, 0x6F:
		r.off++
		return nil
	}
	return r.sleb(33)
}

func skipMemArg(r *wasmReader) error {
	align, err := r.u32()
	if err != nil {
		return err
	}
	if align&0x40 != 0 { // multi-memory: a memory index follows
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	_, err = r.uleb(64)
	return err
}

// skipImmediates skips the immediates of every opcode that is neither a block, an end nor a call.
func skipImmediates(r *wasmReader, op byte) error {
	switch {
	case op == 0x00 || op == 0x01 || op == 0x05 || op == 0x0F || op == 0x1A || op == 0x1B || op == 0xD1:
		return nil // unreachable, nop, else, return, drop, select, ref.is_null
	case op == 0x0C || op == 0x0D: // br, br_if
		_, err := r.u32()
		return err
	case op == 0x0E: // br_table
		n, err := r.u32()
		if err != nil {
			return err
		}
		for range uint64(n) + 1 {
			if _, err := r.u32(); err != nil {
				return err
			}
		}
		return nil
	case op == 0x1C: // select t*
		_, err := r.vecBytes()
		return err
	case op >= 0x20 && op <= 0x26: // local.*, global.*, table.get/set
		_, err := r.u32()
		return err
	case op >= 0x28 && op <= 0x3E: // loads and stores
		return skipMemArg(r)
	case op == 0x3F || op == 0x40: // memory.size, memory.grow
		_, err := r.u32()
		return err
	case op == 0x41:
		return r.sleb(32)
	case op == 0x42:
		return r.sleb(64)
	case op == 0x43:
		_, err := r.bytes(4)
		return err
	case op == 0x44:
		_, err := r.bytes(8)
		return err
	case op >= 0x45 && op <= 0xC4: // numeric instructions without immediates
		return nil
	case op == 0xD0: // ref.null heaptype
		_, err := r.byte()
		return err
	case op == 0xD2: // ref.func
		_, err := r.u32()
		return err
	case op == 0xFC:
		return skipFC(r)
	case op == 0xFD:
		return skipSIMD(r)
	case op == 0xFE:
		return skipAtomic(r)
	}
	return fmt.Errorf("opcode %#x not supported", op)
}

func skipFC(r *wasmReader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	var imms int
	switch {
	case sub <= 7: // saturating truncations
		imms = 0
	case sub == 8, sub == 10, sub == 12, sub == 14: // memory.init, memory.copy, table.init, table.copy
		imms = 2
	case sub <= 17: // data.drop, memory.fill, elem.drop, table.grow, table.size, table.fill
		imms = 1
	default:
		return fmt.Errorf("opcode 0xfc %d not supported", sub)
	}
	for range imms {
		if _, err := r.u32(); err != nil {
			return err
		}
	}
	return nil
}

func skipSIMD(r *wasmReader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	switch {
	case sub <= 11 || sub == 92 || sub == 93: // loads, store, load_zero
		return skipMemArg(r)
	case sub == 12 || sub == 13: // v128.const, i8x16.shuffle
		_, err := r.bytes(16)
		return err
	case sub >= 21 && sub <= 34: // extract_lane, replace_lane
		_, err := r.byte()
		return err
	case sub >= 84 && sub <= 91: // load_lane, store_lane
		if err := skipMemArg(r); err != nil {
			return err
		}
		_, err := r.byte()
		return err
	case sub <= 0xFF:
		return nil
	}
	return fmt.Errorf("opcode 0xfd %d not supported", sub)
}

func skipAtomic(r *wasmReader) error {
	sub, err := r.u32()
	if err != nil {
		return err
	}
	if sub == 0x03 { // atomic.fence
		_, err := r.byte()
		return err
	}
	return skipMemArg(r)
}
