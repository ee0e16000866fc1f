// AssemblyScript source of the core's float64 kernels, compiled to WebAssembly with 128-bit SIMD (f64x2) by
// `npm run build:wasm` into src/core/kernels-wasm.ts. Every function works on float64 arrays in the module's memory,
// row-major, addressed by byte offsets. src/core/kernels.ts holds the same algorithms in TypeScript (the fallback when
// WebAssembly is unavailable) and the tests check that both agree.

/** Σ_j a[j]·b[j] for j < len, two lanes at a time. */
@inline
function dot(a: usize, b: usize, len: i32): f64 {
  let acc = f64x2.splat(0);
  let j: i32 = 0;
  for (; j + 2 <= len; j += 2) {
    const o = (<usize>j) << 3;
    acc = f64x2.add(acc, f64x2.mul(v128.load(a + o), v128.load(b + o)));
  }
  let s = f64x2.extract_lane(acc, 0) + f64x2.extract_lane(acc, 1);
  for (; j < len; j++) s += load<f64>(a + ((<usize>j) << 3)) * load<f64>(b + ((<usize>j) << 3));
  return s;
}

/** a[j] −= s·b[j] for j < len. */
@inline
function axpyMinus(a: usize, s: f64, b: usize, len: i32): void {
  const sv = f64x2.splat(s);
  let j: i32 = 0;
  for (; j + 2 <= len; j += 2) {
    const o = (<usize>j) << 3;
    v128.store(a + o, f64x2.sub(v128.load(a + o), f64x2.mul(sv, v128.load(b + o))));
  }
  for (; j < len; j++) {
    const o = (<usize>j) << 3;
    store<f64>(a + o, load<f64>(a + o) - s * load<f64>(b + o));
  }
}

/**
 * Householder reduction of the symmetric n×n matrix at `A` (full storage, overwritten) to tridiagonal form.
 * Reflector k (H = I − 2vvᵀ on indices k+1…n−1, ‖v‖ = 1, or v = 0 for H = I) is stored in row k of `R`.
 * The diagonal goes to `diag`, the sub-diagonal to `off`; `p` is n values of scratch.
 */
export function tridiagonalize(A: usize, R: usize, n: i32, diag: usize, off: usize, p: usize): void {
  const rowBytes = (<usize>n) << 3;
  for (let k: i32 = 0; k < n - 2; k++) {
    const m = n - k - 1;
    const v = R + (<usize>k) * rowBytes;
    memory.fill(v, 0, (<usize>m) << 3);
    let scale: f64 = 0;
    for (let i: i32 = 0; i < m; i++) scale = max(scale, abs(load<f64>(A + (<usize>(k + 1 + i)) * rowBytes + ((<usize>k) << 3))));
    if (scale == 0) continue;
    let norm2: f64 = 0;
    for (let i: i32 = 0; i < m; i++) {
      const x = load<f64>(A + (<usize>(k + 1 + i)) * rowBytes + ((<usize>k) << 3)) / scale;
      store<f64>(v + ((<usize>i) << 3), x);
      norm2 += x * x;
    }
    const v0 = load<f64>(v);
    const alphaScaled = (v0 >= 0 ? -1.0 : 1.0) * sqrt(norm2);
    store<f64>(v, v0 - alphaScaled);
    const vn = sqrt(dot(v, v, m));
    if (vn == 0) {
      memory.fill(v, 0, (<usize>m) << 3);
      continue;
    }
    for (let i: i32 = 0; i < m; i++) store<f64>(v + ((<usize>i) << 3), load<f64>(v + ((<usize>i) << 3)) / vn);

    // p = A_sub·v, K = vᵀp, q = p − K·v, A_sub −= 2(vqᵀ + qvᵀ)
    const o = k + 1;
    let K: f64 = 0;
    for (let i: i32 = 0; i < m; i++) {
      const s = dot(A + (<usize>(o + i)) * rowBytes + ((<usize>o) << 3), v, m);
      store<f64>(p + ((<usize>i) << 3), s);
      K += load<f64>(v + ((<usize>i) << 3)) * s;
    }
    for (let i: i32 = 0; i < m; i++) {
      store<f64>(p + ((<usize>i) << 3), load<f64>(p + ((<usize>i) << 3)) - K * load<f64>(v + ((<usize>i) << 3)));
    }
    for (let i: i32 = 0; i < m; i++) {
      const row = A + (<usize>(o + i)) * rowBytes + ((<usize>o) << 3);
      const vi = f64x2.splat(2 * load<f64>(v + ((<usize>i) << 3)));
      const qi = f64x2.splat(2 * load<f64>(p + ((<usize>i) << 3)));
      let j: i32 = 0;
      for (; j + 2 <= m; j += 2) {
        const b = (<usize>j) << 3;
        const upd = f64x2.add(f64x2.mul(vi, v128.load(p + b)), f64x2.mul(qi, v128.load(v + b)));
        v128.store(row + b, f64x2.sub(v128.load(row + b), upd));
      }
      for (; j < m; j++) {
        const b = (<usize>j) << 3;
        store<f64>(row + b, load<f64>(row + b) - (f64x2.extract_lane(vi, 0) * load<f64>(p + b) + f64x2.extract_lane(qi, 0) * load<f64>(v + b)));
      }
    }
    store<f64>(A + (<usize>(k + 1)) * rowBytes + ((<usize>k) << 3), alphaScaled * scale);
    store<f64>(A + (<usize>k) * rowBytes + ((<usize>(k + 1)) << 3), alphaScaled * scale);
  }
  for (let i: i32 = 0; i < n; i++) store<f64>(diag + ((<usize>i) << 3), load<f64>(A + (<usize>i) * rowBytes + ((<usize>i) << 3)));
  for (let i: i32 = 0; i < n - 1; i++) store<f64>(off + ((<usize>i) << 3), load<f64>(A + (<usize>(i + 1)) * rowBytes + ((<usize>i) << 3)));
}

