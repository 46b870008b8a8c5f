"""The primitive table, and the functions composed from it, under the standard's names."""

from .conversion import astype, pass_through, to_device, transfer
from .elementwise import (
    abs, acos, acosh, add, asin, asinh, atan, atan2, atanh, bitwise_and, bitwise_invert,
    bitwise_left_shift, bitwise_or, bitwise_right_shift, bitwise_xor, ceil, clip, conj, copysign,
    cos, cosh, divide, equal, exp, expm1, floor, floor_divide, greater, greater_equal, hypot, imag,
    isfinite, isinf, isnan, less, less_equal, log, log1p, log2, log10, logaddexp, logical_and,
    logical_not, logical_or, logical_xor, maximum, minimum, multiply, negative, nextafter,
    not_equal, positive, pow, real, reciprocal, remainder, round, sign, signbit, sin, sinh, sqrt,
    square, subtract, tan, tanh, trunc,
)
from .erf import erf
from .indexing import getitem, index_add, setitem, sort, take, take_along_axis, where
from .linalg import matmul, tensordot, vecdot
from .manipulation import (
    broadcast_arrays, broadcast_to, concat, diff, expand_dims, flip, matrix_transpose, moveaxis,
    permute_dims, repeat, reshape, roll, squeeze, stack, tile, tril, triu, unstack,
)
from .reductions import cumulative_prod, cumulative_sum, max, mean, min, prod, std, sum, var
from .special import linear, log_softmax, logsumexp, relu, sigmoid, softmax, softmax_cross_entropy
