//! Matrix decompositions in the kernel language, as Taichi has them: polar
//! decompositions ([`Mat2::polar`], [`Mat3::polar`], Taichi's
//! `ti.polar_decompose`) and singular value decompositions ([`Mat2::svd`],
//! [`Mat3::svd`], Taichi's `ti.svd`).
//!
//! They are written with ordinary kernel ops: a fixed number of unrolled
//! steps and `select` instead of branches, so `ds-autodiff` differentiates
//! through them like any other kernel code. Every division by a length that
//! may be zero is guarded (a zero length is replaced by 1 and its result by
//! the identity's), so the zero matrix and rank-deficient matrices give
//! finite values, and the zero matrix finite gradients.
//!
//! Conventions (Taichi's): A = U Σ V^T with U and V rotations (det +1) and
//! Σ diagonal, σ0 >= σ1 >= |σ2| (2x2: σ0 >= |σ1|); the last singular value
//! takes the sign of det A, so it is negative for a reflection. The polar
//! decomposition is A = R S with R = U V^T a rotation and S = V Σ V^T
//! symmetric, positive semi-definite only where det A >= 0. Where singular
//! values repeat, U and V are not unique and have no derivative (nor do R
//! and S where two singular values sum to zero): gradients there are
//! whatever the unrolled steps give, as in Taichi.
//!
//! The 3x3 SVD follows McAdams et al. 2011, "Computing the singular value
//! decomposition of 3x3 matrices with minimal branching and elementary
//! floating point operations" (the algorithm behind Taichi's `ti.svd`):
//! cyclic Jacobi sweeps on A^T A (a fixed count) give V, V's columns are
//! sorted by singular value, and a QR factorization of A V by Givens
//! rotations gives U and Σ (R's diagonal). Unlike the paper's approximate
//! quaternion rotations, each rotation here is exact, so Jacobi converges
//! quadratically: after 4 sweeps in f32 and 6 in f64 the values, and with
//! them their derivatives, are converged to rounding error.

use crate::builder::{Expr, Ty};
use crate::value::{Mat2, Mat3, Matrix, Vector, ge, gt, lt, select};

/// The index pairs of the 3x3 off-diagonal entries, in the order of a Jacobi
/// sweep, of a sorting network, and of the QR's eliminations: (0, 1), (0, 2), (1, 2).
const PAIRS: [(usize, usize); 3] = [(0, 1), (0, 2), (1, 2)];

/// Jacobi sweeps in [`Mat3::svd`]: enough for exact rotations to converge
/// in the type's precision.
fn jacobi_sweeps(ty: Ty) -> usize {
    if ty == Ty::F32 { 4 } else { 6 }
}

/// `(x > tiny, sqrt(x))`, tiny the type's smallest normal number, with 1
/// for the root where x <= tiny: a divisor that is never zero and whose
/// gradient stays finite at x = 0.
fn guarded_sqrt(x: Expr) -> (Expr, Expr) {
    let tiny = if x.ty() == Ty::F32 { f32::MIN_POSITIVE as f64 } else { f64::MIN_POSITIVE };
    let positive = gt(x, tiny);
    (positive, select(positive, x, 1.0).sqrt())
}

/// The Givens rotation `(c, s)` that turns `(a, b)` into `(|(a, b)|, 0)`:
/// c a + s b = |(a, b)| and c b - s a = 0; `(1, 0)` where both are zero.
fn givens(a: Expr, b: Expr) -> (Expr, Expr) {
    let (nonzero, r) = guarded_sqrt(a * a + b * b);
    (select(nonzero, a / r, 1.0), select(nonzero, b / r, 0.0))
}

/// The Jacobi rotation `(c, s)` that diagonalizes the symmetric
/// [[app, apq], [apq, aqq]]: with J = [[c, s], [-s, c]], J^T A J is diagonal.
/// It is the smaller of the two (|angle| <= pi/4): t = s / c solves
/// t^2 + 2 tau t - 1 = 0 with tau = (aqq - app) / (2 apq), written without
/// dividing by apq; `(1, 0)` where apq = 0 and app = aqq.
fn jacobi(app: Expr, apq: Expr, aqq: Expr) -> (Expr, Expr) {
    let d = aqq - app;
    let (_, root) = guarded_sqrt(d * d + 4.0 * apq * apq);
    let t = 2.0 * apq / (d.abs() + root);
    let t = select(ge(d, 0.0), t, -t);
    let c = (1.0 + t * t).rsqrt();
    (c, t * c)
}

/// `m G`, where G is the identity but for G[p][p] = G[q][q] = c and
/// G[p][q] = s = -G[q][p]: columns p and q rotated.
fn rotate_columns<const R: usize, const C: usize>(m: &Matrix<R, C>, p: usize, q: usize, c: Expr, s: Expr) -> Matrix<R, C> {
    let mut out = *m;
    for row in 0..R {
        let (x, y) = (m.0[row][p], m.0[row][q]);
        out.0[row][p] = c * x - s * y;
        out.0[row][q] = s * x + c * y;
    }
    out
}

/// `G^T m`, G as in [`rotate_columns`]: rows p and q rotated.
fn rotate_rows<const R: usize, const C: usize>(m: &Matrix<R, C>, p: usize, q: usize, c: Expr, s: Expr) -> Matrix<R, C> {
    rotate_columns(&m.transpose(), p, q, c, s).transpose()
}

