//! Field layouts from Rust: a particle simulation whose vector fields are
//! interleaved (the default), stored by component (`pb.layout(&x,
//! Layout::Soa)`), or placed together (`pb.root().dense([N]).place((&x,
//! &v))`, AoS or SoA) computes the same states and gradients, lies in memory
//! in the layout's order, and is differentiated through a recording that
//! checkpoints under a memory budget, against finite differences. Fields
//! that cannot share a node are typed errors naming them.

use diffsim::prelude::*;

const N: usize = 8;
const STEPS: usize = 10;
type V2 = [f64; 2];

#[kernel]
fn step(x: &VectorField<f64, 2, 1>, v: &VectorField<f64, 2, 1>, x_new: &VectorField<f64, 2, 1>, v_new: &VectorField<f64, 2, 1>, k: &ScalarField<f64, 1>) {
    for i in 0..N {
        let p = x[(i,)];
        let u = v[(i,)];
        let force = p * (-k[(i,)]) + Vector([p.at(1).sin() * 0.3, p.at(0).cos() * 0.2]);
        let u2 = u + force * 0.1;
        v_new[(i,)] = u2;
        x_new[(i,)] = p + u2 * 0.1;
    }
}

#[kernel]
fn commit(x_new: &VectorField<f64, 2, 1>, v_new: &VectorField<f64, 2, 1>, x: &VectorField<f64, 2, 1>, v: &VectorField<f64, 2, 1>) {
    for i in 0..N {
        x[(i,)] = x_new[(i,)];
        v[(i,)] = v_new[(i,)];
    }
}

#[kernel]
fn energy(x: &VectorField<f64, 2, 1>, v: &VectorField<f64, 2, 1>, loss: &ScalarField<f64, 0>) {
    for i in 0..N {
        loss[()] += x[(i,)].norm_sqr() + v[(i,)].norm_sqr() * 0.5;
    }
}

#[derive(Clone, Copy, Debug, PartialEq)]
enum Variant {
    /// Every field its own, interleaved buffer.
    Aos,
    /// Every vector field its own buffer, by component.
    Soa,
    /// x and v placed together, x_new and v_new too, AoS or SoA.
    Together(Layout),
}

const VARIANTS: [Variant; 4] = [Variant::Aos, Variant::Soa, Variant::Together(Layout::Aos), Variant::Together(Layout::Soa)];

struct Sim {
    p: Program,
    x: GradField<V2, 1>,
    v: GradField<V2, 1>,
    k: GradField<f64, 1>,
    loss: GradField<f64, 0>,
    kernels: [Kernel<()>; 3],
}

fn sim(variant: Variant) -> Sim {
    let mut pb = ProgramBuilder::new();
    let (x, v): (GradField<V2, 1>, GradField<V2, 1>) = (pb.field_with_grad("x", [N]), pb.field_with_grad("v", [N]));
    let (x_new, v_new): (GradField<V2, 1>, GradField<V2, 1>) = (pb.field_with_grad("x_new", [N]), pb.field_with_grad("v_new", [N]));
    let (k, loss) = (pb.field_with_grad("k", [N]), pb.field_with_grad("loss", []));
    match variant {
        Variant::Aos => {}
        Variant::Soa => {
            for f in [&x, &v, &x_new, &v_new] {
                pb.layout(f, Layout::Soa);
            }
        }
        Variant::Together(order) => {
            pb.root().dense([N]).layout(order).place((&x, &v));
            pb.root().dense([N]).layout(order).place((&x_new, &v_new));
        }
    }
    let kernels =
        [pb.kernel(step(&x, &v, &x_new, &v_new, &k)).unwrap(), pb.kernel(commit(&x_new, &v_new, &x, &v)).unwrap(), pb.kernel(energy(&x, &v, &loss)).unwrap()];
    Sim { p: pb.build().unwrap_or_else(|e| panic!("{variant:?}: {e}")), x, v, k, loss, kernels }
}

