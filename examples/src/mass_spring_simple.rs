//! Paper sec. 2.2, Fig. 2: three masses joined by three springs; gradient
//! descent on the rest lengths so the triangle's area ends at 0.1.
//! Scene facts from SIMULATORS.md: stiffness 10, damping 20, dt 0.001, 1024
//! steps, a wall at x = 0.4 with friction 0.01, learning rate 5, 25 iterations.
//! The kernels are Rust functions compiled by `#[kernel]` (the paper's three,
//! no longer than its Python); state is stored per time step (x[t, i]), so the
//! Tape replays their gradients in reverse without checkpointing.

use crate::report::{Outcome, Reporter, Stopwatch};
use crate::{RunError, RunOptions, Simulation, plot};
use diffsim::prelude::*;

pub const STEPS: usize = 1024;
const LEARNING_RATE: f32 = 5.0;
const ITERATIONS: usize = 25;
pub const INITIAL_X: [[f32; 2]; 3] = [[0.3, 0.5], [0.3, 0.4], [0.4, 0.4]];
const SPRINGS: [(i32, i32); 3] = [(0, 1), (1, 2), (2, 0)];
/// The same kernels written directly in the ds dialect (a cross-check).
const REFERENCE: &str = include_str!("../kernels/mass_spring_simple.mlir");

type Points = GradField<[f32; 2], 2>;

// --- paper sec. 2.2 kernels (kept together: their line count is checked) ---
#[kernel]
fn apply_spring_force(x: &Points, force: &Points, l: &ScalarField<f32, 1>, a: &ScalarField<i32, 1>, b: &ScalarField<i32, 1>, t: usize) {
    for i in 0..3usize {
        let (ia, ib) = (a[(i,)] as usize, b[(i,)] as usize);
        let dist = x[(t - 1, ia)] - x[(t - 1, ib)];
        let length = dist.norm() + 1e-4;
        let f = dist * ((length - l[(i,)]) * 10.0 / length);
        force[(t, ia)] -= f;
        force[(t, ib)] += f;
    }
}

#[kernel]
fn time_integrate(x: &Points, v: &Points, force: &Points, t: usize) {
    for i in 0..3usize {
        let s = (-0.001f64 * 20.0).exp() as f32;
        let mut nv = v[(t - 1, i)] * s + force[(t, i)] * 0.001;
        let nx = x[(t - 1, i)] + nv * 0.001;
        if nx.at(0) > 0.4 && nv.at(0) > 0.0 {
            let shrink = nv.at(1).abs().min(nv.at(0) * 0.01);
            let vy = select(nv.at(1) > 0.0, nv.at(1) - shrink, nv.at(1) + shrink);
            nv = Vector([nv.at(0) * 0.0, vy]);
        }
        v[(t, i)] = nv;
        x[(t, i)] = nx;
    }
}

#[kernel]
fn compute_loss(x: &Points, loss: &ScalarField<f32, 0>, t: usize) {
    let area = (0.5 * (x[(t, 0usize)] - x[(t, 1usize)]).cross(&(x[(t, 0usize)] - x[(t, 2usize)]))).abs();
    loss[()] = (area - 0.1) * (area - 0.1);
}
// --- end of the paper's kernels ---

/// The simulation's fields and kernels: the handles work on any program built
/// from them (CPU or CUDA) and on the hand-written reference module.
pub struct MassSpring {
    pub x: Points,
    v: Points,
    force: Points,
    pub rest_length: GradField<f32, 1>,
    spring_a: Field<i32, 1>,
    spring_b: Field<i32, 1>,
    pub loss: GradField<f32, 0>,
    apply_spring_force: Kernel<usize>,
    time_integrate: Kernel<usize>,
    compute_loss: Kernel<usize>,
}

impl Simulation for MassSpring {
    fn declare(pb: &mut ProgramBuilder, _: &RunOptions) -> Result<MassSpring, RunError> {
        Ok(MassSpring::new(pb)?)
    }

    fn params(&self) -> Vec<&str> {
        vec![self.rest_length.name()]
    }

    fn init<B: Backend>(&self, p: &mut B, _: &RunOptions) -> Result<(), RunError> {
        Ok(self.init(p)?)
    }

    fn run<B: Backend>(&self, p: &mut B, opts: &RunOptions, report: &mut Reporter) -> Result<Outcome, RunError> {
        let mut out = Outcome { losses: optimize(p, self, opts.iters.unwrap_or(ITERATIONS), report)?, ..Default::default() };
        out.final_loss = self.forward(p, STEPS, &INITIAL_X)? as f64;
        out.results.push(("rest lengths".into(), format!("{:.4?}", self.rest_length.to_vec(p)?)));
        if opts.pictures {
            out.files.push(plot::loss_curve(&opts.out.join("loss.png"), "mass_spring_simple: (area - 0.1)^2", &out.losses)?);
            let frame = |t: usize| -> Result<Vec<plot::Shape>, Error> {
                let x: Vec<(f64, f64)> = (0..3).map(|i| self.x.get(p, [t, i]).map(|[x, y]| (x as f64, y as f64))).collect::<Result<_, _>>()?;
                let wall = plot::Shape::Segment { from: (0.4, 0.0), to: (0.4, 1.0), color: plot::GREY, width: 2 };
                let springs = SPRINGS.map(|(a, b)| plot::Shape::Segment { from: x[a as usize], to: x[b as usize], color: plot::BLUE, width: 2 });
                let masses = x.iter().map(|&center| plot::Shape::Circle { center, radius: 0.006, color: plot::RED });
                Ok([wall].into_iter().chain(springs).chain(masses).collect())
            };
            let frames = (0..STEPS).step_by(16).chain([STEPS - 1]).map(frame).collect::<Result<_, _>>()?;
            let anim = plot::Animation { title: "mass_spring_simple, final iteration".into(), x_range: (0.2, 0.5), y_range: (0.3, 0.6), frames };
            out.files.extend(plot::animate(&opts.out, "motion", &anim, 40, 4)?);
        }
        Ok(out)
    }
}