/**
 * Eᵀ = H_{n−3}···H_0 from the reflectors in the rows of `R`, accumulated backward into `E` (n×n, overwritten):
 * before H_k is applied the product is the identity outside its trailing block.
 */
export function accumulateReflectors(R: usize, E: usize, n: i32): void {
  const rowBytes = (<usize>n) << 3;
  memory.fill(E, 0, (<usize>n) * rowBytes);
  for (let i: i32 = 0; i < n; i++) store<f64>(E + (<usize>i) * rowBytes + ((<usize>i) << 3), 1);
  for (let k: i32 = n - 3; k >= 0; k--) {
    const v = R + (<usize>k) * rowBytes;
    const o = k + 1, m = n - k - 1;
    for (let i: i32 = o; i < n; i++) {
      const row = E + (<usize>i) * rowBytes + ((<usize>o) << 3);
      const s = dot(row, v, m);
      if (s == 0) continue;
      axpyMinus(row, 2 * s, v, m);
    }
  }
}

/**
 * Applies logged QR sweeps to the rows of E (n×n) in order. Sweep s mixes rows lo…hi (i32 pairs at `sweeps`), its
 * rotations' cosines and sines consecutive at `cosines` / `sines`. Column blocks are independent and each goes through
 * every sweep while in cache; within a sweep the row that the next rotation reads is carried in `carry` (32 values).
 */
export function applySweeps(E: usize, n: i32, count: i32, sweeps: usize, cosines: usize, sines: usize, carry: usize): void {
  const B: i32 = 32;
  const rowBytes = (<usize>n) << 3;
  for (let j0: i32 = 0; j0 < n; j0 += B) {
    const w: i32 = min(B, n - j0);
    const wBytes = (<usize>w) << 3;
    let rot: usize = 0;
    for (let s: i32 = 0; s < count; s++) {
      const lo = load<i32>(sweeps + ((<usize>s) << 3));
      const hi = load<i32>(sweeps + ((<usize>s) << 3) + 4);
      let r0 = E + (<usize>lo) * rowBytes + ((<usize>j0) << 3);
      memory.copy(carry, r0, wBytes);
      for (let k: i32 = 0; k < hi - lo; k++) {
        const c = load<f64>(cosines + ((rot + <usize>k) << 3)), sn = load<f64>(sines + ((rot + <usize>k) << 3));
        const cs2 = f64x2.splat(c), sn2 = f64x2.splat(sn);
        const r1 = r0 + rowBytes;
        let j: i32 = 0;
        for (; j + 2 <= w; j += 2) {
          const b = (<usize>j) << 3;
          const t1 = v128.load(carry + b), t2 = v128.load(r1 + b);
          v128.store(r0 + b, f64x2.add(f64x2.mul(cs2, t1), f64x2.mul(sn2, t2)));
          v128.store(carry + b, f64x2.sub(f64x2.mul(cs2, t2), f64x2.mul(sn2, t1)));
        }
        for (; j < w; j++) {
          const b = (<usize>j) << 3;
          const t1 = load<f64>(carry + b), t2 = load<f64>(r1 + b);
          store<f64>(r0 + b, c * t1 + sn * t2);
          store<f64>(carry + b, c * t2 - sn * t1);
        }
        r0 = r1;
      }
      memory.copy(r0, carry, wBytes);
      rot += <usize>(hi - lo);
    }
  }
}