impl Sim {
    /// Initial state; `shift` moves x[2][1] (for finite differences).
    fn reset(&mut self, k0: f64, shift: f64) {
        let xs: Vec<V2> = (0..N).map(|i| [0.1 * i as f64, 0.5 - 0.05 * i as f64]).collect();
        let vs: Vec<V2> = (0..N).map(|i| [0.02 * i as f64, -0.01]).collect();
        self.x.copy_from(&mut self.p, &xs).unwrap();
        self.x.set(&mut self.p, [2], [xs[2][0], xs[2][1] + shift]).unwrap();
        self.v.copy_from(&mut self.p, &vs).unwrap();
        self.k.copy_from(&mut self.p, &(0..N).map(|i| 0.8 + 0.05 * i as f64).collect::<Vec<_>>()).unwrap();
        self.k.set(&mut self.p, [0], k0).unwrap();
        self.loss.zero(&mut self.p).unwrap();
    }

    /// The loss after STEPS steps, recorded; `backward` runs on the recording.
    fn run<R>(&mut self, k0: f64, shift: f64, backward: impl FnOnce(Recording<'_, Program>, &GradField<f64, 0>) -> R) -> (f64, R) {
        self.reset(k0, shift);
        let [step, commit, energy] = &self.kernels;
        let mut rec = self.p.record();
        for _ in 0..STEPS {
            rec.launch(step, ()).unwrap();
            rec.launch(commit, ()).unwrap();
            rec.end_step();
        }
        rec.launch(energy, ()).unwrap();
        let loss = self.loss.get(rec.program(), []).unwrap();
        (loss, backward(rec, &self.loss))
    }

    fn state(&self) -> (Vec<V2>, Vec<V2>) {
        (self.x.to_vec(&self.p).unwrap(), self.v.to_vec(&self.p).unwrap())
    }
}

#[test]
fn every_layout_computes_the_same_states() {
    let mut runs = Vec::new();
    for variant in VARIANTS {
        let mut s = sim(variant);
        let (loss, _) = s.run(0.8, 0.0, |_, _| ());
        runs.push((variant, loss, s.state()));
    }
    for (variant, loss, state) in &runs[1..] {
        assert_eq!((loss, state), (&runs[0].1, &runs[0].2), "{variant:?} against AoS");
    }
}

/// The buffer holding `field`, as f64s in memory order.
fn memory(p: &Program, field: &str) -> Vec<f64> {
    let buffer = p.field(field).unwrap().info.placement.buffer;
    p.buffer_bytes(buffer).unwrap().chunks(8).map(|c| f64::from_le_bytes(c.try_into().unwrap())).collect()
}

#[test]
fn memory_is_in_the_layout_order() {
    let xs: Vec<V2> = (0..N).map(|i| [10.0 * i as f64, 10.0 * i as f64 + 1.0]).collect();
    let vs: Vec<V2> = (0..N).map(|i| [10.0 * i as f64 + 2.0, 10.0 * i as f64 + 3.0]).collect();
    let by_component = |f: &[V2], c: usize| f.iter().map(|e| e[c]).collect::<Vec<_>>();
    for variant in VARIANTS {
        let mut s = sim(variant);
        s.x.copy_from(&mut s.p, &xs).unwrap();
        s.v.copy_from(&mut s.p, &vs).unwrap();
        let expected: Vec<f64> = match variant {
            Variant::Aos => xs.concat(),
            Variant::Soa => [by_component(&xs, 0), by_component(&xs, 1)].concat(),
            Variant::Together(Layout::Aos) => xs.iter().zip(&vs).flat_map(|(x, v)| [x[0], x[1], v[0], v[1]]).collect(),
            Variant::Together(Layout::Soa) => {
                [by_component(&xs, 0), by_component(&xs, 1), by_component(&vs, 0), by_component(&vs, 1)].concat()
            }
        };
        assert_eq!(memory(&s.p, "x"), expected, "{variant:?}");
        assert_eq!((s.x.to_vec(&s.p).unwrap(), s.v.to_vec(&s.p).unwrap()), (xs.clone(), vs.clone()), "{variant:?}: host reads");
        // The adjoints: the same strides, a buffer of their own.
        let info = |name: &str| s.p.field(name).unwrap().info.placement.clone();
        let (x, g) = (info("x"), info("x_grad"));
        assert_eq!((x.offset, &x.strides), (g.offset, &g.strides), "{variant:?}");
        assert_ne!(x.buffer, g.buffer, "{variant:?}");
    }
    // The IR says so too.
    let s = sim(Variant::Together(Layout::Soa));
    let ir = s.p.ir();
    assert!(ir.contains(r#""ds.dense"() {order = "soa", shape = array<i64: 8>, sym_name = "x_cells"}"#), "{ir}");
    assert!(ir.contains(r#"layout = @x_cells, shape = array<i64: 8, 2>, sym_name = "v""#), "{ir}");
    assert!(ir.contains(r#"layout = @x_grad_cells, shape = array<i64: 8, 2>, sym_name = "v_grad""#), "{ir}");
}

#[test]
fn host_access_round_trips_and_keeps_the_neighbours() {
    for variant in VARIANTS {
        let mut s = sim(variant);
        let vs: Vec<V2> = (0..N).map(|i| [i as f64, -(i as f64)]).collect();
        s.v.copy_from(&mut s.p, &vs).unwrap();
        s.x.fill(&mut s.p, [7.0, 8.0]).unwrap();
        s.x.set(&mut s.p, [3], [1.5, 2.5]).unwrap();
        assert_eq!(s.x.get(&s.p, [3]).unwrap(), [1.5, 2.5], "{variant:?}");
        assert_eq!(s.x.get(&s.p, [4]).unwrap(), [7.0, 8.0], "{variant:?}");
        s.x.zero(&mut s.p).unwrap();
        assert_eq!(s.x.to_vec(&s.p).unwrap(), vec![[0.0; 2]; N], "{variant:?}");
        assert_eq!(s.v.to_vec(&s.p).unwrap(), vs, "{variant:?}: v shares x's buffer in some layouts and keeps its elements");
    }
}

#[test]
fn checkpointed_gradients_match_aos_and_finite_differences() {
    let mut grads = Vec::new();
    for variant in VARIANTS {
        let mut s = sim(variant);
        // Each step overwrites x, v, x_new and v_new (4 * 128 bytes): a budget
        // of a few states forces checkpointing.
        let budget = 3 * 4 * 2 * N * 8;
        let (_, plan) = s.run(0.8, 0.0, |rec, loss| {
            rec.backward_with(loss, &BackwardOptions { memory_budget: Some(budget), ..Default::default() }).unwrap()
        });
        let plan = plan.expect("the state is overwritten: backward checkpoints");
        assert!(plan.policy.starts_with("binomial") && plan.predicted_peak_bytes <= budget, "{variant:?}: {plan}");
        let dk = s.k.grad().to_vec(&s.p).unwrap();
        let dx2 = s.x.grad().get(&s.p, [2]).unwrap()[1];
        let h = 1e-6;
        let fd = |s: &mut Sim, k0: f64, shift: f64| s.run(k0, shift, |_, _| ()).0;
        let numeric_k = (fd(&mut s, 0.8 + h, 0.0) - fd(&mut s, 0.8 - h, 0.0)) / (2.0 * h);
        let numeric_x = (fd(&mut s, 0.8, h) - fd(&mut s, 0.8, -h)) / (2.0 * h);
        assert!(dk[0].abs() > 1e-3 && dx2.abs() > 1e-3, "{variant:?}: {dk:?} {dx2}");
        assert!((dk[0] - numeric_k).abs() <= 1e-6 * numeric_k.abs().max(1.0), "{variant:?}: dL/dk0 {} vs {numeric_k}", dk[0]);
        assert!((dx2 - numeric_x).abs() <= 1e-6 * numeric_x.abs().max(1.0), "{variant:?}: dL/dx[2][1] {dx2} vs {numeric_x}");
        grads.push((variant, dk, dx2));
    }
    for (variant, dk, dx2) in &grads[1..] {
        assert_eq!((dk, dx2), (&grads[0].1, &grads[0].2), "{variant:?} against AoS");
    }
}

#[test]
fn placed_fields_compile_to_ptx() {
    let mut pb = ProgramBuilder::new();
    let (x, v): (GradField<V2, 1>, GradField<V2, 1>) = (pb.field_with_grad("x", [N]), pb.field_with_grad("v", [N]));
    let loss: GradField<f64, 0> = pb.field_with_grad("loss", []);
    pb.root().dense([N]).place((&x, &v));
    pb.kernel(energy(&x, &v, &loss)).unwrap();
    let ptx = pb.build_ptx("sm_90").unwrap();
    assert!(ptx.contains(".entry energy__task0(") && ptx.contains(".entry energy_grad__task0("), "{ptx}");
}

#[test]
fn fields_that_cannot_share_a_node_are_typed_errors() {
    let layout_error = |pb: &ProgramBuilder| match pb.build() {
        Err(Error::Layout { fields, reason }) => (fields, reason),
        Err(e) => panic!("{e}"),
        Ok(_) => panic!("placed"),
    };
    // Elements of different sizes.
    let mut pb = ProgramBuilder::new();
    let (a, b): (Field<f32, 1>, Field<[f64; 2], 1>) = (pb.field("a", [N]), pb.field("b", [N]));
    pb.root().dense([N]).place((&a, &b));
    let (fields, reason) = layout_error(&pb);
    assert_eq!(fields, ["a", "b"]);
    assert!(reason.contains("@a holds f32, @b f64"), "{reason}");
    let err = pb.build().err().unwrap().to_string();
    assert!(err.starts_with("cannot place @a, @b under one layout node:"), "{err}");
    // Cells of another shape than the node's.
    let mut pb = ProgramBuilder::new();
    let (a, b): (Field<f32, 1>, Field<f32, 1>) = (pb.field("a", [N]), pb.field("b", [N + 1]));
    pb.root().dense([N]).place((&a, &b));
    assert!(layout_error(&pb).1.contains("@b has cells [9], the node [8]"));
    // Placed twice; placed against the declaration order.
    let mut pb = ProgramBuilder::new();
    let (a, b): (Field<i32, 1>, Field<f32, 1>) = (pb.field("a", [N]), pb.field("b", [N]));
    pb.layout(&a, Layout::Soa);
    pb.root().dense([N]).place((&a, &b));
    assert!(layout_error(&pb).1.contains("@a is placed twice"));
    let mut pb = ProgramBuilder::new();
    let (a, b): (Field<i32, 1>, Field<f32, 1>) = (pb.field("a", [N]), pb.field("b", [N]));
    pb.root().dense([N]).place((&b, &a));
    assert!(layout_error(&pb).1.contains("in the order they were declared (@a was declared before @b)"));
    // i32 and f32 share a node (one element size).
    let mut pb = ProgramBuilder::new();
    let (a, b): (Field<i32, 1>, Field<f32, 1>) = (pb.field("a", [N]), pb.field("b", [N]));
    pb.root().dense([N]).place((&a, &b));
    let mut p = pb.build().unwrap();
    a.fill(&mut p, 3).unwrap();
    b.fill(&mut p, 0.5).unwrap();
    assert_eq!((a.to_vec(&p).unwrap(), b.to_vec(&p).unwrap()), (vec![3; N], vec![0.5; N]));
}