impl MassSpring {
    fn new(pb: &mut ProgramBuilder) -> Result<MassSpring, Error> {
        let (x, v, force) = (pb.field_with_grad("x", [STEPS, 3]), pb.field_with_grad("v", [STEPS, 3]), pb.field_with_grad("force", [STEPS, 3]));
        let rest_length = pb.field_with_grad("spring_length", [3]);
        let (spring_a, spring_b) = (pb.field("spring_a", [3]), pb.field("spring_b", [3]));
        let loss = pb.field_with_grad("loss", []);
        Ok(MassSpring {
            apply_spring_force: pb.kernel(apply_spring_force(&x, &force, &rest_length, &spring_a, &spring_b))?,
            time_integrate: pb.kernel(time_integrate(&x, &v, &force))?,
            compute_loss: pb.kernel(compute_loss(&x, &loss))?,
            x,
            v,
            force,
            rest_length,
            spring_a,
            spring_b,
            loss,
        })
    }

    /// The springs and their initial rest lengths.
    pub fn init<B: Backend>(&self, p: &mut B) -> Result<(), Error> {
        self.spring_a.copy_from(p, &SPRINGS.map(|s| s.0))?;
        self.spring_b.copy_from(p, &SPRINGS.map(|s| s.1))?;
        self.rest_length.copy_from(p, &[0.1, 0.1, 0.1 * std::f32::consts::SQRT_2])
    }

    /// Clears state (keeping the rest lengths) and sets the initial positions.
    fn reset<B: Backend>(&self, p: &mut B, initial: &[[f32; 2]; 3]) -> Result<(), Error> {
        for f in [&self.x, &self.v, &self.force] {
            f.zero(p)?;
        }
        self.loss.zero(p)?;
        (0..3).try_for_each(|i| self.x.set(p, [0, i], initial[i]))
    }

    /// The paper's time loop, `launch` running (or recording) each kernel.
    fn simulate(&self, steps: usize, mut launch: impl FnMut(&Kernel<usize>, usize) -> Result<(), Error>) -> Result<(), Error> {
        for t in 1..steps {
            launch(&self.apply_spring_force, t)?;
            launch(&self.time_integrate, t)?;
        }
        launch(&self.compute_loss, steps - 1)
    }

    /// The loss after `steps` steps from `initial`.
    pub fn forward<B: Backend>(&self, p: &mut B, steps: usize, initial: &[[f32; 2]; 3]) -> Result<f32, Error> {
        self.reset(p, initial)?;
        self.simulate(steps, |k, t| k.launch(p, t))?;
        self.loss.get(p, [])
    }

    /// The loss and dL/d(rest lengths), recorded and replayed in reverse.
    pub fn loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize, initial: &[[f32; 2]; 3]) -> Result<(f32, Vec<f32>), Error> {
        self.timed_loss_and_grad(p, steps, initial).map(|(loss, grad, _)| (loss, grad))
    }

    /// [`Self::loss_and_grad`] with the forward and backward milliseconds.
    fn timed_loss_and_grad<B: Backend>(&self, p: &mut B, steps: usize, initial: &[[f32; 2]; 3]) -> Result<(f32, Vec<f32>, [f64; 2]), Error> {
        let mut clock = Stopwatch::start();
        self.reset(p, initial)?;
        let mut rec = p.record_without_state();
        self.simulate(steps, |k, t| rec.launch(k, t))?;
        let loss = self.loss.get(rec.program(), [])?;
        let fwd_ms = clock.lap();
        rec.backward(&self.loss)?;
        let grad = self.rest_length.grad().to_vec(p)?;
        Ok((loss, grad, [fwd_ms, clock.lap()]))
    }
}

/// The program from the `#[kernel]` functions above, with its handles.
pub fn program() -> Result<(Program, MassSpring), Error> {
    let mut pb = ProgramBuilder::new();
    let sim = MassSpring::new(&mut pb)?;
    let mut p = pb.build()?;
    sim.init(&mut p)?;
    Ok((p, sim))
}

/// The same program from the hand-written ds kernels (the handles of
/// [`program`] apply to it).
pub fn reference_program(sim: &MassSpring) -> Result<Program, Error> {
    let mut p = crate::compile("examples/kernels/mass_spring_simple.mlir", REFERENCE)?;
    sim.init(&mut p)?;
    Ok(p)
}

/// The optimization of the paper's sec. 2.2 on any backend: gradient descent
/// on the rest lengths; returns the loss per iteration.
pub fn optimize<B: Backend>(p: &mut B, sim: &MassSpring, iters: usize, report: &mut Reporter) -> Result<Vec<f64>, Error> {
    let mut losses = Vec::new();
    report.start(iters);
    for iter in 0..iters {
        let (loss, grad, [fwd_ms, bwd_ms]) = sim.timed_loss_and_grad(p, STEPS, &INITIAL_X)?;
        let lengths: Vec<f32> = sim.rest_length.to_vec(p)?.iter().zip(&grad).map(|(l, g)| l - LEARNING_RATE * g).collect();
        sim.rest_length.copy_from(p, &lengths)?;
        losses.push(loss as f64);
        report.iteration(iter, loss as f64, fwd_ms, bwd_ms);
    }
    report.finish();
    Ok(losses)
}
