"""Cells exported to homomorphic-encryption libraries: concrete-python (TFHE), TenSEAL (CKKS)."""
