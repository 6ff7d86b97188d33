"""A small technology model: energy and area of MACs, registers and on-chip buffers at a process node.

Every constant below carries its source; none comes from HyGCN (the accelerator the model is
checked against, ``profiles/hygcn.toml``). All functions are plain numpy and broadcast, so one
call prices a whole grid of hardware points.

Reference point: 45 nm, 0.9 V (Horowitz, "Computing's energy problem", ISSCC 2014).

Scaling rule (stated, one rule for every component): Dennard constant-field scaling (Dennard et
al., IEEE JSSC 1974) with the supply voltage as its own knob::

    area(L)   = area(L0) * (L / L0)^2
    energy(L) = energy(L0) * (L / L0) * (V / V0)^2          (C ~ L, E = C V^2)

where ``L0``/``V0`` are the node and voltage of the constant's source. Deep-submicron nodes
scale less well than this (Stillmaker & Baas, Integration 2017, report up to 83x gaps between
classical scaling and simulated devices), so results at nodes far from a source are rough.

Datapath widths other than the published 8 and 32 bits follow a power law fitted through the two
published points (multiplier ~ bits^2, adder ~ bits, as array multipliers and ripple adders grow).
"""

from __future__ import annotations

from typing import Any

import numpy as np

Array = Any  # float | np.ndarray

REF_NODE_NM = 45.0
REF_VDD_V = 0.9
SOURCE_HOROWITZ = "Horowitz, ISSCC 2014, 45 nm 0.9 V (hardware.md section 3)"

# Integer datapath at 45 nm: (energy pJ, area um^2) -- Horowitz ISSCC 2014.
INT_MULT = {8: (0.2, 282.0), 32: (3.1, 3495.0)}
INT_ADD = {8: (0.03, 36.0), 32: (0.1, 137.0)}
# Pipeline register per bit (Accelergy / Aladdin component library, 40-45 nm): 0.009 pJ, 5.98 um^2.
REG_PJ_PER_BIT = 0.009
REG_UM2_PER_BIT = 5.98
SOURCE_REGISTER = "Accelergy/Aladdin component library: register 0.009 pJ/bit, 5.98 um^2/bit (40-45 nm)"
# Registers one processing element keeps: input, weight, partial sum (a weight-stationary PE).
PE_REGISTERS = 3
# Extra register bits of a PE that skips zero weights: one 16-bit index (assumption: CSR-style index).
SPARSE_INDEX_BITS = 16
# Standard cells fill ~70% of a placed block (assumed placement density; common floorplanning target).
LOGIC_UTILISATION = 0.7

# On-chip SRAM read: 10 pJ per 64-bit access of an 8 KB array at 45 nm (Horowitz ISSCC 2014); the
# same talk's 32 KB (20 pJ) and 1 MB (100 pJ) points follow energy ~ sqrt(capacity) (wire length).
SRAM_PJ_PER_32B_8KB = 5.0
SRAM_REF_BYTES = 8192.0
SOURCE_SRAM_ENERGY = ("Horowitz ISSCC 2014: 8 KB SRAM 10 pJ/64 b (32 KB 20 pJ, 1 MB 100 pJ: ~sqrt(capacity)), "
                      "45 nm; eDRAM access taken equal (assumption)")

# Buffer density (mm^2 per MB = 1e6 bytes, whole macro/die incl. periphery) at its source node.
BUFFER_DENSITY = {
    # Intel 22 nm 1 Gb eDRAM die: 77 mm^2 for 2^30 bits (Hamzaoglu et al., IEEE JSSC 50(1) 2015).
    "edram": (77.0 / (2**30 / 8 / 1e6), 22.0,
              "Intel 22 nm 1 Gb eDRAM die, 77 mm^2 (Hamzaoglu et al., JSSC 2015): 0.574 mm^2/MB at 22 nm"),
    # TSMC N5 SRAM ~31.8 Mib/mm^2 (hardware.md section 3).
    "sram": (8e6 / (31.8 * 2**20), 5.0, "TSMC N5 SRAM ~31.8 Mib/mm^2 (hardware.md section 3): 0.24 mm^2/MB at 5 nm"),
}
BUFFER_TECHS = tuple(BUFFER_DENSITY)

