"""StyleGAN2's custom ops, each with a reference implementation (the spec) and a fast path."""

from rig.stylegan2.ops.bias_act import ACTIVATIONS, activation_spec, bias_act, bias_act_ref
from rig.stylegan2.ops.conv2d_resample import conv2d_resample
from rig.stylegan2.ops.modconv import demod_coefficients, modulated_conv2d, modulated_conv2d_ref
from rig.stylegan2.ops.upfirdn2d import (downsample2d, filter2d, setup_filter, upfirdn2d, upfirdn2d_ref,
                                         upsample2d)



def kernel_status() -> dict[str, str]:
    """``rig info`` hook: state of the fused StyleGAN2 CPU kernel build (never compiles)."""
    from rig._ext import extension_status
    from rig.stylegan2.ops.fused import _SOURCE, CFLAGS, KERNEL_NAME

    return {KERNEL_NAME: extension_status(KERNEL_NAME, [_SOURCE], extra_cflags=CFLAGS)}


def build_kernels() -> dict[str, str]:
    """``rig info --build`` hook: build the fused StyleGAN2 CPU kernel now (or find it built)."""
    from rig._ext import build_extension
    from rig.stylegan2.ops.fused import _SOURCE, CFLAGS, KERNEL_NAME, KERNEL_TITLE

    return {KERNEL_NAME: build_extension(KERNEL_NAME, [_SOURCE], extra_cflags=CFLAGS, title=KERNEL_TITLE)}


__all__ = [
    "ACTIVATIONS", "activation_spec", "bias_act", "bias_act_ref", "conv2d_resample", "demod_coefficients",
    "modulated_conv2d", "modulated_conv2d_ref", "downsample2d", "filter2d", "setup_filter", "upfirdn2d",
    "upfirdn2d_ref", "upsample2d", "kernel_status", "build_kernels",
]
