//! Whether 32 bytes are an Ed25519 public key that importers accept: the check every
//! written session's signing key needs (vodozemac, through curve25519-dalek, decompresses
//! it on import and rejects the whole file when it is not a point of the curve).
//!
//! Decompressing a point costs a field exponentiation (about 3.7 µs here), which was a
//! quarter of a merge's CPU time, 400,000 times over. Whether a point exists needs less:
//! for the encoded `y`, a point exists exactly when `(y² − 1)·(d·y² + 1)` is a square mod
//! `p = 2^255 − 19` (dalek's `sqrt_ratio_i` succeeds on the same values, zero included), and
//! that is a Legendre symbol, which a binary GCD computes in about a third of the time. This
//! is hand-written because it is the hot path and no maintained crate offers a faster one
//! (crypto-bigint's `jacobi_symbol_vartime` measured slower than dalek's decompression). The
//! GCD is Bernstein and Yang's "posdivsteps" in batches of 62 on signed 62-bit limbs, as
//! libsecp256k1 computes Jacobi symbols (`secp256k1_jacobi64_maybe_var`); like it, it gives
//! up after 25 batches (practically never), and then dalek decides. The inputs are public
//! keys, so variable time is fine. Tests compare it with dalek on every edge case and
//! 300,000 random keys, and the key-file fuzz target compares it on every session.

use vodozemac::Ed25519PublicKey;

/// `p = 2^255 − 19`, little-endian 64-bit limbs.
const P: [u64; 4] = [
    0xffff_ffff_ffff_ffed,
    0xffff_ffff_ffff_ffff,
    0xffff_ffff_ffff_ffff,
    0x7fff_ffff_ffff_ffff,
];

/// Edwards `d = −121665/121666 mod p`, little-endian 64-bit limbs.
const D: [u64; 4] = [
    0x75eb_4dca_1359_78a3,
    0x0070_0a4d_4141_d8ab,
    0x8cc7_4079_7779_e898,
    0x5203_6cee_2b6f_fe73,
];

const M62: u64 = u64::MAX >> 2;

/// Batches of 62 steps before giving the question to dalek (1,550 steps; the median is
/// about 756).
const BATCHES: usize = 25;

/// True when `key` decodes as curve25519-dalek (and so vodozemac) decodes an Ed25519
/// public key.
pub fn is_ed25519_point(key: &[u8; 32]) -> bool {
    let y = field_from_bytes(key);
    let yy = mul(&y, &y);
    let u = sub_one(&yy);
    let v = add_one(&mul(&yy, &D));
    let w = mul(&u, &v);
    if w == [0; 4] {
        return true; // y = ±1: x = 0
    }
    match legendre(&w, BATCHES) {
        Some(symbol) => symbol == 1,
        None => Ed25519PublicKey::from_slice(key).is_ok(),
    }
}

/// The low 255 bits, reduced mod p (dalek ignores the sign bit and accepts y ≥ p).
fn field_from_bytes(bytes: &[u8; 32]) -> [u64; 4] {
    let mut y = [0u64; 4];
    for (limb, chunk) in y.iter_mut().zip(bytes.chunks_exact(8)) {
        *limb = u64::from_le_bytes(chunk.try_into().expect("8 bytes"));
    }
    y[3] &= 0x7fff_ffff_ffff_ffff;
    canonical(y)
}

/// `a` mod p, for `a < 2^256` (2^256 = 2p + 38: at most two subtractions).
fn canonical(mut a: [u64; 4]) -> [u64; 4] {
    while !less_than_p(&a) {
        let mut borrow = false;
        for (limb, p) in a.iter_mut().zip(P) {
            let (d, b1) = limb.overflowing_sub(p);
            let (d, b2) = d.overflowing_sub(u64::from(borrow));
            *limb = d;
            borrow = b1 || b2;
        }
    }
    a
}

fn less_than_p(a: &[u64; 4]) -> bool {
    for i in (0..4).rev() {
        if a[i] != P[i] {
            return a[i] < P[i];
        }
    }
    false
}