# DRAM energy per bit (Accelergy CACTI table, hardware.md section 3).
DRAM_PJ_PER_BIT = {"hbm2": 3.9, "lpddr4": 8.0, "gddr5": 14.0, "ddr3": 70.0}
SOURCE_DRAM = "Accelergy CACTI table (hardware.md section 3): HBM2 3.9, LPDDR4 8, GDDR5 14, DDR3 70 pJ/bit"
DRAM_TECHS = tuple(DRAM_PJ_PER_BIT)


def area_scale(node_nm: Array, source_nm: float = REF_NODE_NM) -> Array:
    """Area factor from ``source_nm`` to ``node_nm`` (Dennard: ~ L^2)."""
    return (np.asarray(node_nm, dtype=float) / source_nm) ** 2


def energy_scale(node_nm: Array, vdd_v: Array, source_nm: float = REF_NODE_NM,
                 source_vdd: float = REF_VDD_V) -> Array:
    """Energy factor from the source node/voltage (Dennard: ~ L * V^2)."""
    return (np.asarray(node_nm, dtype=float) / source_nm) * (np.asarray(vdd_v, dtype=float) / source_vdd) ** 2


def _power_law(table: dict[int, tuple[float, float]], bits: Array, which: int) -> Array:
    (b0, v0), (b1, v1) = ((b, v[which]) for b, v in sorted(table.items()))
    alpha = np.log(v1 / v0) / np.log(b1 / b0)
    return v0 * (np.asarray(bits, dtype=float) / b0) ** alpha


def mac_energy_pj(bits: Array, node_nm: Array, vdd_v: Array, sparse: Array = False) -> Array:
    """Energy of one multiply-accumulate in a PE [pJ]: multiplier + adder + PE registers."""
    reg_bits = PE_REGISTERS * np.asarray(bits, dtype=float) + SPARSE_INDEX_BITS * np.asarray(sparse, dtype=float)
    e45 = _power_law(INT_MULT, bits, 0) + _power_law(INT_ADD, bits, 0) + reg_bits * REG_PJ_PER_BIT
    return e45 * energy_scale(node_nm, vdd_v)


def pe_area_um2(bits: Array, node_nm: Array, sparse: Array = False) -> Array:
    """Placed area of one MAC processing element [um^2] (cells / placement utilisation)."""
    reg_bits = PE_REGISTERS * np.asarray(bits, dtype=float) + SPARSE_INDEX_BITS * np.asarray(sparse, dtype=float)
    a45 = _power_law(INT_MULT, bits, 1) + _power_law(INT_ADD, bits, 1) + reg_bits * REG_UM2_PER_BIT
    return a45 / LOGIC_UTILISATION * area_scale(node_nm)


def buffer_area_mm2(buffer_mb: Array, tech: str, node_nm: Array) -> Array:
    """Area of ``buffer_mb`` MB of on-chip ``tech`` memory at ``node_nm`` [mm^2]."""
    density, source_nm, _ = BUFFER_DENSITY[tech]
    return np.asarray(buffer_mb, dtype=float) * density * area_scale(node_nm, source_nm)


def buffer_word_pj(bank_bytes: Array, bits: Array, node_nm: Array, vdd_v: Array) -> Array:
    """Energy of one ``bits``-wide access to a bank of ``bank_bytes`` [pJ] (~ sqrt(capacity))."""
    size = np.maximum(np.asarray(bank_bytes, dtype=float), SRAM_REF_BYTES) / SRAM_REF_BYTES
    per_32 = SRAM_PJ_PER_32B_8KB * np.sqrt(size)
    return per_32 * np.asarray(bits, dtype=float) / 32.0 * energy_scale(node_nm, vdd_v)


def dram_pj_per_byte(tech: str) -> float:
    return DRAM_PJ_PER_BIT[tech] * 8.0


SOURCES = {
    "mac": SOURCE_HOROWITZ + "; widths other than 8/32 b by a power law through both points",
    "register": SOURCE_REGISTER,
    "utilisation": f"standard cells placed at {LOGIC_UTILISATION:.0%} density (assumption)",
    "buffer_energy": SOURCE_SRAM_ENERGY,
    "buffer_area": "; ".join(v[2] for v in BUFFER_DENSITY.values()),
    "dram": SOURCE_DRAM,
    "scaling": "Dennard constant-field scaling (JSSC 1974): area ~ L^2, energy ~ L V^2",
}