/**
 * G += Σ_i z_iᵀz_i over `rows` rows of Z (rows×d at `Z`), upper triangle only (j ≥ i), four rows per pass over G.
 */
export function addGramUpper(G: usize, Z: usize, rows: i32, d: i32): void {
  const rowBytes = (<usize>d) << 3;
  let r: i32 = 0;
  for (; r + 4 <= rows; r += 4) {
    const z0 = Z + (<usize>r) * rowBytes, z1 = z0 + rowBytes, z2 = z1 + rowBytes, z3 = z2 + rowBytes;
    for (let a: i32 = 0; a < d; a++) {
      const ao = (<usize>a) << 3;
      const x0 = load<f64>(z0 + ao), x1 = load<f64>(z1 + ao), x2 = load<f64>(z2 + ao), x3 = load<f64>(z3 + ao);
      if (x0 == 0 && x1 == 0 && x2 == 0 && x3 == 0) continue;
      const s0 = f64x2.splat(x0), s1 = f64x2.splat(x1), s2 = f64x2.splat(x2), s3 = f64x2.splat(x3);
      const g = G + (<usize>a) * rowBytes;
      let b: i32 = a;
      for (; b + 2 <= d; b += 2) {
        const o = (<usize>b) << 3;
        let acc = v128.load(g + o);
        acc = f64x2.add(acc, f64x2.mul(s0, v128.load(z0 + o)));
        acc = f64x2.add(acc, f64x2.mul(s1, v128.load(z1 + o)));
        acc = f64x2.add(acc, f64x2.mul(s2, v128.load(z2 + o)));
        acc = f64x2.add(acc, f64x2.mul(s3, v128.load(z3 + o)));
        v128.store(g + o, acc);
      }
      for (; b < d; b++) {
        const o = (<usize>b) << 3;
        store<f64>(g + o, load<f64>(g + o) + x0 * load<f64>(z0 + o) + x1 * load<f64>(z1 + o) + x2 * load<f64>(z2 + o) + x3 * load<f64>(z3 + o));
      }
    }
  }
  for (; r < rows; r++) {
    const z0 = Z + (<usize>r) * rowBytes;
    for (let a: i32 = 0; a < d; a++) {
      const x0 = load<f64>(z0 + ((<usize>a) << 3));
      if (x0 == 0) continue;
      const g = G + (<usize>a) * rowBytes;
      for (let b: i32 = a; b < d; b++) {
        const o = (<usize>b) << 3;
        store<f64>(g + o, load<f64>(g + o) + x0 * load<f64>(z0 + o));
      }
    }
  }
}

