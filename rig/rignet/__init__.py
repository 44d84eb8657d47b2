"""RigNet: steer a StyleGAN generator with rig parameters (StyleRig, Tewari et al. 2020).

The stage between ``rig.stylegan2`` and the user-facing commands:

* ``controls``: the control vector a labeler reads (pose, jaw, expression, eyes) and its groups;
* ``labelers`` / ``labels``: ``rig label``, W+ latents with the rig parameters read off ``G(w)``;
* ``model``: the parameter reader ``F`` (W+ -> controls) and ``RigNet`` (W+, target -> W+);
* ``train``: ``rig train rignet``; ``files``: the RigNet file; ``calibration``: what the encoder reads
  for known rig parameters (presets, units, its own floor);
* ``edit`` / ``editor`` / ``face``: edit requests, the ``rig.Editor`` API and the face file;
* ``puppet``: ``rig puppet``; ``evaluate``: ``rig eval rignet``; ``preview`` / ``sheets``: rig renders
  beside GAN images, contact sheets.
"""
