;; wrong_abi_version: reports ABI version 3, which no host supports (1 and 2 load).
(module
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 3)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (func (export "kasse_call") (param i32) (result i64)
    i64.const 0))
