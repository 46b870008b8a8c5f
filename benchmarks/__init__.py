"""Side-by-side benchmarks of gdbp against hand-written NumPy/CuPy, PyTorch and HIPS autograd.

``python -m benchmarks.run`` (or ``make bench``, ``gdbp bench``) runs the CPU suite;
``benchmarks/gpu_check.sh OUT_DIR`` runs the GPU suite on a machine with an NVIDIA GPU.
"""
