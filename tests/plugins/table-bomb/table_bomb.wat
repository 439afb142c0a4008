;; Hostile fixture (E5): an email validator written as a component in WAT, because Rust guests
;; cannot run `table.grow` themselves. `validate` grows its table by 10^7 elements, and then by
;; 1,000 at a time, forever: the host's table limit (MAX_TABLE_ELEMENTS) must stop it.
;; tests/build.rs turns this text into table_bomb.wasm.
(component
  (core module $m
    (memory (export "memory") 1)
    (table $t 1 funcref)
    ;; Parameters are copied to a fixed spot: this module never frees anything.
    (func (export "cabi_realloc") (param i32 i32 i32 i32) (result i32)
      i32.const 1024)
    (func (export "validate") (param i32 i32) (result i32)
      (drop (table.grow $t (ref.null func) (i32.const 10000000)))
      (loop $again
        (drop (table.grow $t (ref.null func) (i32.const 1000)))
        (br $again))
      i32.const 0))
  (core instance $i (instantiate $m))
  (type $answer (result (error string)))
  (func $validate (param "email" string) (result $answer)
    (canon lift (core func $i "validate") (memory (core memory $i "memory"))
      (realloc (core func $i "cabi_realloc"))))
  (instance $api (export "validate" (func $validate)))
  (export "crm:users/email-validation@0.1.0" (instance $api)))
