;; bomb: exponential recursion with no loop anywhere: f(n) calls f(n-1) twice, 2^60 calls. wazero only checks
;; deadlines at loop headers, so the host must give $f an entry check (see terminate.go).
(module
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 1)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (func $f (param $n i32)
    local.get $n
    i32.eqz
    if
      return
    end
    local.get $n
    i32.const 1
    i32.sub
    call $f
    local.get $n
    i32.const 1
    i32.sub
    call $f)
  (func (export "kasse_call") (param i32) (result i64)
    i32.const 60
    call $f
    i64.const 0))
