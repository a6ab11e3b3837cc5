"""A high-precision reference optimum of the collapsed problem with prototypes, written from scratch in mpmath.

One full batch of class ``counts`` C, ``n_w`` copies of each prototype (rows F of G_* = F F^T, rank r), temperature
tau.  The class means are unit rows u_a of U [k, r] in the prototypes' span (M = U U^T, X = U F^T), which is where
the optimum lies in the cases tried (the float64 solver's certified start has rank r: checked by the caller).  The
loss, with s = inner product / tau, sums for each class a

    C_a [log(sum_c (C_c - [c = a]) e^{M_ac/tau} + n_w sum_c e^{X_ac/tau}) - ((C_a - 1) M_aa + n_w X_aa) / (tau P_a)]
    n_w [log(sum_c C_c e^{X_ca/tau} + sum_c (n_w - [c = a]) e^{G_ac/tau}) - (C_a X_aa + (n_w - 1)) / (tau Q_a)]

(P_a = C_a - 1 + n_w, Q_a = C_a + n_w - 1; the second line with prototype anchors only).  Newton on the KKT system
grad_U f = diag(nu) U, |u_a| = 1 at ``DPS`` digits (the Jacobian by central differences of the analytic
residual), continued along n_w from a float64 start, converged to a residual below 1e-40.
"""

from __future__ import annotations

import mpmath as mp
import numpy as np

DPS = 60


def _factor(g_star: np.ndarray) -> mp.matrix:
    """F [k, r] with F F^T = G_* (eigen-factor, eigenvalues above 1e-12 kept), in mpmath."""
    g = mp.matrix(g_star.tolist())
    lam, vecs = mp.eigsy(g)
    keep = [i for i in range(g.rows) if lam[i] > mp.mpf("1e-12")]
    f = mp.matrix(g.rows, len(keep))
    for j, i in enumerate(keep):
        for a in range(g.rows):
            f[a, j] = vecs[a, i] * mp.sqrt(lam[i])
    return f


def _residual(z, counts, tau, g, f, n_w, anchors) -> mp.matrix:
    k, r = f.rows, f.cols
    u = mp.matrix(k, r)
    for a in range(k):
        for i in range(r):
            u[a, i] = z[a * r + i]
    nu = [z[k * r + a] for a in range(k)]
    m = u * u.T
    x = u * f.T
    gm, gx = mp.matrix(k, k), mp.matrix(k, k)
    for a in range(k):
        ca = counts[a]
        if ca >= 1 and ca - 1 + n_w > 0:
            em = [(counts[c] - (c == a)) * mp.exp(m[a, c] / tau) for c in range(k)]
            ex = [n_w * mp.exp(x[a, c] / tau) for c in range(k)]
            s = mp.fsum(em) + mp.fsum(ex)
            for c in range(k):
                gm[a, c] += ca * em[c] / (tau * s)
                gx[a, c] += ca * ex[c] / (tau * s)
            gm[a, a] -= ca * (ca - 1) / (tau * (ca - 1 + n_w))
            gx[a, a] -= ca * n_w / (tau * (ca - 1 + n_w))
        if anchors and n_w > 0:
            exs = [counts[c] * mp.exp(x[c, a] / tau) for c in range(k)]
            t = mp.fsum(exs) + mp.fsum((n_w - (c == a)) * mp.exp(g[a, c] / tau) for c in range(k))
            for c in range(k):
                gx[c, a] += n_w * exs[c] / (tau * t)
            gx[a, a] -= n_w * ca / (tau * (ca + n_w - 1))
    grad = (gm + gm.T) * u + gx * f
    out = mp.matrix(k * r + k, 1)
    for a in range(k):
        for i in range(r):
            out[a * r + i] = grad[a, i] - nu[a] * u[a, i]
        out[k * r + a] = mp.fsum(u[a, i] ** 2 for i in range(r)) - 1
    return out


def _newton(z, args, tol=mp.mpf("1e-40"), max_iter=40) -> mp.matrix:
    h = mp.mpf(10) ** (-DPS // 2 + 5)
    for _ in range(max_iter):
        res = _residual(z, *args)
        if mp.norm(res) < tol:
            return z
        jac = mp.matrix(len(z), len(z))
        for j in range(len(z)):
            zp, zm = z.copy(), z.copy()
            zp[j] += h
            zm[j] -= h
            col = (_residual(zp, *args) - _residual(zm, *args)) / (2 * h)
            for i in range(len(z)):
                jac[i, j] = col[i]
        z = z - mp.lu_solve(jac, res)
    raise RuntimeError(f"reference Newton did not converge (residual {mp.nstr(mp.norm(_residual(z, *args)), 3)})")


def reference_path(counts, tau: float, g_star: np.ndarray, cross0: np.ndarray, n_w0: float, targets,
                   anchors: bool = True) -> dict[float, tuple[np.ndarray, np.ndarray]]:
    """{n_w: (M, X)} at each of ``targets`` (increasing, >= n_w0), continued from a float64 optimum whose cross-Gram
    ``cross0`` = [mu_a . w_c] is taken at ``n_w0`` (decades in between)."""
    with mp.workdps(DPS):
        f = _factor(np.asarray(g_star, dtype=float))
        g = mp.matrix(np.asarray(g_star, dtype=float).tolist())
        k, r = f.rows, f.cols
        ftf_inv = mp.inverse(f.T * f)
        u = mp.matrix(np.asarray(cross0, dtype=float).tolist()) * f * ftf_inv
        z = mp.matrix(k * r + k, 1)
        for a in range(k):
            norm = mp.sqrt(mp.fsum(u[a, i] ** 2 for i in range(r)))
            for i in range(r):
                z[a * r + i] = u[a, i] / norm
        # nu from the first residual with nu = 0: grad_u f = nu u on unit rows
        res = _residual(z, counts, mp.mpf(tau), g, f, mp.mpf(n_w0), anchors)
        for a in range(k):
            z[k * r + a] = mp.fsum(res[a * r + i] * z[a * r + i] for i in range(r))
        out = {}
        levels = sorted({float(n_w0), *[float(t) for t in targets]})
        n_prev = levels[0]
        for target in levels:
            steps = max(1, int(np.ceil(np.log10(target / n_prev))))
            for n in np.geomspace(n_prev, target, steps + 1)[1:] if target > n_prev else [target]:
                z = _newton(z, (counts, mp.mpf(tau), g, f, mp.mpf(n), anchors))
            n_prev = target
            u = mp.matrix(k, r)
            for a in range(k):
                for i in range(r):
                    u[a, i] = z[a * r + i]
            if target in [float(t) for t in targets]:
                out[target] = (np.array((u * u.T).tolist(), dtype=float), np.array((u * f.T).tolist(), dtype=float))
        return out