/// `a·b mod p`, for canonical `a` and `b`.
fn mul(a: &[u64; 4], b: &[u64; 4]) -> [u64; 4] {
    let mut wide = [0u64; 8];
    for i in 0..4 {
        let mut carry = 0u128;
        for j in 0..4 {
            let x = u128::from(wide[i + j]) + u128::from(a[i]) * u128::from(b[j]) + carry;
            wide[i + j] = x as u64;
            carry = x >> 64;
        }
        wide[i + 4] = carry as u64;
    }
    // wide = low + high·2^256, and 2^256 ≡ 38 (mod p).
    let mut r = [0u64; 4];
    let mut carry = 0u128;
    for i in 0..4 {
        let x = u128::from(wide[i]) + 38 * u128::from(wide[i + 4]) + carry;
        r[i] = x as u64;
        carry = x >> 64;
    }
    while carry != 0 {
        let mut add = 38 * carry;
        for limb in r.iter_mut() {
            let x = u128::from(*limb) + add;
            *limb = x as u64;
            add = x >> 64;
        }
        carry = add;
    }
    canonical(r)
}

fn sub_one(a: &[u64; 4]) -> [u64; 4] {
    if *a == [0; 4] {
        return [P[0] - 1, P[1], P[2], P[3]];
    }
    let mut r = *a;
    for limb in r.iter_mut() {
        let (d, borrow) = limb.overflowing_sub(1);
        *limb = d;
        if !borrow {
            break;
        }
    }
    r
}

fn add_one(a: &[u64; 4]) -> [u64; 4] {
    let mut r = *a;
    for limb in r.iter_mut() {
        let (s, carry) = limb.overflowing_add(1);
        *limb = s;
        if !carry {
            break;
        }
    }
    canonical(r)
}

/// A 2×2 matrix of 62 steps, scaled by 2^62.
struct Steps {
    u: i64,
    v: i64,
    q: i64,
    r: i64,
}

/// The Legendre symbol of canonical, non-zero `w` mod p, or `None` when it takes more than
/// `batches` batches of steps.
fn legendre(w: &[u64; 4], batches: usize) -> Option<i32> {
    let mut f: [i64; 5] = [(P[0] & M62) as i64, M62 as i64, M62 as i64, M62 as i64, 127];
    let mut g = signed62(w);
    let mut len = 5;
    let mut eta: i64 = -1;
    let mut jacobi = 0u64;
    for _ in 0..batches {
        let low = |x: &[i64; 5]| x[0] as u64 | ((x[1] as u64) << 62);
        let steps;
        (eta, steps) = posdivsteps_62(eta, low(&f), low(&g), &mut jacobi);
        update(len, &mut f, &mut g, &steps);
        if f[0] == 1 && f[1..len].iter().all(|&l| l == 0) {
            return Some(if jacobi & 1 == 0 { 1 } else { -1 });
        }
        if len > 1 && f[len - 1] == 0 && g[len - 1] == 0 {
            len -= 1;
        }
    }
    None
}

fn signed62(w: &[u64; 4]) -> [i64; 5] {
    let bits = |from: u32| -> u64 {
        let (limb, shift) = ((from / 64) as usize, from % 64);
        let mut x = w[limb] >> shift;
        if shift > 2 && limb + 1 < 4 {
            x |= w[limb + 1] << (64 - shift);
        }
        x & M62
    };
    [
        bits(0) as i64,
        bits(62) as i64,
        bits(124) as i64,
        bits(186) as i64,
        (w[3] >> 56) as i64,
    ]
}

