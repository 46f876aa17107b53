;; env_import: imports a host function the runtime does not offer.
(module
  (import "env" "foo" (func $foo))
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 1)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (func (export "kasse_call") (param i32) (result i64)
    call $foo
    i64.const 0))
