// RUN: ds-run %s --fill x=1 --fill w=1 --launch 'advance; commit' --repeat 10 --launch compute_loss --grad loss --print w_grad
// RUN: ds-run %s --fill x=1 --fill w=1 --launch 'advance; commit' --repeat 10 --launch compute_loss --grad loss --memory-budget 1M --print-plan --print loss --print w_grad
// RUN: ds-run %s --fill x=1 --fill w=1 --launch 'advance; commit' --repeat 10 --launch compute_loss --grad loss --memory-budget 1k --print-plan --print loss --print w_grad
// RUN: ds-run %s --fill x=1 --fill w=1 --launch 'advance; commit' --repeat 10 --launch compute_loss --grad loss --memory-budget 100 --print-plan
// State overwritten every step (advance writes x_new, v_new; commit copies
// them back): backward needs a memory budget, and gives the same gradient
// whether it stores every step or recomputes within a small budget.
"ds.field"() {sym_name = "x", element_type = f64, shape = array<i64: 4>, grad = @x_grad} : () -> ()
"ds.field"() {sym_name = "x_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "v", element_type = f64, shape = array<i64: 4>, grad = @v_grad} : () -> ()
"ds.field"() {sym_name = "v_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "x_new", element_type = f64, shape = array<i64: 4>, grad = @x_new_grad} : () -> ()
"ds.field"() {sym_name = "x_new_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "v_new", element_type = f64, shape = array<i64: 4>, grad = @v_new_grad} : () -> ()
"ds.field"() {sym_name = "v_new_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "w", element_type = f64, shape = array<i64: 4>, grad = @w_grad} : () -> ()
"ds.field"() {sym_name = "w_grad", element_type = f64, shape = array<i64: 4>} : () -> ()
"ds.field"() {sym_name = "loss", element_type = f64, shape = array<i64>, grad = @loss_grad} : () -> ()
"ds.field"() {sym_name = "loss_grad", element_type = f64, shape = array<i64>} : () -> ()

func.func @advance() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 4 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %v = "ds.load"(%i) {field = @v} : (index) -> f64
    %w = "ds.load"(%i) {field = @w} : (index) -> f64
    %dt = arith.constant 0.1 : f64
    %sx = math.sin %x : f64
    %f = arith.mulf %sx, %w : f64
    %dv = arith.mulf %dt, %f : f64
    %nv = arith.subf %v, %dv : f64
    %dx = arith.mulf %dt, %nv : f64
    %nx = arith.addf %x, %dx : f64
    "ds.store"(%nv, %i) {field = @v_new} : (f64, index) -> ()
    "ds.store"(%nx, %i) {field = @x_new} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

func.func @commit() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 4 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x_new} : (index) -> f64
    %v = "ds.load"(%i) {field = @v_new} : (index) -> f64
    "ds.store"(%x, %i) {field = @x} : (f64, index) -> ()
    "ds.store"(%v, %i) {field = @v} : (f64, index) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}

func.func @compute_loss() attributes {ds.kernel} {
  %c0 = arith.constant 0 : index
  %n = arith.constant 4 : index
  "ds.parallel_for"(%c0, %n) ({
  ^bb0(%i: index):
    %x = "ds.load"(%i) {field = @x} : (index) -> f64
    %sq = arith.mulf %x, %x : f64
    "ds.atomic_add"(%sq) {field = @loss} : (f64) -> ()
    gpu.yield
  }) : (index, index) -> ()
  return
}
