"""rig: StyleGAN as a renderer for a FLAME-layout parametric face rig.

Stages live in sub-packages named after them: ``rig.face_model`` (the parametric head),
``rig.render`` (cameras, rasterizer, shading), ``rig.stylegan2`` (generator and checkpoint I/O),
``rig.rignet`` (steering the generator with rig parameters; ``rig.Editor`` is its Python API),
``rig.world`` (the embedded synthetic default), ``rig.instruments`` (the encoder and dlib readers),
``rig.track`` (video -> rig parameters), ``rig.io`` (safe loading, atomic writes, video).
"""

__version__ = "0.1.0"

__all__ = ["Editor", "Face", "__version__"]


def __getattr__(name: str):
    # Lazy: ``import rig`` (and ``rig --help``) must not pay for torch.
    if name == "Editor":
        from rig.rignet.editor import Editor

        return Editor
    if name == "Face":
        from rig.rignet.face import Face

        return Face
    raise AttributeError(f"module 'rig' has no attribute {name!r}")