/// 62 "positive divsteps" on the low 64 bits of `f` and `g` (f odd), flipping the low bit
/// of `jacobi` whenever the symbol (g | f) changes sign: on dividing g by two when
/// f ≡ 3, 5 (mod 8), and on swapping f and g when both are 3 (mod 4).
fn posdivsteps_62(mut eta: i64, f0: u64, g0: u64, jacobi: &mut u64) -> (i64, Steps) {
    let (mut u, mut v, mut q, mut r) = (1u64, 0u64, 0u64, 1u64);
    let (mut f, mut g) = (f0, g0);
    let mut left = 62u32;
    loop {
        // Halve g as often as it is even, up to the steps left.
        let zeros = (g | (u64::MAX << left)).trailing_zeros();
        g >>= zeros;
        u <<= zeros;
        v <<= zeros;
        eta -= i64::from(zeros);
        left -= zeros;
        *jacobi ^= u64::from(zeros) & ((f >> 1) ^ (f >> 2));
        if left == 0 {
            break;
        }
        let (limit, mask_bits);
        if eta < 0 {
            eta = -eta;
            std::mem::swap(&mut f, &mut g);
            std::mem::swap(&mut u, &mut q);
            std::mem::swap(&mut v, &mut r);
            *jacobi ^= (f & g) >> 1;
            limit = (eta + 1).min(i64::from(left)) as u32;
            mask_bits = 63u64;
        } else {
            limit = (eta + 1).min(i64::from(left)) as u32;
            mask_bits = 15u64;
        }
        let m = (u64::MAX >> (64 - limit)) & mask_bits;
        // The multiple of f that cancels g's low bits (up to 6 after a swap, else 4).
        let w = if mask_bits == 63 {
            f.wrapping_mul(g)
                .wrapping_mul(f.wrapping_mul(f).wrapping_sub(2))
                & m
        } else {
            let w = f.wrapping_add((f.wrapping_add(1) & 4) << 1);
            w.wrapping_neg().wrapping_mul(g) & m
        };
        g = g.wrapping_add(f.wrapping_mul(w));
        q = q.wrapping_add(u.wrapping_mul(w));
        r = r.wrapping_add(v.wrapping_mul(w));
    }
    let steps = Steps {
        u: u as i64,
        v: v as i64,
        q: q as i64,
        r: r as i64,
    };
    (eta, steps)
}

/// `(f, g) ← steps·(f, g) / 2^62` on the low `len` limbs.
fn update(len: usize, f: &mut [i64; 5], g: &mut [i64; 5], t: &Steps) {
    let (u, v, q, r) = (
        i128::from(t.u),
        i128::from(t.v),
        i128::from(t.q),
        i128::from(t.r),
    );
    let mut cf = u * i128::from(f[0]) + v * i128::from(g[0]);
    let mut cg = q * i128::from(f[0]) + r * i128::from(g[0]);
    debug_assert!(cf as u64 & M62 == 0 && cg as u64 & M62 == 0);
    cf >>= 62;
    cg >>= 62;
    for i in 1..len {
        cf += u * i128::from(f[i]) + v * i128::from(g[i]);
        cg += q * i128::from(f[i]) + r * i128::from(g[i]);
        f[i - 1] = (cf as u64 & M62) as i64;
        g[i - 1] = (cg as u64 & M62) as i64;
        cf >>= 62;
        cg >>= 62;
    }
    f[len - 1] = cf as i64;
    g[len - 1] = cg as i64;
}

#[cfg(test)]
mod tests {
    use super::*;

    fn dalek(key: &[u8; 32]) -> bool {
        Ed25519PublicKey::from_slice(key).is_ok()
    }

    fn le(limbs: [u64; 4]) -> [u8; 32] {
        let mut out = [0u8; 32];
        for (chunk, limb) in out.chunks_exact_mut(8).zip(limbs) {
            chunk.copy_from_slice(&limb.to_le_bytes());
        }
        out
    }

