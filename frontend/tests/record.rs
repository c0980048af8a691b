//! Recordings: a simulation that overwrites its state every step, recorded
//! with `p.record()` and differentiated through checkpointing chosen at
//! backward, against finite differences; without a budget, the overwrite is
//! a typed error naming both launches.

use diffsim::prelude::*;

const N: usize = 16;
const STEPS: usize = 24;

#[kernel]
fn advance(x: &ScalarField<f64, 1>, x_new: &ScalarField<f64, 1>, w: &ScalarField<f64, 1>) {
    for i in 0..N {
        x_new[(i,)] = x[(i,)] * w[(i,)] + 0.1 * x[(i,)].sin();
    }
}

#[kernel]
fn commit(x_new: &ScalarField<f64, 1>, x: &ScalarField<f64, 1>) {
    for i in 0..N {
        x[(i,)] = x_new[(i,)];
    }
}

#[kernel]
fn square_sum(x: &ScalarField<f64, 1>, loss: &ScalarField<f64, 0>) {
    for i in 0..N {
        loss[()] += x[(i,)] * x[(i,)];
    }
}

struct Sim {
    p: Program,
    x: GradField<f64, 1>,
    w: GradField<f64, 1>,
    loss: GradField<f64, 0>,
    kernels: [Kernel<()>; 3],
}

fn sim() -> Sim {
    let mut pb = ProgramBuilder::new();
    let (x, x_new, w, loss) = (pb.field_with_grad("x", [N]), pb.field_with_grad("x_new", [N]), pb.field_with_grad("w", [N]), pb.field_with_grad("loss", []));
    let kernels = [
        pb.kernel(advance(&x, &x_new, &w)).unwrap(),
        pb.kernel(commit(&x_new, &x)).unwrap(),
        pb.kernel(square_sum(&x, &loss)).unwrap(),
    ];
    Sim { p: pb.build().unwrap(), x, w, loss, kernels }
}

impl Sim {
    fn reset(&mut self, w0: f64) {
        let xs: Vec<f64> = (0..N).map(|i| 0.1 + 0.05 * i as f64).collect();
        self.x.copy_from(&mut self.p, &xs).unwrap();
        let ws: Vec<f64> = (0..N).map(|i| 0.9 + 0.01 * i as f64).collect();
        self.w.copy_from(&mut self.p, &ws).unwrap();
        self.w.set(&mut self.p, [0], w0).unwrap();
        self.loss.zero(&mut self.p).unwrap();
    }

    /// The loss, recorded; `backward` then runs on the recording.
    fn record<R>(&mut self, w0: f64, backward: impl FnOnce(Recording<'_, Program>, &GradField<f64, 0>) -> R) -> (f64, R) {
        self.reset(w0);
        let [advance, commit, square_sum] = &self.kernels;
        let mut rec = self.p.record();
        for _ in 0..STEPS {
            rec.launch(advance, ()).unwrap();
            rec.launch(commit, ()).unwrap();
            rec.end_step();
        }
        rec.launch(square_sum, ()).unwrap();
        let loss = self.loss.get(rec.program(), []).unwrap();
        (loss, backward(rec, &self.loss))
    }
}

#[test]
fn checkpointed_backward_within_a_budget_matches_finite_differences() {
    let mut s = sim();
    let state = 2 * N * 8 + 64; // x and x_new (f64), and the 0-D loss (one 64-byte allocation)
    let budget = 5 * state;
    let (_, plan) = s.record(0.95, |rec, loss| {
        rec.backward_with(loss, &BackwardOptions { memory_budget: Some(budget), ..Default::default() }).unwrap()
    });
    let plan = plan.expect("the state is overwritten: backward checkpoints");
    assert!(plan.policy.starts_with("binomial") && plan.predicted_peak_bytes <= budget, "{plan}");
    let analytic = s.w.grad().get(&s.p, [0]).unwrap();
    let h = 1e-6;
    let numeric = (s.record(0.95 + h, |_, _| ()).0 - s.record(0.95 - h, |_, _| ()).0) / (2.0 * h);
    assert!(analytic.abs() > 1e-3, "{analytic}");
    assert!((analytic - numeric).abs() <= 1e-6 * numeric.abs(), "{analytic} vs {numeric}");
}

#[test]
fn overwritten_state_without_a_budget_is_an_error() {
    let mut s = sim();
    let (_, err) = s.record(0.95, |rec, loss| rec.backward(loss).unwrap_err());
    let Error::Overwrite { reader, writer, field } = &err else { panic!("{err}") };
    assert_eq!((reader.as_str(), writer.as_str(), field.as_str()), ("launch 0 (advance[])", "launch 1 (commit[])", "x"));
}