/** out (n×k) = A (n×p) · Bᵀ (B is k×p): dot products of rows, 2 rows of A × 2 rows of B per pass. */
export function multiplyABt(A: usize, B: usize, out: usize, n: i32, k: i32, p: i32): void {
  const aBytes = (<usize>p) << 3;
  for (let i: i32 = 0; i < n; i += 2) {
    const a0 = A + (<usize>i) * aBytes;
    const a1 = i + 1 < n ? a0 + aBytes : a0;
    for (let j: i32 = 0; j < k; j += 2) {
      const b0 = B + (<usize>j) * aBytes;
      const b1 = j + 1 < k ? b0 + aBytes : b0;
      let c00 = f64x2.splat(0), c01 = f64x2.splat(0), c10 = f64x2.splat(0), c11 = f64x2.splat(0);
      let t: i32 = 0;
      for (; t + 2 <= p; t += 2) {
        const o = (<usize>t) << 3;
        const x0 = v128.load(a0 + o), x1 = v128.load(a1 + o), y0 = v128.load(b0 + o), y1 = v128.load(b1 + o);
        c00 = f64x2.add(c00, f64x2.mul(x0, y0));
        c01 = f64x2.add(c01, f64x2.mul(x0, y1));
        c10 = f64x2.add(c10, f64x2.mul(x1, y0));
        c11 = f64x2.add(c11, f64x2.mul(x1, y1));
      }
      let s00 = f64x2.extract_lane(c00, 0) + f64x2.extract_lane(c00, 1);
      let s01 = f64x2.extract_lane(c01, 0) + f64x2.extract_lane(c01, 1);
      let s10 = f64x2.extract_lane(c10, 0) + f64x2.extract_lane(c10, 1);
      let s11 = f64x2.extract_lane(c11, 0) + f64x2.extract_lane(c11, 1);
      for (; t < p; t++) {
        const o = (<usize>t) << 3;
        const x0 = load<f64>(a0 + o), x1 = load<f64>(a1 + o), y0 = load<f64>(b0 + o), y1 = load<f64>(b1 + o);
        s00 += x0 * y0;
        s01 += x0 * y1;
        s10 += x1 * y0;
        s11 += x1 * y1;
      }
      const o0 = out + ((<usize>i) * (<usize>k) + <usize>j) * 8;
      store<f64>(o0, s00);
      if (j + 1 < k) store<f64>(o0 + 8, s01);
      if (i + 1 < n) {
        const o1 = o0 + (<usize>k) * 8;
        store<f64>(o1, s10);
        if (j + 1 < k) store<f64>(o1 + 8, s11);
      }
    }
  }
}

/**
 * Closed-form leave-one-out errors for G values of λ at once (ridge-system.ts explains the expansion): for rows i of
 * R (n×r), E_i(λ_g) = base_i − Σ_j R_ij·coef[j][g·m + k] (no base: +Σ), h_i(λ_g) = Σ_j R_ij²·lev[j][g], and
 * out[g·n + i] = Σ_k E_ik² / (1 − h)² (0 or ∞ at leverage 1). Four rows share each coefficient load; `acc` holds 4·G·m
 * values and `h` 4·G of scratch. `base` = 0 means none.
 */
export function looGrid(R: usize, n: i32, r: i32, coef: usize, lev: usize, G: i32, m: i32, base: usize, out: usize, acc: usize, h: usize): void {
  const W = G * m;
  const wBytes = (<usize>W) << 3, gBytes = (<usize>G) << 3;
  const rBytes = (<usize>r) << 3;
  for (let i0: i32 = 0; i0 < n; i0 += 4) {
    const rows: i32 = min(4, n - i0);
    memory.fill(acc, 0, 4 * wBytes);
    memory.fill(h, 0, 4 * gBytes);
    const o0 = R + (<usize>i0) * rBytes;
    const o1 = R + (<usize>(i0 + min(1, rows - 1))) * rBytes;
    const o2 = R + (<usize>(i0 + min(2, rows - 1))) * rBytes;
    const o3 = R + (<usize>(i0 + min(3, rows - 1))) * rBytes;
    for (let j: i32 = 0; j < r; j++) {
      const jo = (<usize>j) << 3;
      const a0 = load<f64>(o0 + jo), a1 = load<f64>(o1 + jo), a2 = load<f64>(o2 + jo), a3 = load<f64>(o3 + jo);
      if (a0 == 0 && a1 == 0 && a2 == 0 && a3 == 0) continue;
      const s0 = f64x2.splat(a0), s1 = f64x2.splat(a1), s2 = f64x2.splat(a2), s3 = f64x2.splat(a3);
      const cb = coef + (<usize>j) * wBytes;
      let t: i32 = 0;
      for (; t + 2 <= W; t += 2) {
        const b = (<usize>t) << 3;
        const c = v128.load(cb + b);
        v128.store(acc + b, f64x2.add(v128.load(acc + b), f64x2.mul(s0, c)));
        v128.store(acc + wBytes + b, f64x2.add(v128.load(acc + wBytes + b), f64x2.mul(s1, c)));
        v128.store(acc + 2 * wBytes + b, f64x2.add(v128.load(acc + 2 * wBytes + b), f64x2.mul(s2, c)));
        v128.store(acc + 3 * wBytes + b, f64x2.add(v128.load(acc + 3 * wBytes + b), f64x2.mul(s3, c)));
      }
      for (; t < W; t++) {
        const b = (<usize>t) << 3;
        const c = load<f64>(cb + b);
        store<f64>(acc + b, load<f64>(acc + b) + a0 * c);
        store<f64>(acc + wBytes + b, load<f64>(acc + wBytes + b) + a1 * c);
        store<f64>(acc + 2 * wBytes + b, load<f64>(acc + 2 * wBytes + b) + a2 * c);
        store<f64>(acc + 3 * wBytes + b, load<f64>(acc + 3 * wBytes + b) + a3 * c);
      }
      const lb = lev + (<usize>j) * gBytes;
      const b0 = a0 * a0, b1 = a1 * a1, b2 = a2 * a2, b3 = a3 * a3;
      for (let g: i32 = 0; g < G; g++) {
        const b = (<usize>g) << 3;
        const l = load<f64>(lb + b);
        store<f64>(h + b, load<f64>(h + b) + b0 * l);
        store<f64>(h + gBytes + b, load<f64>(h + gBytes + b) + b1 * l);
        store<f64>(h + 2 * gBytes + b, load<f64>(h + 2 * gBytes + b) + b2 * l);
        store<f64>(h + 3 * gBytes + b, load<f64>(h + 3 * gBytes + b) + b3 * l);
      }
    }
    for (let rr: i32 = 0; rr < rows; rr++) {
      const i = i0 + rr;
      for (let g: i32 = 0; g < G; g++) {
        let s: f64 = 0;
        for (let k: i32 = 0; k < m; k++) {
          const fit = load<f64>(acc + (<usize>rr) * wBytes + ((<usize>(g * m + k)) << 3));
          const e = base != 0 ? load<f64>(base + ((<usize>(i * m + k)) << 3)) - fit : fit;
          s += e * e;
        }
        const gg = 1 - load<f64>(h + (<usize>rr) * gBytes + ((<usize>g) << 3));
        const v: f64 = gg <= 1e-10 ? (s == 0 && gg > 0 ? 0 : Infinity) : s / (gg * gg);
        store<f64>(out + ((<usize>g * <usize>n + <usize>i) << 3), v);
      }
    }
  }
}