    #[test]
    fn agrees_with_dalek_on_the_edges() {
        let mut keys = vec![[0u8; 32], [0xff; 32]];
        for y in [0u64, 1, 2, 3, 18, 19, 20, 38] {
            keys.push(le([y, 0, 0, 0]));
            // p − y, p + y (non-canonical), and 2^255 − y.
            keys.push(le(canonical_sub(P, y)));
            keys.push(le([P[0].wrapping_add(y), P[1], P[2], P[3]]));
            keys.push(le([
                0u64.wrapping_sub(y.max(1)),
                u64::MAX,
                u64::MAX,
                0x7fff_ffff_ffff_ffff,
            ]));
        }
        keys.push(le(D));
        for key in keys.clone() {
            let mut signed = key;
            signed[31] ^= 0x80;
            keys.push(signed);
        }
        // The Ed25519 base point, and the points of order 8 (importers accept them).
        keys.push(*curve_base());
        for order8 in [
            "c7176a703d4dd84fba3c0b760d10670f2a2053fa2c39ccc64ec7fd7792ac037a",
            "26e8958fc2b227b045c3f489f2ef98f0d5dfac05d3c63339b13802886d53fc05",
        ] {
            let bytes: Vec<u8> = (0..32)
                .map(|i| u8::from_str_radix(&order8[2 * i..2 * i + 2], 16).unwrap())
                .collect();
            keys.push(bytes.try_into().unwrap());
        }
        for key in &keys {
            assert_eq!(is_ed25519_point(key), dalek(key), "{}", hex(key));
        }
    }

    fn canonical_sub(a: [u64; 4], y: u64) -> [u64; 4] {
        let (l0, borrow) = a[0].overflowing_sub(y);
        [l0, a[1] - u64::from(borrow), a[2], a[3]]
    }

    fn curve_base() -> &'static [u8; 32] {
        // 4/5 in little-endian: the base point's y.
        &[
            0x58, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
            0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66, 0x66,
            0x66, 0x66, 0x66, 0x66,
        ]
    }

    fn hex(key: &[u8; 32]) -> String {
        key.iter().map(|b| format!("{b:02x}")).collect()
    }

    #[test]
    fn agrees_with_dalek_on_300_000_random_keys() {
        // A fixed xorshift stream: reproducible, and about half of its keys are points.
        let mut state = 0x9e37_79b9_7f4a_7c15u64;
        let mut next = || {
            state ^= state << 13;
            state ^= state >> 7;
            state ^= state << 17;
            state
        };
        let mut points = 0;
        for _ in 0..300_000 {
            let key = le([next(), next(), next(), next()]);
            let ours = is_ed25519_point(&key);
            assert_eq!(ours, dalek(&key), "{}", hex(&key));
            points += usize::from(ours);
        }
        assert!((135_000..165_000).contains(&points), "{points}");
    }

    #[test]
    fn a_symbol_not_found_in_time_is_none() {
        let w = [0x1234_5678_9abc_def1, 7, 0, 1 << 60];
        assert_eq!(legendre(&w, 1), None);
        let symbol = legendre(&w, BATCHES).expect("found in time");
        // Euler's criterion on a small case: 4 is a square, 2 is not (p ≡ 5 mod 8).
        assert_eq!(legendre(&[4, 0, 0, 0], BATCHES), Some(1));
        assert_eq!(legendre(&[2, 0, 0, 0], BATCHES), Some(-1));
        assert_eq!(legendre(&mul(&w, &w), BATCHES), Some(1));
        assert!(symbol == 1 || symbol == -1);
    }

    #[test]
    fn the_field_arithmetic_is_that_of_p() {
        let minus_one = [P[0] - 1, P[1], P[2], P[3]];
        assert_eq!(mul(&minus_one, &minus_one), [1, 0, 0, 0]);
        assert_eq!(sub_one(&[0; 4]), minus_one);
        assert_eq!(add_one(&minus_one), [0; 4]);
        // d·(−121666) = 121665.
        let m = canonical_sub(P, 121_666);
        assert_eq!(mul(&D, &m), [121_665, 0, 0, 0]);
        assert_eq!(field_from_bytes(&le(P)), [0; 4]);
        let p62 = [(P[0] & M62) as i64, M62 as i64, M62 as i64, M62 as i64, 127];
        assert_eq!(signed62(&P), p62);
    }
}
