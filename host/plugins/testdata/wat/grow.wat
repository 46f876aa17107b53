;; grow: grows memory a page at a time until memory.grow fails at the host's page limit, then traps.
(module
  (memory (export "memory") 1)
  (func (export "kasse_abi_version") (result i32) i32.const 1)
  (func (export "kasse_input") (param i32) (result i32) i32.const 1024)
  (func (export "kasse_yield"))
  (func (export "kasse_call") (param i32) (result i64)
    (loop $l
      (br_if $l (i32.ne (memory.grow (i32.const 1)) (i32.const -1))))
    unreachable))