/**
 * Hessian–vector product of the per-row cross-entropy curvature, without the ridge term: OUT (m×r, class-major) =
 * scale·Σ_i u_i ⊗ x_i with t_i = VT·x_i (VT m×r, class-major) and u_i = diag(p_i)·(t_i − (p_iᵀt_i)·1) (softmax) or
 * p_i ⊙ (1 − p_i) ⊙ t_i (`sigmoid` ≠ 0). X is n×r, P n×m (probabilities), T m values of scratch. Two classes share
 * each pass over a row of X.
 */
export function crossEntropyHessian(X: usize, n: i32, r: i32, P: usize, m: i32, VT: usize, OUT: usize, T: usize, sigmoid: i32, scale: f64): void {
  const rBytes = (<usize>r) << 3;
  const r2 = r & ~1;
  memory.fill(OUT, 0, (<usize>m) * rBytes);
  for (let i: i32 = 0; i < n; i++) {
    const x = X + (<usize>i) * rBytes;
    const p = P + (<usize>i) * ((<usize>m) << 3);
    let pt: f64 = 0;
    let c: i32 = 0;
    for (; c + 2 <= m; c += 2) {
      const v0 = VT + (<usize>c) * rBytes, v1 = v0 + rBytes;
      let a0 = f64x2.splat(0), a1 = f64x2.splat(0);
      for (let j: i32 = 0; j < r2; j += 2) {
        const o = (<usize>j) << 3;
        const xv = v128.load(x + o);
        a0 = f64x2.add(a0, f64x2.mul(xv, v128.load(v0 + o)));
        a1 = f64x2.add(a1, f64x2.mul(xv, v128.load(v1 + o)));
      }
      let t0 = f64x2.extract_lane(a0, 0) + f64x2.extract_lane(a0, 1);
      let t1 = f64x2.extract_lane(a1, 0) + f64x2.extract_lane(a1, 1);
      if (r2 < r) {
        const o = (<usize>r2) << 3;
        const xs = load<f64>(x + o);
        t0 += xs * load<f64>(v0 + o);
        t1 += xs * load<f64>(v1 + o);
      }
      store<f64>(T + ((<usize>c) << 3), t0);
      store<f64>(T + ((<usize>(c + 1)) << 3), t1);
      pt += load<f64>(p + ((<usize>c) << 3)) * t0 + load<f64>(p + ((<usize>(c + 1)) << 3)) * t1;
    }
    for (; c < m; c++) {
      const t = dot(x, VT + (<usize>c) * rBytes, r);
      store<f64>(T + ((<usize>c) << 3), t);
      pt += load<f64>(p + ((<usize>c) << 3)) * t;
    }
    c = 0;
    for (; c + 2 <= m; c += 2) {
      const p0 = load<f64>(p + ((<usize>c) << 3)), p1 = load<f64>(p + ((<usize>(c + 1)) << 3));
      const t0 = load<f64>(T + ((<usize>c) << 3)), t1 = load<f64>(T + ((<usize>(c + 1)) << 3));
      const u0 = (sigmoid != 0 ? p0 * (1 - p0) * t0 : p0 * (t0 - pt)) * scale;
      const u1 = (sigmoid != 0 ? p1 * (1 - p1) * t1 : p1 * (t1 - pt)) * scale;
      const o0 = OUT + (<usize>c) * rBytes, o1 = o0 + rBytes;
      const s0 = f64x2.splat(u0), s1 = f64x2.splat(u1);
      for (let j: i32 = 0; j < r2; j += 2) {
        const o = (<usize>j) << 3;
        const xv = v128.load(x + o);
        v128.store(o0 + o, f64x2.add(v128.load(o0 + o), f64x2.mul(s0, xv)));
        v128.store(o1 + o, f64x2.add(v128.load(o1 + o), f64x2.mul(s1, xv)));
      }
      if (r2 < r) {
        const o = (<usize>r2) << 3;
        const xs = load<f64>(x + o);
        store<f64>(o0 + o, load<f64>(o0 + o) + u0 * xs);
        store<f64>(o1 + o, load<f64>(o1 + o) + u1 * xs);
      }
    }
    for (; c < m; c++) {
      const pc = load<f64>(p + ((<usize>c) << 3));
      const t = load<f64>(T + ((<usize>c) << 3));
      const u = (sigmoid != 0 ? pc * (1 - pc) * t : pc * (t - pt)) * scale;
      axpyMinus(OUT + (<usize>c) * rBytes, -u, x, r);
    }
  }
}

