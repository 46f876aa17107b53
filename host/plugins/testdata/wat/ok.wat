;; ok: a well-behaved module that answers every call with {"ok":true}.
(module
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 1)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (data (i32.const 16) "{\"ok\":true}")
  (func (export "kasse_call") (param i32) (result i64)
    i64.const 0x100000000b)) ;; output at 16, 11 bytes
