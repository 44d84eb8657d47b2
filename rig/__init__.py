"""rig: StyleGAN as a renderer for a FLAME-layout parametric face rig.

Stages live in sub-packages named after them: ``rig.face_model`` (the parametric head),
``rig.render`` (cameras, rasterizer, shading), ``rig.stylegan2`` (generator and checkpoint I/O),
``rig.world`` (the embedded synthetic default), ``rig.track`` (video -> rig parameters),
``rig.io`` (safe loading, atomic writes, video).
"""

__version__ = "0.1.0"
