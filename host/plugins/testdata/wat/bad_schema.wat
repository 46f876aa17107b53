;; bad_schema: a module that keeps the ABI but answers every call with JSON that fails the plugin output
;; schema ("ok" is a string). The runtime passes it on; the host's schema check and the upgrade gate refuse it.
(module
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 1)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (data (i32.const 16) "{\"ok\":\"yes\"}")
  (func (export "kasse_call") (param i32) (result i64)
    i64.const 0x100000000c)) ;; output at 16, 12 bytes
