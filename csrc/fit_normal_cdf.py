"""Fits the polynomial of GELU's normal CDF (activations.c, fm_ncdf_c_f32/f64) and prints the C.

erfc(|z| / sqrt 2) = tau exp(-z^2/2 + (1 - tau) M(tau)), tau = 1 / (1 + q|z|): M is fitted as a
polynomial in u = tau UA - UB, which maps tau's range [tau(zmax), 1] onto [-1, 1], by
interpolation at Chebyshev nodes in 50 digits (mpmath.chebyfit). Run: python csrc/fit_normal_cdf.py
"""
import re

import mpmath as mp
import numpy as np

mp.mp.dps = 50

# dtype, q, zmax (Phi(-zmax) below half the smallest subnormal), degree
FITS = (("f32", np.float32, 0.45, 14.3, 11), ("f64", np.float64, 0.35, 38.6, 27))


def fit(q, zmax, degree):
    q = mp.mpf(q)
    tau_min = 1 / (1 + q * mp.mpf(zmax))

    def m_of_u(u):
        tau = tau_min + (1 - tau_min) * (u + 1) / 2
        if 1 - tau < mp.mpf(10) ** -40:
            return 1 - mp.sqrt(2 / mp.pi) / q  # the limit at z = 0
        a = (1 / tau - 1) / q / mp.sqrt(2)
        return (mp.log(mp.erfc(a) / tau) + a * a) / (1 - tau)

    coefs, err = mp.chebyfit(m_of_u, [-1, 1], degree, error=True)
    return coefs[::-1], 2 / (1 - tau_min), (1 + tau_min) / (1 - tau_min), err


def c_literal(x, dtype):
    text = float(dtype(float(x))).hex()
    text = re.sub(r"\.?0*p", "p", text)
    return text + ("f" if dtype == np.float32 else "")


for suffix, dtype, q, zmax, degree in FITS:
    coefs, ua, ub, err = fit(q, zmax, degree)
    ctype = "float" if dtype == np.float32 else "double"
    print(f"/* fit error {float(err):.1e} */")
    print(f"#define NCDF_UA {c_literal(ua, dtype)}\n#define NCDF_UB {c_literal(ub, dtype)}")
    print(f"static const {ctype} fm_ncdf_c_{suffix}[{len(coefs)}] = {{")
    print(",\n".join("    " + c_literal(c, dtype) for c in coefs) + "};")
