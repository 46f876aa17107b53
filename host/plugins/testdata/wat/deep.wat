;; deep: unbounded recursion; wazero's native stack ceiling turns it into a stack overflow trap.
(module
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 1)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (func $d (param $n i64) (result i64)
    local.get $n
    i64.const 1
    i64.add
    call $d)
  (func (export "kasse_call") (param i32) (result i64)
    i64.const 0
    call $d))