/// Where `swap` holds, column p replaced by minus column q and column q by
/// column p (a rotation stays a rotation): Taichi's reordering of singular
/// vectors.
fn swap_columns<const N: usize>(m: &Matrix<N, N>, p: usize, q: usize, swap: Expr) -> Matrix<N, N> {
    let mut out = *m;
    for row in 0..N {
        let (x, y) = (m.0[row][p], m.0[row][q]);
        out.0[row][p] = select(swap, -y, x);
        out.0[row][q] = select(swap, x, y);
    }
    out
}

impl Mat2 {
    /// Polar decomposition A = R S (R a rotation, S symmetric), as Taichi's
    /// `ti.polar_decompose` for 2x2: R from the angle atan2(a10 - a01, a00 + a11),
    /// S = R^T A. For det A < 0, R is still a rotation and S symmetric but not
    /// positive semi-definite (Taichi's decomposition). The zero matrix (no
    /// angle) gives (I, 0), with finite gradients.
    pub fn polar(&self) -> (Mat2, Mat2) {
        let m = &self.0;
        let (c, s) = givens(m[0][0] + m[1][1], m[1][0] - m[0][1]);
        let r = Matrix([[c, -s], [s, c]]);
        let sym = r.transpose().matmul(self);
        (r, sym)
    }

    /// Singular value decomposition A = U Σ V^T, as Taichi's `svd2d`: S of
    /// the polar decomposition A = R S diagonalized by one Jacobi rotation
    /// V, the two sorted so that σ0 >= σ1 (σ1 < 0 where det A < 0), U = R V.
    /// U and V are rotations; Σ is returned as a diagonal matrix. Unlike
    /// Taichi, the rotation is also computed where |S01| < 1e-5 (exact
    /// rather than skipped).
    pub fn svd(&self) -> (Mat2, Mat2, Mat2) {
        let (r, sym) = self.polar();
        let (c, s) = jacobi(sym.0[0][0], sym.0[0][1], sym.0[1][1]);
        let diagonal = rotate_rows(&rotate_columns(&sym, 0, 1, c, s), 0, 1, c, s);
        let (s0, s1) = (diagonal.0[0][0], diagonal.0[1][1]);
        let swap = lt(s0, s1);
        let v = swap_columns(&Matrix([[c, s], [-s, c]]), 0, 1, swap);
        let sigma = Mat2::diag(Vector([select(swap, s1, s0), select(swap, s0, s1)]));
        (r.matmul(&v), sigma, v)
    }
}

impl Mat3 {
    /// Singular value decomposition A = U Σ V^T (Taichi's `ti.svd`): U and V
    /// rotations, Σ diagonal (returned as a matrix) with σ0 >= σ1 >= |σ2|
    /// and σ2 of the sign of det A. See the module doc for the algorithm
    /// and for what happens at repeated singular values.
    pub fn svd(&self) -> (Mat3, Mat3, Mat3) {
        let ty = self.0[0][0].ty();
        // V: Jacobi on the symmetric A^T A, accumulating the rotations.
        let mut ata = self.transpose().matmul(self);
        let mut v = Mat3::identity(ty);
        for _ in 0..jacobi_sweeps(ty) {
            for (p, q) in PAIRS {
                let (c, s) = jacobi(ata.0[p][p], ata.0[p][q], ata.0[q][q]);
                ata = rotate_rows(&rotate_columns(&ata, p, q, c, s), p, q, c, s);
                v = rotate_columns(&v, p, q, c, s);
            }
        }
        // V's columns by descending squared singular value (A^T A's diagonal).
        let mut key = [ata.0[0][0], ata.0[1][1], ata.0[2][2]];
        for (p, q) in PAIRS {
            let swap = lt(key[p], key[q]);
            v = swap_columns(&v, p, q, swap);
            (key[p], key[q]) = (select(swap, key[q], key[p]), select(swap, key[p], key[q]));
        }
        // A V = U R by Givens rotations zeroing (1, 0), (2, 0), (2, 1): the
        // columns of A V are orthogonal, so R is diagonal; R's first two
        // diagonal entries come out >= 0, the last with the sign of det A.
        let mut r = self.matmul(&v);
        let mut u = Mat3::identity(ty);
        for (col, row) in PAIRS {
            let (c, s) = givens(r.0[col][col], r.0[row][col]);
            r = rotate_rows(&r, col, row, c, -s);
            u = rotate_columns(&u, col, row, c, -s);
        }
        (u, Mat3::diag(Vector(std::array::from_fn(|i| r.0[i][i]))), v)
    }

    /// Polar decomposition A = R S (Taichi's `polar_decompose3d`): R = U V^T
    /// a rotation, S = V Σ V^T symmetric, from [`Mat3::svd`]. For det A < 0,
    /// S is not positive semi-definite (its smallest eigenvalue is negative).
    /// The zero matrix gives (I, 0), with finite gradients.
    pub fn polar(&self) -> (Mat3, Mat3) {
        let (u, sigma, v) = self.svd();
        let vt = v.transpose();
        (u.matmul(&vt), v.matmul(&sigma).matmul(&vt))
    }
}