/**
 * Lower Cholesky factor L (n×n, row-major, upper part zeroed) of the symmetric positive definite A (full storage),
 * row by row: L_ij = (A_ij − L_i,<j · L_j,<j) / L_jj, every sum a contiguous dot product. Returns the index of the
 * first pivot that is not positive, or −1.
 */
export function choleskyLower(A: usize, L: usize, n: i32): i32 {
  const rowBytes = (<usize>n) << 3;
  memory.fill(L, 0, (<usize>n) * rowBytes);
  for (let i: i32 = 0; i < n; i++) {
    const li = L + (<usize>i) * rowBytes, ai = A + (<usize>i) * rowBytes;
    for (let j: i32 = 0; j < i; j++) {
      const lj = L + (<usize>j) * rowBytes;
      const s = load<f64>(ai + ((<usize>j) << 3)) - dot(li, lj, j);
      store<f64>(li + ((<usize>j) << 3), s / load<f64>(lj + ((<usize>j) << 3)));
    }
    const d = load<f64>(ai + ((<usize>i) << 3)) - dot(li, li, i);
    if (!(d > 0)) return i;
    store<f64>(li + ((<usize>i) << 3), sqrt(d));
  }
  return -1;
}

/**
 * Solves L·Lᵀ·z = b in place (z holds b) for the lower factor L (n×n): forward substitution by row dot products,
 * backward by axpys with the rows of L (column-oriented), so both run over contiguous memory.
 */
export function choleskySolve(L: usize, n: i32, z: usize): void {
  const rowBytes = (<usize>n) << 3;
  for (let i: i32 = 0; i < n; i++) {
    const li = L + (<usize>i) * rowBytes;
    const zo = z + ((<usize>i) << 3);
    store<f64>(zo, (load<f64>(zo) - dot(li, z, i)) / load<f64>(li + ((<usize>i) << 3)));
  }
  for (let i: i32 = n - 1; i >= 0; i--) {
    const li = L + (<usize>i) * rowBytes;
    const zo = z + ((<usize>i) << 3);
    const zi = load<f64>(zo) / load<f64>(li + ((<usize>i) << 3));
    store<f64>(zo, zi);
    if (zi != 0) axpyMinus(z, zi, li, i);
  }
}

/** Σ a[j]² for j < len. */
@inline
function sumSquares(a: usize, len: i32): f64 {
  return dot(a, a, len);
}

