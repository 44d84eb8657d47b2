"""rig.stylegan2: StyleGAN2 networks compatible with stylegan2-ada-pytorch checkpoints, safe loaders, fused CPU ops.

Entry points: ``rig.stylegan2.networks`` (Generator, Discriminator, configs), ``rig.stylegan2.checkpoints``
(load / save / convert), ``rig.stylegan2.generate`` (library side of ``rig generate``). See docs/stylegan2.md.
"""