/** Π·z for the softmax: removes the mean over the m classes of every coordinate of a class-major m×r block. */
function centreClasses(z: usize, r: i32, m: i32): void {
  const rBytes = (<usize>r) << 3;
  for (let j: i32 = 0; j < r; j++) {
    const o = (<usize>j) << 3;
    let s: f64 = 0;
    for (let c: i32 = 0; c < m; c++) s += load<f64>(z + (<usize>c) * rBytes + o);
    s /= <f64>m;
    for (let c: i32 = 0; c < m; c++) {
      const a = z + (<usize>c) * rBytes + o;
      store<f64>(a, load<f64>(a) - s);
    }
  }
}

/**
 * Preconditioned conjugate gradients on (H + λI)·x = b for the cross-entropy Hessian H of {@link crossEntropyHessian},
 * preconditioned by the per-class Cholesky factors at `L` (m lower triangles r×r, packed) and, for the softmax
 * (`sigmoid` = 0), projected on the centred subspace. Stops when ‖b − (H + λI)x‖ ≤ eta·‖b‖, after `maxCg`
 * iterations, or when the curvature along a direction is not positive. B holds b (m×r, class-major), X the result;
 * W is 4·m·r values of scratch, T m values. Returns the number of iterations. The same algorithm as the JavaScript
 * loop in src/core/cross-entropy.ts.
 */
export function crossEntropyCg(
  Xf: usize, n: i32, r: i32, P: usize, m: i32, L: usize, B: usize, X: usize, W: usize, T: usize,
  sigmoid: i32, scale: f64, lambda: f64, eta: f64, maxCg: i32,
): i32 {
  const len = r * m;
  const lenBytes = (<usize>len) << 3, rBytes = (<usize>r) << 3, blockBytes = (<usize>r) * rBytes;
  const res = W, z = W + lenBytes, dir = W + 2 * lenBytes, q = W + 3 * lenBytes;
  memory.fill(X, 0, lenBytes);
  memory.copy(res, B, lenBytes);
  const bNorm = sqrt(sumSquares(res, len));
  // z = M⁻¹·res
  memory.copy(z, res, lenBytes);
  for (let c: i32 = 0; c < m; c++) choleskySolve(L + (<usize>c) * blockBytes, r, z + (<usize>c) * rBytes);
  if (sigmoid == 0) centreClasses(z, r, m);
  memory.copy(dir, z, lenBytes);
  let rz = dot(res, z, len);
  const lam = f64x2.splat(lambda);
  let k: i32 = 0;
  for (; k < maxCg; k++) {
    crossEntropyHessian(Xf, n, r, P, m, dir, q, T, sigmoid, scale);
    for (let i: i32 = 0; i + 2 <= len; i += 2) {
      const o = (<usize>i) << 3;
      v128.store(q + o, f64x2.add(v128.load(q + o), f64x2.mul(lam, v128.load(dir + o))));
    }
    if (len & 1) {
      const o = (<usize>(len - 1)) << 3;
      store<f64>(q + o, load<f64>(q + o) + lambda * load<f64>(dir + o));
    }
    const alpha = rz / dot(dir, q, len);
    if (!(alpha > 0) || alpha == Infinity) break;
    axpyMinus(X, -alpha, dir, len);
    axpyMinus(res, alpha, q, len);
    if (sqrt(sumSquares(res, len)) <= eta * bNorm) {
      k++;
      break;
    }
    memory.copy(z, res, lenBytes);
    for (let c: i32 = 0; c < m; c++) choleskySolve(L + (<usize>c) * blockBytes, r, z + (<usize>c) * rBytes);
    if (sigmoid == 0) centreClasses(z, r, m);
    const rzNew = dot(res, z, len);
    const beta = rzNew / rz;
    rz = rzNew;
    const bv = f64x2.splat(beta);
    let i: i32 = 0;
    for (; i + 2 <= len; i += 2) {
      const o = (<usize>i) << 3;
      v128.store(dir + o, f64x2.add(v128.load(z + o), f64x2.mul(bv, v128.load(dir + o))));
    }
    for (; i < len; i++) {
      const o = (<usize>i) << 3;
      store<f64>(dir + o, load<f64>(z + o) + beta * load<f64>(dir + o));
    }
  }
  if (sigmoid == 0) centreClasses(X, r, m);
  return k;
}
